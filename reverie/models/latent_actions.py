"""Latent actions: a discrete code per step, learned from frames alone (after Genie's latent action model).

    reverie train latent-actions --data runs/out/clips --autoencoder runs/out/ae --preset small --out runs/out/lam

Two small convolutional networks over autoencoder latents, trained together on one objective:
- the *action encoder* sees the last `context` latents and the next one and says what happened between
  them: a vector snapped to the nearest of `codes` codebook entries (vector quantisation);
- the *forward model* sees only the last `context` latents and that code, and predicts the next latent.
The code is the only way the next frame reaches the forward model, and it holds log2(codes) bits, so it
learns what the past cannot tell: the action. Nothing recorded about actions is used in training.

The codebook is a buffer updated by exponential moving averages of the vectors assigned to each code
(no gradient), and a code that falls out of use is restarted on a vector from the batch. Vectors and
codes are compared on the unit sphere (cosine), which keeps all codes in play from the first steps.
Buffers follow the trained weights exactly in the loop's EMA copy, so the saved model's codebook is the
one its encoder was trained against.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from reverie.errors import ReverieError


@dataclass(frozen=True)
class LatentActionConfig:
    latent_channels: int = 12  # the autoencoder's; set from it by the training task
    codes: int = 8  # discrete actions the model can tell apart
    code_dim: int = 16  # size of the quantised vector
    context: int = 1  # past latents both networks see (Dungeon has no momentum: one is enough)
    width: int = 64  # convolution channels
    blocks: int = 2  # residual blocks in each network
    commitment: float = 0.05  # weight of ||e - sg(q)||^2; larger pulled all vectors onto 2 codes
    codebook_decay: float = 0.99  # EMA of the codebook's cluster statistics
    dead_usage: float = 0.1  # a code used less than this times a uniform share (EMA) is restarted
    warmup: int = 300  # training steps with the unquantised vector; then k-means sets the codebook
    reservoir: int = 2048  # recent vectors kept for the k-means and for restarting dead codes

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LatentActionConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ReverieError(f"unknown latent-action config keys {unknown}; valid keys: {sorted(known)}")
        return cls(**d)


PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {"width": 32, "blocks": 1, "code_dim": 8},
    "small": {},
}


def latent_action_preset(name: str, overrides: dict[str, Any] | None = None) -> LatentActionConfig:
    if name not in PRESETS:
        raise ReverieError(f"unknown latent-action preset {name!r}; accepted: {', '.join(PRESETS)}")
    from reverie.typed_config import apply_overrides

    return apply_overrides(replace(LatentActionConfig(), **PRESETS[name]), overrides or {}, "model")


class _Block(nn.Module):
    """Residual conv block, optionally scaled and shifted by a conditioning vector (FiLM)."""

    def __init__(self, ch: int, cond: int = 0) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(min(8, ch), ch)
        self.conv1 = nn.Conv2d(ch, ch, 3, padding=1)
        self.conv2 = nn.Conv2d(ch, ch, 3, padding=1)
        self.film = nn.Linear(cond, 2 * ch) if cond else None
        nn.init.zeros_(self.conv2.weight)  # the block starts as the identity
        nn.init.zeros_(self.conv2.bias)  # type: ignore[arg-type]

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        h = self.norm(x)
        if self.film is not None and c is not None:
            scale, shift = self.film(c)[:, :, None, None].chunk(2, 1)  # (B, ch, 1, 1) each
            h = h * (1 + scale) + shift
        return x + self.conv2(F.silu(self.conv1(F.silu(h))))


class LatentActionModel(nn.Module):
    """encode(z) -> codes, predict(z_past, code) -> next latent; forward(z) -> (prediction, VQ terms)."""

    codebook: torch.Tensor  # buffers, so the loop's EMA copy holds them exactly
    usage: torch.Tensor
    embed_sum: torch.Tensor
    recent: torch.Tensor
    steps: torch.Tensor

    def __init__(self, cfg: LatentActionConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg = cfg or LatentActionConfig()
        C, W = cfg.latent_channels, cfg.width
        self.enc_in = nn.Conv2d(C * (cfg.context + 2), W, 3, padding=1)  # latents and the last change
        self.enc_blocks = nn.ModuleList(_Block(W) for _ in range(cfg.blocks))
        self.enc_out = nn.Linear(W * 16, cfg.code_dim)  # from a 4x4 pool: where things moved matters
        self.dec_in = nn.Conv2d(C * cfg.context, W, 3, padding=1)
        self.dec_blocks = nn.ModuleList(_Block(W, cfg.code_dim) for _ in range(cfg.blocks + 1))
        self.dec_out = nn.Conv2d(W, C, 3, padding=1)
        nn.init.zeros_(self.dec_out.weight)  # the forward model starts as copy-last
        nn.init.zeros_(self.dec_out.bias)  # type: ignore[arg-type]
        codebook = F.normalize(torch.randn(cfg.codes, cfg.code_dim), dim=1)
        self.register_buffer("codebook", codebook)  # (K, D) unit vectors
        self.register_buffer("usage", torch.full((cfg.codes,), 1.0 / cfg.codes))  # EMA share per code
        self.register_buffer("embed_sum", codebook.clone())  # EMA sum of vectors assigned to each code
        self.register_buffer("recent", torch.zeros(cfg.reservoir, cfg.code_dim))  # ring of recent vectors
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))  # training steps seen

    # -- the action encoder ---------------------------------------------------------------------------
    def vector(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, context + 1, C, h, w) -> unit vectors (B, D) before quantisation."""
        h = self.enc_in(torch.cat([z.flatten(1, 2), z[:, -1] - z[:, -2]], 1))  # (B, W, h, w)
        for block in self.enc_blocks:
            h = block(h)
        h = F.adaptive_avg_pool2d(F.silu(h), 4).flatten(1)  # (B, W * 16)
        return F.normalize(self.enc_out(h).float(), dim=1)

    def quantise(self, e: torch.Tensor) -> torch.Tensor:
        """Nearest code (cosine) of each unit vector e (B, D) -> (B,) int64."""
        return (e @ self.codebook.t()).argmax(1)

    @torch.no_grad()
    def encode(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, context + 1, C, h, w) -> code of the step from z[:, -2] to z[:, -1], (B,) int64."""
        return self.quantise(self.vector(z))

    # -- the forward model ----------------------------------------------------------------------------
    def predict(self, z_past: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        """z_past (B, context, C, h, w), code vectors q (B, D) -> next latent (B, C, h, w)."""
        h = self.dec_in(z_past.flatten(1, 2))
        for block in self.dec_blocks:
            h = block(h, q.to(h.dtype))
        return z_past[:, -1] + self.dec_out(F.silu(h))  # a change to the last frame

    def forward(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        """z (B, context + 1, C, h, w) -> prediction of z[:, -1], codes, commitment loss."""
        with torch.autocast(z.device.type, enabled=False):
            e = self.vector(z.float())  # (B, D)
            code = self.quantise(e)
            q = self.codebook[code]  # (B, D)
            commit = (e - q).pow(2).sum(1).mean()
            warm = self.training and int(self.steps) < self.cfg.warmup
            if self.training:
                self._update_codebook(e.detach(), code)
            # During warm-up the forward model reads the vector itself: the encoder learns what the
            # past cannot tell before any quantisation noise (quantising from step 0 left 2 codes in use).
            q_st = e if warm else e + (q - e).detach()  # straight-through: the gradient reaches e
        return {"pred": self.predict(z[:, :-1], q_st), "code": code, "commit": commit * (not warm)}

    @torch.no_grad()
    def _update_codebook(self, e: torch.Tensor, code: torch.Tensor) -> None:
        d, K, step = self.cfg.codebook_decay, self.cfg.codes, int(self.steps)
        R = len(self.recent)
        self.recent[(step * len(e) + torch.arange(len(e), device=e.device)) % R] = e
        self.steps += 1
        filled = self.recent[: min(R, (step + 1) * len(e))]
        if step + 1 < self.cfg.warmup:
            return
        if step + 1 == self.cfg.warmup:  # the codebook starts as k-means of the warmed-up vectors
            self.codebook.copy_(spherical_kmeans(filled, K))
            self.embed_sum.copy_(self.codebook / K)
            self.usage.fill_(1.0 / K)
            return
        onehot = F.one_hot(code, K).float()  # (B, K)
        self.usage.lerp_(onehot.mean(0), 1 - d)
        self.embed_sum.lerp_(onehot.t() @ e / len(e), 1 - d)
        dead = self.usage < self.cfg.dead_usage / K
        if dead.any():  # restart on recent vectors far from every code (k-means++ style draws)
            far = (1 - (filled @ self.codebook.t()).amax(1)).clamp_min(1e-6)
            pick = torch.multinomial(far, int(dead.sum()), replacement=False)
            self.embed_sum[dead] = filled[pick] / K
            self.usage[dead] = 1.0 / K
        self.codebook.copy_(F.normalize(self.embed_sum, dim=1))

    def config_dict(self) -> dict[str, Any]:
        return asdict(self.cfg)


def spherical_kmeans(x: torch.Tensor, k: int, iters: int = 20) -> torch.Tensor:
    """k unit centres of unit vectors x (N, D): k-means++ seeding, then cosine k-means."""
    g = torch.Generator(device=x.device).manual_seed(0)
    centres = x[torch.randint(len(x), (1,), generator=g, device=x.device)]
    while len(centres) < k:
        far = (1 - (x @ centres.t()).amax(1)).clamp_min(1e-6)
        centres = torch.cat([centres, x[torch.multinomial(far, 1, generator=g)]])
    for _ in range(iters):
        assign = (x @ centres.t()).argmax(1)
        sums = torch.zeros_like(centres).index_add_(0, assign, x)
        empty = sums.norm(dim=1) < 1e-6
        centres = torch.where(empty[:, None], centres, F.normalize(sums, dim=1))
    return centres


def windows_of(z: torch.Tensor, lengths: list[int], context: int) -> torch.Tensor:
    """Every frame's encoder input (N, context + 1, C, h, w) over episodes laid end to end in z (N, C, h, w).

    Frame i sees latents i - context .. i of its own episode; before an episode's first frame the first
    frame is repeated, so frame 0 reads as a step that changed nothing (the store's null action).
    """
    rows = []
    start = 0
    for n in lengths:
        i = torch.arange(start, start + n)[:, None] + torch.arange(-context, 1)  # (n, context + 1)
        rows.append(i.clamp(min=start))
        start += n
    return z[torch.cat(rows)] if rows else z.new_zeros((0, context + 1, *z.shape[1:]))


@torch.no_grad()
def label_latents(
    model: LatentActionModel, z: torch.Tensor, lengths: list[int], chunk: int = 1024
) -> torch.Tensor:
    """The code of every frame of episodes laid end to end in z (N, C, h, w) -> (N,) int64."""
    model.eval()
    out = []
    start = 0
    for n in lengths:
        zi = windows_of(z[start : start + n], [n], model.cfg.context)
        out += [model.encode(zi[lo : lo + chunk]) for lo in range(0, n, chunk)]
        start += n
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.long)


def load_latent_actions(path: str, device: str = "cpu") -> tuple[LatentActionModel, dict[str, Any]]:
    """(model in eval mode, the run's config.json) of a `reverie train latent-actions` run."""
    from reverie.checkpoint import check_kind, load_run, load_weights

    config, state = load_run(path)
    check_kind(config, "latent-actions", path)
    model = LatentActionModel(LatentActionConfig.from_dict(config["model"]))
    load_weights(model, state, f"{path}: model.safetensors")
    return model.to(device).eval(), config


# -- how codes agree with recorded actions (measurement and key binding; never used in training) ------
def contingency(codes: Any, actions: Any, n_codes: int, n_actions: int) -> Any:
    """counts[k, a]: steps given code k whose recorded action was a."""
    import numpy as np

    counts = np.zeros((n_codes, n_actions), np.int64)
    np.add.at(counts, (np.asarray(codes), np.asarray(actions)), 1)
    return counts


def nmi(counts: Any) -> float:
    """Normalised mutual information (arithmetic mean of the entropies) of a contingency table."""
    import numpy as np

    p = counts / max(1, counts.sum())
    pk, pa = p.sum(1), p.sum(0)
    nz = p > 0
    mi = float((p[nz] * np.log(p[nz] / np.outer(pk, pa)[nz])).sum())
    hk = -float((pk[pk > 0] * np.log(pk[pk > 0])).sum())
    ha = -float((pa[pa > 0] * np.log(pa[pa > 0])).sum())
    return 0.0 if hk + ha == 0 else 2 * mi / (hk + ha)


def one_to_one(counts: Any) -> dict[int, int]:
    """code -> action, each used at most once, maximising the steps that agree (Hungarian; greedy
    without scipy). Codes left over (more codes than actions) map to nothing."""
    import numpy as np

    try:
        from scipy.optimize import linear_sum_assignment
    except ImportError:  # greedy: the largest remaining cell first
        mapping: dict[int, int] = {}
        for flat in np.argsort(-counts, axis=None):
            k, a = np.unravel_index(flat, counts.shape)
            if k not in mapping and a not in mapping.values():
                mapping[int(k)] = int(a)
        return mapping
    rows, cols = linear_sum_assignment(-counts)
    return {int(k): int(a) for k, a in zip(rows, cols)}


def many_to_one(counts: Any) -> dict[int, int]:
    """code -> the action it most often goes with (several codes may share one action)."""
    return {k: int(counts[k].argmax()) for k in range(len(counts)) if counts[k].sum() > 0}


def agreement(
    codes: Any, actions: Any, n_codes: int, names: list[str], among: list[str] | None = None
) -> dict:
    """How well codes tell recorded actions apart: accuracy after the best one-to-one and many-to-one
    code -> action mappings, normalised mutual information, and per-action recall (many-to-one).

    `among`: action names to also score on their own (the steps whose recorded action is one of them);
    the mappings are fitted on all steps.
    """
    import numpy as np

    codes, actions = np.asarray(codes), np.asarray(actions)
    counts = contingency(codes, actions, n_codes, len(names))
    result: dict[str, Any] = {"steps": len(codes), "nmi": round(nmi(counts), 4)}
    for label, mapping in (("one_to_one", one_to_one(counts)), ("many_to_one", many_to_one(counts))):
        lut = np.array([mapping.get(k, -1) for k in range(n_codes)])
        hit = lut[codes] == actions
        result[f"accuracy_{label}"] = round(float(hit.mean()), 4) if len(hit) else 0.0
        if among:
            ids = [names.index(n) for n in among if n in names]
            sel = np.isin(actions, ids)
            result[f"accuracy_{label}_view"] = round(float(hit[sel].mean()), 4) if sel.any() else 0.0
        present = [(a, n) for a, n in enumerate(names) if (actions == a).any()]
        per_action = {n: round(float(hit[actions == a].mean()), 3) for a, n in present}
        if label == "many_to_one":
            result["per_action"] = per_action
            result["mapping"] = {str(k): names[a] for k, a in mapping.items()}
        else:
            result["per_action_one_to_one"] = per_action
    result["codes_used"] = int((counts.sum(1) > 0).sum())
    return result
