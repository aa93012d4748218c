"""Action accuracy: an inverse-dynamics classifier (IDM) judges whether generated frames obey actions.

A small CNN reads a frame pair (obs_t, obs_t+1) and predicts the discrete action that led from one
to the other. It is trained on real pairs from the simulator under the exploration policy, with the
frames degraded the way an autoencoder degrades them (blur, noise, a colour cast) so that generated
frames are judged by their motion, not by their sharpness, and half of them mirrored left-right with
the actions' left and right swapped (twice the scenes, less to memorise). Its
accuracy on held-out real pairs is the ceiling to read the generated-pair accuracy against.

Some real pairs are ambiguous: a move into a wall changes nothing, so "forward" then looks exactly
like "noop". `ambiguous_steps` finds them by replaying the world with every other action.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from reverie.eval.cnn import conv_trunk

if TYPE_CHECKING:
    from reverie.eval.rollout import RealEpisodes

__all__ = [
    "IDMConfig",
    "InverseDynamics",
    "ambiguous_steps",
    "cached_idm",
    "degrade",
    "idm_cache_dir",
    "mirror_actions",
    "pairs_from_episodes",
    "train_idm",
]

# Bump when the architecture, the augmentation or the training loop changes: cached IDMs keyed by
# an older version are then never loaded.
IDM_VERSION = 2
CACHE_KEEP = 32  # trained IDMs kept in a cache dir, newest first


@dataclass
class IDMConfig:
    width: int = 32  # channels of the first conv; doubled per stage
    steps: int = 1000  # AdamW steps, cosine-decayed
    batch_size: int = 64
    lr: float = 3e-3
    warmup: int = 50
    min_lr_ratio: float = 0.02
    weight_decay: float = 1e-4
    degrade: float = 0.5  # probability that each frame of a training pair is degraded
    mirror: bool = True  # mirror half the pairs left-right, swapping the actions' left and right
    seed: int = 0


class InverseDynamics(nn.Module):
    def __init__(self, num_actions: int, width: int = 32) -> None:
        super().__init__()
        w = width
        # any frame size: the pooled 4x4 map keeps a coarse layout, which turning vs moving needs
        self.net = nn.Sequential(*conv_trunk(9, w, pool=4), nn.Linear(16 * 4 * w, num_actions))

    def forward(self, prev: torch.Tensor, nxt: torch.Tensor) -> torch.Tensor:
        """prev, nxt uint8 (B, H, W, 3) -> logits (B, num_actions)."""
        a = prev.permute(0, 3, 1, 2).float() / 127.5 - 1.0  # (B, 3, H, W)
        b = nxt.permute(0, 3, 1, 2).float() / 127.5 - 1.0
        # The change itself as input: without it the net must learn to subtract, and learnt ~2x slower.
        return self.net(torch.cat([a, b, b - a], 1))  # (B, 9, H, W) -> (B, num_actions)

    @torch.no_grad()
    def predict(self, prev: np.ndarray, nxt: np.ndarray, batch: int = 256) -> np.ndarray:
        """The predicted action of each pair: (N,) int64."""
        self.eval()
        out = [np.zeros(0, np.int64)]
        for i in range(0, len(prev), batch):
            p = torch.from_numpy(np.ascontiguousarray(prev[i : i + batch]))
            n = torch.from_numpy(np.ascontiguousarray(nxt[i : i + batch]))
            out.append(self(p, n).argmax(-1).numpy())
        return np.concatenate(out)

    def hits(self, prev: np.ndarray, nxt: np.ndarray, act: np.ndarray) -> np.ndarray:
        """Whether each pair's predicted action is the commanded one: (N,) bool."""
        return np.asarray(self.predict(prev, nxt) == np.asarray(act).reshape(-1))

    def accuracy(self, prev: np.ndarray, nxt: np.ndarray, act: np.ndarray, batch: int = 256) -> float:
        return float(self.hits(prev, nxt, act).mean()) if len(act) else 0.0


