"""Episode data: the on-disk store, the training window sampler, recording and video import.

store.py    EpisodeStore (a directory of zarr episodes, crash-safe appends) and Episode
sampler.py  WindowSampler: random training windows from memory
record.py   record a world into a store (worker processes, seeds S, S+1, ...)
video.py    import video files as action-less episodes; write episodes as MP4
sheet.py    summaries and contact sheets for `reverie data info|show`
bench.py    `reverie bench data`
"""
