"""The wire protocol between the player page and the server.

Server -> client:
- binary: one frame = `HEADER` + image bytes (JPEG, or WebP when the server encodes WebP);
- text: JSON control messages {"type": "hello" | "queue" | "session" | "caption" | "notice" |
  "error" | "pong" | "end" | "bound" | "previews", ...}.
Client -> server (JSON text only):
- {"type": "hello", "seed"?: int, "views"?: ["dream", "real"]}      options before the session starts
- {"type": "input", "seq": int, "keys": [...], "axes": {"forward", "side", "turn"}, "buttons": [...]}
- {"type": "reset", "seq": int, "seed"?: int, "prompt"?: str, "image"?: base64, "image_type"?: str}
- {"type": "pause", "seq": int, "paused": bool}
- {"type": "views", "views": [...]}
- {"type": "ping", "t": number}
- {"type": "bind", "binding": {code: action}}   save a latent-code key binding (play --allow-bind)
- {"type": "preview"}   a short dream per action from the session's current frames, one JPEG strip
  each: {"type": "previews", "frames": k, "strips": {action: "data:image/jpeg;base64,..."}}
Anything else is answered with {"type": "error", "code": ..., "message": ...} and otherwise ignored.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import math
import re
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

from reverie.engine.clock import VIEWS, EncodedFrame
from reverie.engine.controls import InputState
from reverie.sizes import Size

VERSION = 1
MAGIC = b"RV"
# magic, version, view, codec, reserved, frame index, input seq consumed, generation us, width, height
HEADER = struct.Struct("<2sBBBxIIIHH")  # 22 bytes, little-endian

# Limits (bytes unless named otherwise). A WebSocket message above MAX_MESSAGE_BYTES is refused by
# the server itself (uvicorn ws_max_size, close code 1009) before any of it reaches Python.
MAX_MESSAGE_BYTES = 2 * 1024 * 1024
MAX_TEXT_BYTES = 4096  # every message except a reset carrying an image
# A message longer than MAX_TEXT_BYTES is never handed to json.loads whole: it must be a reset whose
# "image" is one plain base64 (or data: URL) string, cut out with this linear-time pattern; the rest
# must fit MAX_TEXT_BYTES and is parsed as usual. A hostile 2 MB structure costs one regex scan.
_IMAGE_FIELD = re.compile(r'"image"\s*:\s*"([A-Za-z0-9+/=:;,._-]*)"')
_IMAGE_SLOT = '"image":null'
MAX_IMAGE_BYTES = 1024 * 1024  # decoded upload
MAX_IMAGE_PIXELS = 4096 * 4096
IMAGE_TYPES = ("PNG", "JPEG", "WEBP", "GIF")
MAX_PROMPT_CHARS = 500
MAX_KEYS = 16
MAX_NAME_CHARS = 32
MAX_SEQ = 2**32 - 1


class ProtocolError(Exception):
    """A client message we refuse; `code` goes to the client with the message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def pack_frame(f: EncodedFrame) -> bytes:
    return (
        HEADER.pack(MAGIC, VERSION, f.view, f.codec, f.index & MAX_SEQ, f.seq, f.gen_us, f.width, f.height)
        + f.data
    )


@dataclass(frozen=True)
class FrameHeader:
    view: int
    codec: int
    index: int
    seq: int
    gen_us: int
    width: int
    height: int


def unpack_frame(data: bytes) -> tuple[FrameHeader, bytes]:
    """Inverse of `pack_frame` (tests and Python clients)."""
    magic, version, view, codec, index, seq, gen_us, w, h = HEADER.unpack_from(data)
    if magic != MAGIC or version != VERSION:
        raise ProtocolError("bad_frame", f"not a reverie frame (magic {magic!r}, version {version})")
    return FrameHeader(view, codec, index, seq, gen_us, w, h), data[HEADER.size :]


def control(kind: str, **fields: Any) -> str:
    return json.dumps({"type": kind, **fields}, separators=(",", ":"))


def error(code: str, message: str) -> str:
    return control("error", code=code, message=message)


