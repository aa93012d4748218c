"""Offline generation with a trained world model: text/image to video, extension, in-filling.

`model.py` loads a run for offline use and turns frames, actions and text into model inputs;
`rollout.py` holds the one causal sampling loop every mode shares; `modes.py` builds the modes on it;
`output.py` writes MP4s, side-by-side grids and PNG strips.
"""
