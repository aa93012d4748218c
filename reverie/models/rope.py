"""3D rotary positions over (t, y, x) for spacetime tokens.

Each attention head's channels are split into three groups that rotate with the frame index, the
row and the column of a token. Attention then sees only *relative* offsets, which is what lets one
network run on any length, resolution and aspect ratio, and lets a KV cache keep keys rotated at
their absolute frame index forever: a frame 10,000 steps into a rollout attends to its context
exactly as frame 16 did. Angles are computed in float64 so large frame indices stay exact.
"""

from __future__ import annotations

import torch


def axis_dims(head_dim: int) -> tuple[int, int, int]:
    """Channels per axis (t, y, x): a quarter for time, the rest split evenly; every part even."""
    if head_dim % 2 or head_dim < 6:
        raise ValueError(f"head_dim {head_dim} must be even and at least 6 for 3D RoPE")
    dt = max(2, (head_dim // 4) // 2 * 2)
    dy = (head_dim - dt) // 2 // 2 * 2
    dx = head_dim - dt - dy
    return dt, dy, dx


class Rope3D:
    """Cos/sin tables for tokens laid out frame-major: token index = (frame * h + y) * w + x."""

    def __init__(self, head_dim: int, theta: float = 10000.0) -> None:
        self.head_dim = head_dim
        self.dims = axis_dims(head_dim)
        self.freqs = [theta ** (-torch.arange(0, d // 2, dtype=torch.float64) / (d // 2)) for d in self.dims]

    def angles(self, frame_pos: torch.Tensor, h: int, w: int) -> torch.Tensor:
        """Rotation angles (..., T*h*w, head_dim // 2) in float64 for frames at positions `frame_pos`
        (..., T): (T,) for a batch on one clock, (B, T) for rows on clocks of their own."""
        *lead, T = frame_pos.shape
        ft, fy, fx = self.freqs
        at = frame_pos.to(torch.float64)[..., None] * ft  # (..., T, dt/2)
        ay = torch.arange(h, dtype=torch.float64)[:, None] * fy  # (h, dy/2)
        ax = torch.arange(w, dtype=torch.float64)[:, None] * fx  # (w, dx/2)
        at = at[..., None, None, :].expand(*lead, T, h, w, -1)
        ay = ay[None, :, None, :].expand(*lead, T, h, w, -1)
        ax = ax[None, None, :, :].expand(*lead, T, h, w, -1)
        return torch.cat([at, ay, ax], dim=-1).reshape(*lead, T * h * w, self.head_dim // 2)

    def cos_sin(
        self, frame_pos: torch.Tensor, h: int, w: int, dtype: torch.dtype, device: torch.device
    ) -> tuple[torch.Tensor, torch.Tensor]:
        a = self.angles(frame_pos.cpu(), h, w)
        return a.cos().to(device=device, dtype=dtype), a.sin().to(device=device, dtype=dtype)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate channel pairs (i, i + hd/2) of x (B, H, L, hd) by the angles behind cos, sin (L, hd/2),
    or (B, L, hd/2) when every row has its own positions."""
    if cos.dim() == 3:
        cos, sin = cos[:, None], sin[:, None]  # (B, 1, L, hd/2): the same rotation for every head
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)
