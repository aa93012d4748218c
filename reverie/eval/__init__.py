"""Measure a world model against the real world (DESIGN.md "Measures"); `reverie eval` drives it.

metrics.py (PSNR, SSIM) and frechet.py (Frechet distance) are pure numpy/scipy; rollout.py holds
the Predictor protocol (model, simulator, copy-last) and real-episode collection; measures.py the
teacher-forced / rollout / dtPSNR scores; idm.py the inverse-dynamics action classifier; drift.py the
long-rollout drift; run.py puts them together (`evaluate`); report.py writes the HTML page.
"""