@dataclass(frozen=True)
class Message:
    type: str
    seq: int = 0
    state: InputState | None = None
    seed: int | None = None
    prompt: str | None = None
    image_b64: str | None = None
    paused: bool = False
    views: tuple[str, ...] = ()
    t: float = 0.0
    binding: tuple[tuple[str, str], ...] = ()  # (code, action) pairs of a "bind"


def _seq(d: dict[str, Any]) -> int:
    v = d.get("seq", 0)
    if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= MAX_SEQ:
        raise ProtocolError("bad_message", f"seq must be an integer in 0..{MAX_SEQ}")
    return v


def _finite(v: Any) -> float | None:
    """`v` as a finite float, or None. JSON integers are unbounded (10**400 is valid JSON) and
    float() of one raises OverflowError, so a huge integer is refused here, not in a handler."""
    if not isinstance(v, int | float) or isinstance(v, bool):
        return None
    try:
        f = float(v)
    except OverflowError:
        return None
    return f if math.isfinite(f) else None


def _axis(axes: dict[str, Any], name: str) -> float:
    v = _finite(axes.get(name, 0.0))
    if v is None:
        raise ProtocolError("bad_message", f"axis {name!r} must be a finite number in [-1, 1]")
    return max(-1.0, min(1.0, v))


def _names(d: dict[str, Any], field: str) -> frozenset[str]:
    v = d.get(field, [])
    if not isinstance(v, list) or len(v) > MAX_KEYS:
        raise ProtocolError("bad_message", f"{field} must be a list of at most {MAX_KEYS} names")
    if not all(isinstance(k, str) and 0 < len(k) <= MAX_NAME_CHARS for k in v):
        raise ProtocolError("bad_message", f"{field} must hold names of 1..{MAX_NAME_CHARS} characters")
    return frozenset(k.lower() for k in v)