def pairs_from_episodes(obs: np.ndarray, act: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (obs_t, obs_t+1, act_t+1) of episodes obs (B, T, H, W, 3), act (B, T), flattened."""
    prev = obs[:, :-1].reshape(-1, *obs.shape[2:])  # (B * (T-1), H, W, 3)
    nxt = obs[:, 1:].reshape(-1, *obs.shape[2:])
    return prev, nxt, act[:, 1:].reshape(-1).astype(np.int64)


def _blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """A separable 5-tap Gaussian blur with one sigma per frame: x (B, C, H, W), sigma (B,)."""
    B, C, H, W = x.shape
    k = torch.arange(-2, 3, dtype=torch.float32)
    w = torch.exp(-(k[None] ** 2) / (2 * sigma[:, None] ** 2))
    w = (w / w.sum(1, keepdim=True)).repeat_interleave(C, 0)  # (B * C, 5)
    y = x.reshape(1, B * C, H, W)
    y = nn.functional.conv2d(
        nn.functional.pad(y, (2, 2, 0, 0), mode="replicate"), w[:, None, None], groups=B * C
    )
    y = nn.functional.conv2d(
        nn.functional.pad(y, (0, 0, 2, 2), mode="replicate"), w[:, None, :, None], groups=B * C
    )
    return y.reshape(B, C, H, W)


def degrade(frames: torch.Tensor, p: float) -> torch.Tensor:
    """Each uint8 frame (B, H, W, 3), with probability p, made to look decoded by an autoencoder.

    Blur (sigma 0.4-1.2 px), Gaussian noise (std up to 6) and a per-channel cast (up to +-4): at p=1
    about 32.5 dB PSNR on 64x64 Dungeon frames, where the small Dungeon autoencoder measured 31 dB.
    Each frame of a pair is drawn alone, because a generated pair may start on a sharp real frame.
    """
    on = torch.rand(frames.shape[0]) < p
    if not bool(on.any()):
        return frames
    x = frames[on].permute(0, 3, 1, 2).float()  # (n, 3, H, W)
    n = x.shape[0]
    x = _blur(x, torch.empty(n).uniform_(0.4, 1.2))
    x = x + torch.randn_like(x) * torch.empty(n, 1, 1, 1).uniform_(0.0, 6.0)
    x = x + torch.empty(n, 3, 1, 1).uniform_(-4.0, 4.0)
    out = frames.clone()
    out[on] = x.clamp(0, 255).round().to(torch.uint8).permute(0, 2, 3, 1)
    return out


def mirror_actions(names: list[str]) -> list[int] | None:
    """The action of a left-right mirrored world for each action (turn_left <-> turn_right...),
    or None when the names do not pair up that way. Only for worlds whose "left" means the screen's
    left and whose pictures stay plausible mirrored (the built-in ones), which the caller knows."""
    lower = [name.lower() for name in names]
    mirrored = [re.sub("left|right", lambda m: "right" if m.group() == "left" else "left", n) for n in lower]
    if sorted(mirrored) != sorted(lower) or mirrored == lower:
        return None
    return [lower.index(m) for m in mirrored]


def train_idm(
    prev: np.ndarray, nxt: np.ndarray, act: np.ndarray, num_actions: int, cfg: IDMConfig | None = None,
    progress: bool = False, mirror: list[int] | None = None,
) -> InverseDynamics:  # fmt: skip
    """mirror: the action permutation of mirror_actions; with cfg.mirror, half the training pairs
    are mirrored (32x32 Dungeon, 1,100 pairs: held-out accuracy 0.42 -> 0.57; 64x64, 16k pairs: +1 point)."""
    cfg = cfg or IDMConfig()
    flip = torch.tensor(mirror) if mirror is not None and cfg.mirror else None
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    model = InverseDynamics(num_actions, cfg.width)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    prev_t, nxt_t, act_t = torch.from_numpy(prev), torch.from_numpy(nxt), torch.from_numpy(act)
    model.train()
    for step in tqdm(range(cfg.steps), desc="train IDM", unit="step", disable=not progress):
        # Linear warm-up, then cosine decay to min_lr_ratio: measured +6 points over a constant LR.
        cos = 0.5 * (1 + math.cos(math.pi * step / max(1, cfg.steps)))
        scale = min(1.0, (step + 1) / max(1, cfg.warmup)) * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * cos)
        for group in opt.param_groups:
            group["lr"] = cfg.lr * scale
        idx = torch.from_numpy(rng.integers(0, len(act), cfg.batch_size))
        p, n, a = prev_t[idx], nxt_t[idx], act_t[idx]
        if flip is not None:
            m = torch.rand(len(a)) < 0.5
            p, n = (
                torch.where(m[:, None, None, None], p.flip(2), p),
                torch.where(m[:, None, None, None], n.flip(2), n),
            )
            a = torch.where(m, flip[a], a)
        p, n = degrade(p, cfg.degrade), degrade(n, cfg.degrade)
        loss = nn.functional.cross_entropy(model(p, n), a)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return model.eval()


def idm_cache_dir() -> Path:
    """Where trained IDMs are kept: $REVERIE_CACHE/idm, else $XDG_CACHE_HOME (or ~/.cache)/reverie/idm."""
    from reverie.cache import cache_dir

    return cache_dir("idm")


def _cache_key(
    obs: np.ndarray, act: np.ndarray, num_actions: int, cfg: IDMConfig, mirror: list[int] | None
) -> str:
    # The training frames themselves are hashed: a change of the world's rendering, of the size, of
    # the seeds or of the policy gives other frames and so another key; no stale IDM is ever reused.
    h = hashlib.sha256()
    h.update(
        json.dumps(
            {"version": IDM_VERSION, "n": num_actions, "cfg": asdict(cfg), "mirror": mirror}, sort_keys=True
        ).encode()
    )
    for arr in (obs, act):
        h.update(str((arr.shape, arr.dtype.str)).encode())
        h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()[:32]


def cached_idm(
    obs: np.ndarray, act: np.ndarray, num_actions: int, cfg: IDMConfig, cache: str | os.PathLike[str] | None,
    progress: bool = False, mirror: list[int] | None = None,
) -> tuple[InverseDynamics, bool]:  # fmt: skip
    """An IDM trained on the episodes obs (B, T, H, W, 3), act (B, T): loaded from `cache` when one was
    trained there on exactly these episodes and config, else trained (and saved when cache is set).
    Returns (model, whether it came from the cache). Weights are safetensors, never pickle."""
    from safetensors.torch import load_file, save_file

    path = (
        Path(cache) / f"idm-{_cache_key(obs, act, num_actions, cfg, mirror)}.safetensors" if cache else None
    )
    if path is not None and path.is_file():
        model = InverseDynamics(num_actions, cfg.width)
        try:
            model.load_state_dict(load_file(str(path)))
            return model.eval(), True
        except Exception:  # safetensors raises its own error type on a damaged header
            pass  # a damaged or foreign file: retrain and overwrite it
    model = train_idm(*pairs_from_episodes(obs, act), num_actions, cfg, progress=progress, mirror=mirror)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        os.close(fd)
        try:
            save_file({k: v.contiguous() for k, v in model.state_dict().items()}, tmp)
            os.replace(tmp, path)  # atomic: a concurrent eval reads the old file or the whole new one
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        # Each eval seed trains its own IDM (~0.75 MB): keep the newest few, not every one ever made.
        kept = sorted(path.parent.glob("idm-*.safetensors"), key=lambda f: f.stat().st_mtime, reverse=True)
        for old in kept[CACHE_KEEP:]:
            old.unlink(missing_ok=True)
    return model, False


def ambiguous_steps(world: str, size: str, real: RealEpisodes) -> np.ndarray | None:
    """(B, T) bool: the step into obs[t] is ambiguous when another action gives the same frame.

    Replays each episode from its seed; before each step the world's attributes are saved, every
    action is tried and the attributes restored. None when the world cannot be replayed that way
    (its state is not plain attributes, or the replay disagrees with the recorded frames).
    """
    from reverie.worlds.make import make_world

    if real.action_spec.get("type") != "discrete":
        return None
    n_act = int(real.action_spec["n"])
    out = np.zeros(real.act.shape[:2], dtype=bool)
    env = make_world(world, size)
    base = env.unwrapped
    try:
        for b, seed in enumerate(real.seeds):
            obs, _ = env.reset(seed=int(seed))
            if not np.array_equal(obs, real.obs[b, 0]):
                return None
            for t in range(1, real.obs.shape[1]):
                state = dict(base.__dict__)
                frames = []
                for a in range(n_act):
                    base.__dict__.update(state)
                    frames.append(np.array(base.step(a)[0]))
                taken = int(real.act[b, t])
                base.__dict__.update(state)
                obs = base.step(taken)[0]
                if not np.array_equal(obs, real.obs[b, t]) or not np.array_equal(frames[taken], obs):
                    return None  # its state is more than its attributes: no honest answer
                out[b, t] = any(np.array_equal(f, obs) for a, f in enumerate(frames) if a != taken)
    finally:
        env.close()
    return out
