"""Training task of the frame autoencoder: random single frames, L1 + SSIM loss, held-out PSNR.

reverie train autoencoder --data runs/out/dungeon --preset small --out runs/out/ae --minutes 10
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from reverie.errors import ReverieError
from reverie.models.autoencoder import Autoencoder, AutoencoderConfig, frames_to_tensor, tensor_to_frames
from reverie.models.critic import Adversary, PixelCritic
from reverie.models.losses import psnr_uint8, reconstruction_loss, ssim
from reverie.train.config import TrainConfig
from reverie.train.task import unwrap
from reverie.typed_config import config_from_dict

if TYPE_CHECKING:
    from torch.utils.tensorboard import SummaryWriter

    from reverie.train.prediction_bank import PredictionBank

# L1 keeps colours sharp (L2 alone blurs), SSIM rewards local structure; an L2 term was not tried
L1_WEIGHT, SSIM_WEIGHT = 1.0, 0.2
ANCHOR_POOL = 8  # far predictions keep the untuned decoder's colours at this scale (pixels), not finer


@dataclass
class AutoencoderLossConfig:
    """The autoencoder's objective beyond L1 + SSIM (`--set loss.KEY=VALUE`, saved with the run).

    A decoder tuned to a dynamics model (`--tune-to`) learns the real frame from the model's
    predictions only a few frames ahead: further on, the model's future and the real one part ways,
    and a decoder asked to draw the real frame from a different future learns to blur. Those far
    predictions instead keep the colours the untuned decoder gives them (an L1 between the two
    decodes pooled to 8x8-pixel blocks), and the critic (`adv_weight`) asks that every decoded
    frame, near or far, look like the world's at the scale of a patch."""

    adv_weight: float = 0.0  # weight of a patch critic's generator loss on every decoded frame (0 = off)
    adv_lr: float = 2e-4  # the critic's learning rate (constant; its own AdamW)
    bank_horizon: int = 3  # with --tune-to: frames the model predicts on from each real context window
    near_horizon: int = 3  # predictions up to this many frames ahead learn the real frame; later ones keep the untuned colours

    def __post_init__(self) -> None:
        if not 0.0 <= self.adv_weight <= 10.0:
            raise ReverieError(f"loss.adv_weight must be in [0, 10], got {self.adv_weight}")
        if not 0.0 < self.adv_lr <= 1.0:
            raise ReverieError(f"loss.adv_lr must be in (0, 1], got {self.adv_lr}")
        if not 1 <= self.bank_horizon <= 64:
            raise ReverieError(f"loss.bank_horizon must be in 1..64, got {self.bank_horizon}")
        if not 1 <= self.near_horizon <= self.bank_horizon:
            raise ReverieError(
                f"loss.near_horizon must be in 1..loss.bank_horizon ({self.bank_horizon}), got {self.near_horizon}"
            )

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AutoencoderLossConfig:
        return config_from_dict(cls, d, "loss")


VAL_FRAMES = 512  # held-out frames scored at each checkpoint, spread evenly over the held-out episodes

SampleFn = Callable[[int, np.random.Generator], np.ndarray]  # (batch, rng) -> uint8 (B, H, W, 3)


def split_episodes(n: int, val_fraction: float) -> tuple[list[int], list[int]]:
    """(train, held-out) episode indices: the last ~val_fraction of episodes by index are held out."""
    if n == 0:
        return [], []
    n_val = 0 if n < 2 or val_fraction <= 0 else max(1, round(n * val_fraction))
    return list(range(n - n_val)), list(range(n - n_val, n))