def _binding(d: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """The shape of a "bind" message; whether the codes and actions exist is the engine's check."""
    v = d.get("binding")
    if not isinstance(v, dict) or len(v) > MAX_KEYS:
        raise ProtocolError("bad_message", f"binding must be an object of at most {MAX_KEYS} code -> action")
    pairs = tuple(v.items())
    if not all(isinstance(x, str) and 0 < len(x) <= MAX_NAME_CHARS for pair in pairs for x in pair):
        raise ProtocolError(
            "bad_message", f"binding codes and actions must be names of 1-{MAX_NAME_CHARS} characters"
        )
    return pairs


def _views(d: dict[str, Any]) -> tuple[str, ...]:
    v = d.get("views", ["dream"])
    if not isinstance(v, list) or not v or not all(isinstance(x, str) and x in VIEWS for x in v):
        raise ProtocolError("bad_message", f"views must be a non-empty list of: {', '.join(VIEWS)}")
    return tuple(dict.fromkeys(v))


def _split_image(text: str) -> tuple[str, str]:
    """A long message -> (the message with its image replaced by null, the image text), or refused.

    Sizes are checked before any parsing: only the image may be long, and it is found by a scan
    that never builds Python objects."""
    too_large = ProtocolError(
        "too_large",
        f'messages are at most {MAX_TEXT_BYTES} bytes, except a reset whose "image" is base64 text '
        f"(at most {MAX_MESSAGE_BYTES} bytes in all)",
    )
    if len(text) > MAX_MESSAGE_BYTES:
        raise too_large
    m = _IMAGE_FIELD.search(text)
    if m is None:
        raise too_large
    rest = text[: m.start()] + _IMAGE_SLOT + text[m.end() :]
    if len(rest) > MAX_TEXT_BYTES:
        raise too_large
    return rest, m.group(1)


def _load(text: str) -> dict[str, Any]:
    try:
        d = json.loads(text)
    except (ValueError, RecursionError):
        raise ProtocolError("bad_message", "not JSON: messages are JSON objects with a 'type'") from None
    if not isinstance(d, dict) or not isinstance(d.get("type"), str):
        raise ProtocolError("bad_message", "messages are JSON objects with a 'type'")
    return d


def parse(text: str, action_names: list[str] | None = None) -> Message:
    """Validate one client text message. Raises ProtocolError with a code the client understands."""
    if len(text) <= MAX_TEXT_BYTES:
        d = _load(text)
    else:
        rest, image_text = _split_image(text)
        d = _load(rest)
        # The cut-out string must be this reset's own top-level "image", not one nested deeper.
        if d["type"] != "reset" or "image" not in d or d["image"] is not None:
            raise ProtocolError(
                "too_large", f"only a reset carrying an image may be longer than {MAX_TEXT_BYTES} bytes"
            )
        d["image"] = image_text
    kind = d["type"]
    if kind == "input":
        axes = d.get("axes", {})
        if not isinstance(axes, dict):
            raise ProtocolError("bad_message", "axes must be an object {forward, side, turn}")
        buttons = _names(d, "buttons")
        if action_names is not None:
            unknown = sorted(buttons - set(action_names))
            if unknown:
                raise ProtocolError(
                    "unknown_action", f"unknown action {unknown[0]!r}: accepted {', '.join(action_names)}"
                )
        state = InputState(
            keys=_names(d, "keys"),
            forward=_axis(axes, "forward"),
            side=_axis(axes, "side"),
            turn=_axis(axes, "turn"),
            buttons=buttons,
            seq=_seq(d),
        )
        return Message("input", seq=state.seq, state=state)
    if kind == "reset":
        seed, prompt, image = d.get("seed"), d.get("prompt"), d.get("image")
        if seed is not None and (
            not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**63
        ):
            raise ProtocolError("bad_message", "seed must be a non-negative integer")
        if prompt is not None and (not isinstance(prompt, str) or len(prompt) > MAX_PROMPT_CHARS):
            raise ProtocolError(
                "bad_message", f"prompt must be text of at most {MAX_PROMPT_CHARS} characters"
            )
        if image is not None and not isinstance(image, str):
            raise ProtocolError("bad_image", "image must be base64 text")
        return Message("reset", seq=_seq(d), seed=seed, prompt=prompt or None, image_b64=image or None)
    if kind == "pause":
        return Message("pause", seq=_seq(d), paused=bool(d.get("paused", True)))
    if kind == "views":
        return Message("views", views=_views(d))
    if kind == "hello":
        seed = d.get("seed")
        if seed is not None and (
            not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**63
        ):
            raise ProtocolError("bad_message", "seed must be a non-negative integer")
        return Message("hello", seed=seed, views=_views(d))
    if kind == "ping":
        t = _finite(d.get("t", 0))
        if t is None:
            raise ProtocolError("bad_message", "ping t must be a finite number")
        return Message("ping", t=t)
    if kind == "bind":
        return Message("bind", binding=_binding(d))
    if kind == "preview":
        return Message("preview")
    raise ProtocolError(
        "unknown_type",
        f"unknown message type {kind[:20]!r}: accepted input, reset, pause, views, hello, ping, bind, preview",
    )


def decode_image(b64: str, size: Size) -> np.ndarray:
    """A base64 upload (optionally a data: URL) -> (H, W, 3) uint8 at the world's size.

    Runs in a worker thread: PIL decodes after the byte, type and pixel-count checks, never before.
    """
    from PIL import Image

    if b64.startswith("data:"):
        b64 = b64.partition(",")[2]
    if len(b64) > (MAX_IMAGE_BYTES * 4) // 3 + 4:
        raise ProtocolError("bad_image", f"image larger than {MAX_IMAGE_BYTES // 1024} KiB")
    try:
        raw = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError):
        raise ProtocolError("bad_image", "image is not valid base64") from None
    try:
        with Image.open(io.BytesIO(raw), formats=list(IMAGE_TYPES)) as img:
            if img.width * img.height > MAX_IMAGE_PIXELS:
                raise ProtocolError("bad_image", f"image has more than {MAX_IMAGE_PIXELS} pixels")
            img.draft("RGB", (size.width * 2, size.height * 2))  # JPEG: decode at reduced scale
            rgb = img.convert("RGB").resize(size, Image.Resampling.LANCZOS)
            return np.asarray(rgb, dtype=np.uint8)
    except ProtocolError:
        raise
    except Exception:  # PIL raises many kinds on hostile files; all mean the same to the player
        raise ProtocolError("bad_image", f"not a readable image: accepted {', '.join(IMAGE_TYPES)}") from None
