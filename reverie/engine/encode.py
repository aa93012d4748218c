"""Frame -> compressed image bytes for the wire. JPEG via simplejpeg (~40 us at 64x64); WebP only
with method=0, the one WebP setting fast enough for a real-time tick."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

from reverie.errors import ReverieError

CODECS = ("jpeg", "webp")
CODEC_IDS = {"jpeg": 0, "webp": 1}


@dataclass(frozen=True)
class EncoderConfig:
    codec: str = "jpeg"
    quality: int = 85
    # Full-resolution chroma: at 64x64 every pixel is large on screen, so 4:2:0 smears edges.
    subsampling: str = "444"

    def __post_init__(self) -> None:
        if self.codec not in CODECS:
            raise ReverieError(f"unknown codec {self.codec!r}: accepted {', '.join(CODECS)}")
        if not 1 <= self.quality <= 100:
            raise ReverieError(f"quality {self.quality} is outside 1..100")


class Encoder:
    def __init__(self, cfg: EncoderConfig | None = None) -> None:
        self.cfg = cfg or EncoderConfig()
        self.codec_id = CODEC_IDS[self.cfg.codec]

    def __call__(self, frame: np.ndarray) -> bytes:
        """(H, W, 3) uint8 -> image bytes."""
        frame = np.ascontiguousarray(frame, dtype=np.uint8)
        if self.cfg.codec == "jpeg":
            import simplejpeg

            return bytes(
                simplejpeg.encode_jpeg(
                    frame, quality=self.cfg.quality, colorspace="RGB", colorsubsampling=self.cfg.subsampling
                )
            )
        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(frame).save(buf, format="WEBP", quality=self.cfg.quality, method=0)
        return buf.getvalue()


def decode(data: bytes) -> np.ndarray:
    """Image bytes -> (H, W, 3) uint8 (tests and tools)."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img.convert("RGB"))
