"""Frame sizes written as WIDTHxHEIGHT (for example 64x64, 96x64, 128x72), and the one rule for them.

A frame size is whatever a world model can be trained on: each side in MIN_SIDE..MAX_SIDE pixels
and a multiple of MULTIPLE, the stride of every autoencoder preset. Recording, importing, playing
and training all check this one rule, so a size is refused when it is typed, not after an hour of
recording.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from reverie.errors import ReverieError

_SIZE = re.compile(r"^\s*(\d+)\s*[xX×]\s*(\d+)\s*$")
MIN_SIDE, MAX_SIDE = 16, 1024
MULTIPLE = 8  # the autoencoder presets' stride (2 ** number of downsampling levels)


class Size(NamedTuple):
    width: int
    height: int

    def __str__(self) -> str:
        return f"{self.width}x{self.height}"


def parse_size(text: str | Size | tuple[int, int]) -> Size:
    """Parse 'WxH' (or a (width, height) pair) into a Size that obeys the rule; errors show the rule."""
    if isinstance(text, tuple):
        width, height = int(text[0]), int(text[1])
    else:
        m = _SIZE.match(str(text))
        if m is None:
            raise ReverieError(
                f"bad size {text!r}: expected WIDTHxHEIGHT in pixels, for example 64x64, 96x64 or 128x72"
            )
        width, height = int(m.group(1)), int(m.group(2))
    shown = f"{width}x{height}"
    for name, v in (("width", width), ("height", height)):
        if not MIN_SIDE <= v <= MAX_SIDE:
            raise ReverieError(f"bad size {shown}: {name} {v} is outside {MIN_SIDE}..{MAX_SIDE} pixels")
        if v % MULTIPLE:
            near = sorted({max(MIN_SIDE, v - v % MULTIPLE), min(MAX_SIDE, v - v % MULTIPLE + MULTIPLE)})
            raise ReverieError(
                f"bad size {shown}: {name} {v} is not a multiple of {MULTIPLE} (the autoencoder's stride, "
                f"so a model can train on it); try {' or '.join(map(str, near))}"
            )
    return Size(width, height)
