"""Measure a world model against the real world, as docs/measures.md defines; `reverie eval` drives it.

metrics.py (PSNR, SSIM), image_stats.py (sharpness, brightness, saturation, shift) and frechet.py are
pure numpy/scipy; rollout.py holds the Predictor protocol (model at play settings, simulator,
copy-last) and real-episode collection; player.py the engine's own start; measures.py the
teacher-forced / rollout / dtPSNR / sharpness scores; probe.py the action probe; idm.py and
action_accuracy.py the inverse-dynamics judge; drift.py the start from nothing; background.py the
second-core worker and the progress bar; config.py and run.py put them together (`evaluate`);
report.py writes the HTML page.
"""
