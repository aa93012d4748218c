"""Adapters that make any Gymnasium env look like a built-in world.

`RenderedFrames` replaces the observation with the rendered frame, resized to the requested size
(aspect-preserving resize, then centre crop; or pad / stretch), and adds a generic caption when
the env has none.
"""

from __future__ import annotations

import re
from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces
from PIL import Image

from reverie.errors import ReverieError
from reverie.sizes import Size

FIT_MODES = ("crop", "pad", "stretch")


def fit_frame(frame: np.ndarray, size: Size, fit: str = "crop") -> np.ndarray:
    """Any frame -> uint8 (H, W, 3) of `size`.

    crop: resize to cover keeping the aspect ratio, then centre-crop (the default);
    pad: resize to fit inside keeping the aspect ratio, black borders;
    stretch: ignore the aspect ratio (Atari: a centre crop would cut off the paddle and score).
    """
    if fit not in FIT_MODES:
        raise ReverieError(f"bad fit {fit!r}: accepted {', '.join(FIT_MODES)}")
    frame = np.asarray(frame)
    if frame.ndim == 2:
        frame = np.repeat(frame[..., None], 3, axis=-1)
    if frame.shape[-1] == 1:
        frame = np.repeat(frame, 3, axis=-1)
    frame = frame[..., :3]  # drop alpha
    if frame.dtype != np.uint8:
        hi = 1.0 if frame.size and float(frame.max()) <= 1.0 else 255.0
        frame = np.clip(frame.astype(np.float32) * (255.0 / hi), 0, 255).astype(np.uint8)
    h, w = frame.shape[:2]
    if (w, h) == (size.width, size.height):
        return np.ascontiguousarray(frame)
    if fit == "stretch":
        rw, rh = size.width, size.height
    elif fit == "crop":
        scale = max(size.width / w, size.height / h)
        rw, rh = max(size.width, round(w * scale)), max(size.height, round(h * scale))
    else:
        scale = min(size.width / w, size.height / h)
        rw, rh = min(size.width, max(1, round(w * scale))), min(size.height, max(1, round(h * scale)))
    # LANCZOS with reducing_gap: a cheap box pre-shrink then a sharp filter, so big frames shrink
    # without aliasing (Atari scanlines) and without a slow full-size Lanczos pass.
    img = Image.fromarray(np.ascontiguousarray(frame)).resize(
        (rw, rh), Image.Resampling.LANCZOS, reducing_gap=2.0
    )
    if fit == "pad":
        canvas = Image.new("RGB", (size.width, size.height))
        canvas.paste(img, ((size.width - rw) // 2, (size.height - rh) // 2))
        img = canvas
    elif fit == "crop":
        left, top = (rw - size.width) // 2, (rh - size.height) // 2
        img = img.crop((left, top, left + size.width, top + size.height))
    return np.asarray(img, dtype=np.uint8)


def _words(camel: str) -> str:
    """'CarRacing' -> 'car racing', 'MyWayHome' -> 'my way home', 'E1M1' kept."""
    text = re.sub(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", " ", camel)
    return re.sub(r"[_\-]+", " ", text).strip().lower()


def world_title(world_id: str) -> tuple[str, str]:
    """(family, title) from a Gymnasium id: 'ALE/Breakout-v5' -> ('atari', 'Breakout')."""
    name = world_id.split("/")[-1]
    name = re.sub(r"-v\d+$", "", name)
    if world_id.startswith("ALE/"):
        return "atari", name
    if name.startswith("Vizdoom"):
        rest = re.sub(r"-MultiBinary$", "", name[len("Vizdoom") :])
        return "doom", _words(rest.split("-")[0]) or "doom"
    if name.startswith("MiniWorld-"):
        return "miniworld", _words(name[len("MiniWorld-") :])
    return "gym", _words(name)


_TEMPLATES: dict[str, tuple[str, ...]] = {
    "atari": (
        "a game of {t}",
        "an Atari game of {t}",
        "playing {t} on an Atari",
        "{t}, a classic arcade game",
    ),
    "doom": (
        "a Doom level: {t}",
        "first-person view in Doom, {t}",
        "playing the Doom scenario {t}",
        "a corridor shooter level, {t}",
    ),
    "miniworld": (
        "a simple 3D room world: {t}",
        "first-person view of a {t} made of rooms",
        "walking through a 3D {t}",
        "a MiniWorld scene, {t}",
    ),
    "gym": ("a game of {t}", "a simulation of {t}", "playing {t}", "{t}, a Gymnasium environment"),
}


def generic_caption(world_id: str, variant: int = 0) -> str:
    """A short caption from the id; `variant` picks the phrasing (varied per episode)."""
    family, title = world_title(world_id)
    templates = _TEMPLATES[family]
    return templates[variant % len(templates)].format(t=title)


class RenderedFrames(gymnasium.Wrapper):
    """Observation := render() resized to `size`, uint8 (H, W, 3); info gets caption/scene/blocked."""

    def __init__(self, env: gymnasium.Env, size: Size, world_id: str, fit: str = "crop") -> None:
        super().__init__(env)
        if fit not in FIT_MODES:
            raise ReverieError(f"bad fit {fit!r}: accepted {', '.join(FIT_MODES)}")
        self.fit = fit
        if env.render_mode != "rgb_array":
            raise ReverieError(
                f"{world_id} renders as {env.render_mode!r}: worlds need render_mode='rgb_array'"
            )
        self.size = size
        self.world_id = world_id
        self.observation_space = spaces.Box(0, 255, (size.height, size.width, 3), np.uint8)
        self._frame: np.ndarray | None = None
        self._caption = generic_caption(world_id)
        self._rng = np.random.default_rng()
        self._scene = {"world": world_id, "family": world_title(world_id)[0]}

    def _observe(self, info: dict[str, Any]) -> tuple[np.ndarray, dict[str, Any]]:
        frame = self.env.render()
        if frame is None or not hasattr(frame, "shape"):
            raise ReverieError(f"{self.world_id} returned no rgb_array frame from render()")
        self._frame = fit_frame(np.asarray(frame), self.size, self.fit)
        info = dict(info)
        info.setdefault("caption", self._caption)
        info.setdefault("scene", self._scene)
        return self._frame, info

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> Any:
        _, info = self.env.reset(seed=seed, options=options)
        # Phrasing varies per episode but is stable inside one; seeded runs stay deterministic. A
        # private generator, so the env's own random stream is the same with or without us.
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self._caption = generic_caption(self.world_id, int(self._rng.integers(1 << 16)))
        return self._observe(info)

    def step(self, action: Any) -> Any:
        _, reward, terminated, truncated, info = self.env.step(action)
        frame, info = self._observe(info)
        return frame, float(reward), bool(terminated), bool(truncated), info

    def render(self) -> Any:
        return self._frame
