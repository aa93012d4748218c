"""The one causal sampling loop every mode uses: known frames enter the context, unknown ones are sampled.

Like `reverie.models.sampler.sample_video`, plus a tqdm bar over frames and per-frame "action
unknown" (frames imported from video have no actions: they enter the context with the null action).
"""

from __future__ import annotations

import torch

from reverie.errors import ReverieError
from reverie.models.sampler import SamplerConfig, make_rollout


@torch.inference_mode()
def fill_causal(
    model: torch.nn.Module,
    z: torch.Tensor,
    known: list[bool],
    act: torch.Tensor | None,
    act_known: list[bool] | None = None,
    text: torch.Tensor | None = None,
    cfg: SamplerConfig | None = None,
    *,
    seed: int = 0,
    progress: bool = False,
    desc: str = "generate",
) -> torch.Tensor:
    """Fill the unknown frames of z (T, C, h, w) in time order, one session; returns (T, C, h, w).

    act: (T,) / (T, D) actions that led to each frame (None: an action-less model); act_known (T,)
    False marks frames whose action is unknown. Known frames are returned unchanged. Only the last
    `max_context` known frames before the first unknown one matter (older ones fall out of the window).
    """
    from tqdm import tqdm

    T = z.shape[0]
    if len(known) != T:
        raise ReverieError(f"known must mark each of the {T} frames, got {len(known)}")
    gen = torch.Generator().manual_seed(int(seed))
    rollout = make_rollout(model, cfg)
    rollout.reset(None, text=text, batch_size=1, latent_shape=tuple(z.shape[1:]))  # type: ignore[arg-type]
    first = next((i for i, k in enumerate(known) if not k), T)
    start = max(0, first - rollout.max_context)  # context older than the window cannot matter
    out = z.clone()
    bar = tqdm(total=T - sum(known), unit="frame", desc=desc, disable=not progress)
    for i in range(start, T):
        a = None
        if act is not None and (act_known is None or act_known[i]):
            a = act[i : i + 1]
        if known[i]:
            rollout.append(z[i : i + 1], a, gen)
        else:
            out[i] = rollout.step(a, gen)[0].to(out.dtype)
            bar.update(1)
    bar.close()
    return out