class AutoencoderTask:
    name = "autoencoder"

    def __init__(
        self,
        model_cfg: AutoencoderConfig,
        cfg: TrainConfig,
        sample: SampleFn,
        val_frames: np.ndarray,  # (N, H, W, 3) uint8, may be empty
        size: tuple[int, int],  # (width, height)
        data_info: dict[str, Any] | None = None,
        init: str | None = None,
        freeze_encoder: bool = False,
        bank: PredictionBank | None = None,
        val_bank: PredictionBank | None = None,
        loss_cfg: AutoencoderLossConfig | None = None,
    ) -> None:
        self.model_cfg, self.cfg, self._sample = model_cfg, cfg, sample
        self.init, self.freeze_encoder = init, freeze_encoder
        self.loss_cfg = loss_cfg or AutoencoderLossConfig()
        self.adversary: Adversary | None = None  # set by build_model when loss.adv_weight > 0
        self._anchor: Autoencoder | None = None  # the untuned decoder, for the far predictions' colours
        # a dynamics model's predicted latents with their real frames: half of every batch decodes them
        self.bank, self.val_bank = bank, val_bank
        self.val_frames = val_frames
        self.size = size
        self.data_info = data_info or {}
        s = model_cfg.stride
        if size[0] % s or size[1] % s:
            raise ReverieError(
                f"frames are {size[0]}x{size[1]}, but this autoencoder needs width and height divisible by "
                f"{s}; accepted e.g. 64x64, 96x64, 128x72"
            )

    # -- building ----------------------------------------------------------------------------------
    @classmethod
    def from_store(
        cls, path: str, model_cfg: AutoencoderConfig, cfg: TrainConfig, init: str | None = None,
        freeze_encoder: bool = False, tune_to: str | None = None, tune_windows: int | None = None,
        loss_cfg: AutoencoderLossConfig | None = None,
    ) -> AutoencoderTask:  # fmt: skip
        """Single frames of the store; with `tune_to` (a dynamics run or package), also that model's
        predicted latents of the store (train/prediction_bank.py), for a decoder tuned to the model."""
        from reverie.data.sampler import WindowSampler
        from reverie.data.store import EpisodeStore

        store = EpisodeStore.open(path)
        if len(store) == 0:
            raise ReverieError(
                f"{path}: the episode store holds no episodes; record some with `reverie record`"
            )
        train_eps, val_eps = split_episodes(len(store), cfg.val_fraction)
        sampler = WindowSampler(store, 1, episodes=train_eps)

        def sample(batch: int, rng: np.random.Generator) -> np.ndarray:
            return np.asarray(sampler.sample(batch, rng)["obs"][:, 0])  # (B, 1, H, W, 3) -> (B, H, W, 3)

        val = _spread_frames([store[i].obs for i in val_eps], VAL_FRAMES)
        info = {
            "path": os.path.abspath(path),
            "world": store.meta.get("world"),
            "width": store.size.width,
            "height": store.size.height,
            "episodes": len(store),
            "train_episodes": [train_eps[0], train_eps[-1] + 1] if train_eps else [],
            "val_episodes": val_eps,
            "train_frames": int(sum(store.lengths[i] for i in train_eps)),
        }
        size = (store.size.width, store.size.height)
        bank = val_bank = None
        if tune_to is not None:
            from reverie.cpus import usable_cpus
            from reverie.train.prediction_bank import BANK_WINDOWS, VAL_WINDOWS, build_bank

            torch.set_num_threads(cfg.threads or usable_cpus())  # the bank is built before the loop starts
            windows = tune_windows or BANK_WINDOWS
            horizon = (loss_cfg or AutoencoderLossConfig()).bank_horizon
            bank = build_bank(tune_to, path, train_eps, windows, horizon, seed=cfg.seed)
            if val_eps:
                n_val = min(VAL_WINDOWS, windows)
                val_bank = build_bank(tune_to, path, val_eps, n_val, horizon, seed=cfg.seed + 1)
            info["tuned_to"] = {"model": tune_to, "windows": windows, "horizon": horizon}
        return cls(
            model_cfg, cfg, sample, val, size, info, init=init, freeze_encoder=freeze_encoder,
            bank=bank, val_bank=val_bank, loss_cfg=loss_cfg,
        )  # fmt: skip

    @classmethod
    def from_frames(
        cls,
        frames: np.ndarray,
        model_cfg: AutoencoderConfig,
        cfg: TrainConfig,
        val_frames: np.ndarray | None = None,
    ) -> AutoencoderTask:
        """Train on an in-memory uint8 (N, H, W, 3) array (tests, benchmarks)."""
        if frames.ndim != 4 or frames.dtype != np.uint8 or len(frames) == 0:
            raise ReverieError(
                f"frames must be a non-empty uint8 (N, H, W, 3) array, got {frames.dtype} {frames.shape}"
            )

        def sample(batch: int, rng: np.random.Generator) -> np.ndarray:
            return frames[rng.integers(0, len(frames), size=batch)]

        val = val_frames if val_frames is not None else frames[:0]
        size = (frames.shape[2], frames.shape[1])
        return cls(
            model_cfg, cfg, sample, val, size, {"source": "in-memory frames", "train_frames": len(frames)}
        )

    # -- the Task contract -------------------------------------------------------------------------
    def build_model(self) -> nn.Module:
        """The autoencoder (and, with loss.adv_weight > 0, the critic beside it: built here, after the
        loop has seeded torch, so a fresh run starts from the same critic every time)."""
        model = Autoencoder(self.model_cfg)
        if self.init:  # start from another run's shipped (EMA) weights, buffers included
            from reverie.checkpoint import load_weights

            load_weights(model, load_init(self.init)[1], f"{self.init}: model.safetensors")
        self._anchor = None
        if self.bank is not None and (self.bank.horizon > self.loss_cfg.near_horizon).any():
            self._anchor = copy.deepcopy(model).eval().requires_grad_(False)
        self.adversary = None
        if self.loss_cfg.adv_weight > 0:
            critic = PixelCritic("none", 1, 0, paired=False)  # a frame alone: does each patch look real?
            self.adversary = Adversary(critic, self.loss_cfg.adv_lr)
        return model.freeze_encoder() if self.freeze_encoder else model

    def batch(self, step: int, rank: int, world_size: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.cfg.seed, step, rank])
        obs = self._sample(self.cfg.batch_size, rng)  # (B, H, W, 3) uint8
        flip = rng.random(len(obs)) < 0.5  # mirrored views are as plausible as real ones for an autoencoder
        obs = np.where(flip[:, None, None, None], obs[:, :, ::-1], obs)
        out = {"obs": torch.from_numpy(np.ascontiguousarray(obs))}
        if self.bank is not None:  # the model's latents are not flipped: their frames are not either
            n = len(obs) - len(obs) // 2
            out["obs"] = out["obs"][: len(obs) // 2]
            idx = rng.integers(0, len(self.bank), size=n)
            out["z_pred"] = self.bank.z[idx]
            out["obs_pred"] = torch.from_numpy(self.bank.frames[idx])
            out["near"] = torch.from_numpy(self.bank.horizon[idx] <= self.loss_cfg.near_horizon)
        return out

    def loss(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        x = frames_to_tensor(batch["obs"])  # (B, 3, H, W)
        if "z_pred" not in batch:
            x_hat, _ = model(x)
            loss, metrics = reconstruction_loss(x_hat, x, l1=L1_WEIGHT, ssim_weight=SSIM_WEIGHT)
            return self._adversarial(loss, metrics, x, x_hat)
        z_pred, near = batch["z_pred"], batch["near"].to(x.device)
        x_hat, _ = model(x, z_pred)  # (B + N, 3, H, W): reconstructions, then predictions
        B, N = len(x), len(z_pred)
        rec, metrics = reconstruction_loss(x_hat[:B], x, l1=L1_WEIGHT, ssim_weight=SSIM_WEIGHT)
        pred = x_hat.new_zeros(())
        if near.any():  # a few frames ahead: the real frame the prediction stands for
            target = frames_to_tensor(batch["obs_pred"]).to(x.device)[near]
            near_loss, pred_m = reconstruction_loss(
                x_hat[B:][near], target, l1=L1_WEIGHT, ssim_weight=SSIM_WEIGHT
            )
            pred = pred + near_loss * near.sum() / N
            metrics |= {f"pred_{k}": v for k, v in pred_m.items()}
        if not near.all():  # further ahead: the untuned decoder's colours, at the scale of a block
            assert self._anchor is not None
            far = ~near
            self._anchor.to(x.device)
            with torch.no_grad():
                anchor = F.avg_pool2d(self._anchor.decode(z_pred[far].to(x.device)), ANCHOR_POOL)
            far_loss = (F.avg_pool2d(x_hat[B:][far], ANCHOR_POOL) - anchor).abs().mean()
            pred = pred + far_loss * far.sum() / N
            metrics["far_l1"] = float(far_loss.detach())
        return self._adversarial((rec + pred) / 2, metrics, x, x_hat)

    def _adversarial(
        self, loss: torch.Tensor, metrics: dict[str, float], real: torch.Tensor, fake: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """With loss.adv_weight > 0: one critic step on real frames against every decoded one, and the
        critic's generator loss (its gradient reaches the decoder) added to the loss."""
        if self.adversary is None:
            return loss, metrics
        metrics = metrics | self.adversary.update(None, real, fake, None)
        gen = self.adversary.generator_loss(None, fake, None)
        return loss + self.loss_cfg.adv_weight * gen, metrics | {"recon_loss": float(loss.detach())}

    def log_samples(self, model: nn.Module, writer: SummaryWriter, step: int) -> None:
        frames = self.val_frames[:: max(1, len(self.val_frames) // 8)][:8]
        if len(frames) == 0:
            frames = self._sample(8, np.random.default_rng(0))
        recon = reconstruct(unwrap(model), frames)
        grid = np.concatenate([np.concatenate([a, b], axis=1) for a, b in zip(frames, recon)], axis=0)
        writer.add_image("samples/real|reconstructed", grid, step, dataformats="HWC")

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        out = evaluate_frames(unwrap(model), self.val_frames) if len(self.val_frames) else {}
        if self.val_bank is not None and len(self.val_bank):
            out |= evaluate_bank(unwrap(model), self.val_bank)
        return out

    def model_config(self) -> dict:
        return json.loads(json.dumps(asdict(self.model_cfg)))

    def extra_config(self) -> dict[str, Any]:
        """Saved in the run's config.json beside model/train/data: the objective."""
        return {"loss": asdict(self.loss_cfg)}

    def data_config(self) -> dict:
        extra = (
            {"init": os.path.abspath(self.init), "freeze_encoder": self.freeze_encoder} if self.init else {}
        )
        return self.data_info | extra

    def card(self) -> str:
        c, (w, h) = self.model_cfg, self.size
        n = sum(p.numel() for p in Autoencoder(c).parameters())
        lc, lh, lw = c.latent_channels, h // c.stride, w // c.stride
        return "\n".join(
            [
                "# reverie frame autoencoder",
                "",
                f"Fully convolutional autoencoder: {w}x{h}x3 frames <-> {lw}x{lh}x{lc} latents "
                f"(stride {c.stride}, {w * h * 3 / (lw * lh * lc):.0f}x fewer values), {n / 1e6:.2f} M parameters.",
                "Latents are normalised per channel (stored shift/scale) for the diffusion dynamics model.",
                f"Loss: {L1_WEIGHT} * L1 + {SSIM_WEIGHT} * (1 - SSIM). Load with "
                "`reverie.models.autoencoder.load_autoencoder(RUN)`.",
                "",
                f"Data: {json.dumps({k: v for k, v in self.data_info.items() if k != 'val_episodes'})}",
                f"Held-out episodes: {self.data_info.get('val_episodes', [])}",
            ]
            + (
                [
                    "",
                    f"Fine-tuned from {self.init}"
                    + (
                        " with the encoder frozen: it encodes exactly as that run did, only the decoder "
                        "learnt more."
                        if self.freeze_encoder
                        else "."
                    ),
                ]
                if self.init
                else []
            )
            + (
                [
                    "",
                    f"Decoder tuned to the dynamics model {tuned['model']}: half of every batch decodes that "
                    f"model's own predicted latents (1-{tuned['horizon']} frames ahead of real context, at "
                    f"its play settings, {tuned['windows']} windows); those up to "
                    f"{min(self.loss_cfg.near_horizon, tuned['horizon'])} frames ahead learn the real "
                    "frames they predict"
                    + (
                        f", later ones keep the untuned decoder's colours in {ANCHOR_POOL}x{ANCHOR_POOL}-pixel blocks."
                        if tuned["horizon"] > self.loss_cfg.near_horizon
                        else "."
                    ),
                ]
                if (tuned := self.data_info.get("tuned_to"))
                else []
            )
            + (
                [
                    "",
                    f"Adversarial term: a patch critic over single frames (hinge loss, lr {self.loss_cfg.adv_lr}) "
                    f"judges every decoded frame against real ones; weight {self.loss_cfg.adv_weight}.",
                ]
                if self.loss_cfg.adv_weight > 0
                else []
            )
        )

    def frames_per_batch(self) -> int:
        return self.cfg.batch_size


def _spread_frames(episodes: Sequence[np.ndarray], n: int) -> np.ndarray:
    if not episodes:
        return np.zeros((0, 1, 1, 3), np.uint8)
    frames = np.concatenate(list(episodes))
    return frames[np.linspace(0, len(frames) - 1, min(n, len(frames))).astype(int)]


@torch.no_grad()
def reconstruct(model: nn.Module, frames: np.ndarray, batch: int = 64) -> np.ndarray:
    """uint8 (N, H, W, 3) -> uint8 (N, H, W, 3) through encode and decode."""
    assert isinstance(model, Autoencoder)
    dev = next(model.parameters()).device
    out = [
        tensor_to_frames(model.decode(model.encode(frames_to_tensor(frames[i : i + batch]).to(dev))))
        for i in range(0, len(frames), batch)
    ]
    return np.concatenate(out)


@torch.no_grad()
def evaluate_frames(model: nn.Module, frames: np.ndarray) -> dict[str, float]:
    """Held-out PSNR (mean over frames, uint8 range 255), SSIM and the spread of the normalised latents."""
    assert isinstance(model, Autoencoder)
    recon = reconstruct(model, frames)
    a, b = torch.from_numpy(frames), torch.from_numpy(recon)
    psnr = float(np.mean([psnr_uint8(a[i], b[i]) for i in range(len(frames))]))
    x, x_hat = frames_to_tensor(a), frames_to_tensor(b)
    dev = next(model.parameters()).device
    z = model.encode(x[:256].to(dev)).float()  # (N, C, h, w)
    return {
        "psnr": psnr,
        "ssim": float(ssim(x_hat, x)),
        "z_mean": float(z.mean()),
        "z_std": float(z.std(dim=(0, 2, 3)).mean()),
    }


@torch.no_grad()
def evaluate_bank(model: nn.Module, bank: PredictionBank) -> dict[str, float]:
    """PSNR of the decoded predictions against the real frames they predict, overall and one step ahead."""
    assert isinstance(model, Autoencoder)
    dev = next(model.parameters()).device
    decoded = np.concatenate(
        [tensor_to_frames(model.decode(bank.z[i : i + 64].to(dev))) for i in range(0, len(bank), 64)]
    )
    a, b = torch.from_numpy(bank.frames), torch.from_numpy(decoded)
    psnr = np.array([psnr_uint8(a[i], b[i]) for i in range(len(bank))])
    return {"pred_psnr": float(psnr.mean()), "pred_psnr_h1": float(psnr[bank.horizon == 1].mean())}


def load_init(run: str) -> tuple[AutoencoderConfig, dict[str, torch.Tensor]]:
    """(config, EMA weights) of the autoencoder run a fine-tune starts from."""
    from reverie.checkpoint import check_kind, load_run

    config, state = load_run(run)
    check_kind(config, "autoencoder", run)
    return AutoencoderConfig.from_dict(config["model"]), state
