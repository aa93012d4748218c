"""Frame sizes written as WIDTHxHEIGHT (for example 64x64, 96x64, 128x72)."""

from __future__ import annotations

import re
from typing import NamedTuple

from reverie.errors import ReverieError

_SIZE = re.compile(r"^\s*(\d+)\s*[xX×]\s*(\d+)\s*$")
MIN_SIDE, MAX_SIDE = 8, 1024


class Size(NamedTuple):
    width: int
    height: int

    def __str__(self) -> str:
        return f"{self.width}x{self.height}"


def parse_size(text: str | Size | tuple[int, int]) -> Size:
    """Parse 'WxH' into a Size; errors show the accepted form."""
    if isinstance(text, tuple):
        width, height = int(text[0]), int(text[1])
    else:
        m = _SIZE.match(str(text))
        if m is None:
            raise ReverieError(
                f"bad size {text!r}: expected WIDTHxHEIGHT in pixels, for example 64x64, 96x64 or 128x72"
            )
        width, height = int(m.group(1)), int(m.group(2))
    for name, v in (("width", width), ("height", height)):
        if not MIN_SIDE <= v <= MAX_SIDE:
            raise ReverieError(f"bad size {text!r}: {name} {v} is outside {MIN_SIDE}..{MAX_SIDE} pixels")
    return Size(width, height)
