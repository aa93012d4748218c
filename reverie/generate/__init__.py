"""Offline generation with a trained world model: text/image to video, extension, in-filling.

`actions.py` picks the actions of generated frames; `modes.py` builds the modes on the one causal
sampling loop, `reverie.models.sampler.sample_video` (over the model's rollout); `output.py`
writes MP4s, side-by-side grids and PNG strips.
"""
