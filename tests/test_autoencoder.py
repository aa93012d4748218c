"""Frame autoencoder: shapes at several sizes, exact uint8 conversions, latent scaling, losses, overfitting."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from reverie.errors import ReverieError
from reverie.models.autoencoder import (
    PRESETS,
    Autoencoder,
    frames_to_tensor,
    preset_config,
    tensor_to_frames,
)
from reverie.models.losses import psnr_from_mse, psnr_uint8, reconstruction_loss, ssim


def pattern_frames(n: int = 4, h: int = 64, w: int = 64) -> np.ndarray:
    """Smooth stripes and a disc per frame: structured like rendered frames, different per frame."""
    yy, xx = np.mgrid[0:h, 0:w] / 64.0
    out = []
    for i in range(n):
        r = 127 + 120 * np.sin(2 * np.pi * (xx * (i + 1) / 2 + yy / 3))
        g = 127 + 120 * np.cos(2 * np.pi * (yy * (i + 2) / 3))
        b = np.where((xx - 0.5) ** 2 + (yy - 0.3 * i / n - 0.3) ** 2 < 0.05, 230, 30)
        out.append(np.stack([r, g, b], -1))
    return np.clip(np.array(out), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("preset", ["tiny", "small"])
@pytest.mark.parametrize(("w", "h"), [(64, 64), (96, 64), (128, 72)])
def test_shapes_any_size(preset: str, w: int, h: int) -> None:
    model = Autoencoder(PRESETS[preset]).eval()
    x = torch.rand(2, 3, h, w) * 2 - 1
    with torch.no_grad():
        z = model.encode(x)
        x_hat = model.decode(z)
    C = PRESETS[preset].latent_channels
    assert z.shape == (2, C, h // 8, w // 8) == (2, *model.latent_shape(h, w))
    assert x_hat.shape == x.shape
    # 64x64x3 -> 8x8x12: at least 16x fewer values
    assert (64 * 64 * 3) / (C * 8 * 8) >= 16


def test_size_not_divisible_errors() -> None:
    model = Autoencoder(PRESETS["tiny"])
    with pytest.raises(ReverieError, match="multiples of its stride 8"):
        model.encode(torch.zeros(1, 3, 60, 64))


def test_frame_conversion_round_trip_is_exact() -> None:
    frames = np.random.default_rng(0).integers(0, 256, (2, 5, 16, 24, 3), dtype=np.uint8)
    x = frames_to_tensor(frames)
    assert x.shape == (2, 5, 3, 16, 24) and x.dtype == torch.float32
    assert x.min() >= -1 and x.max() <= 1
    np.testing.assert_array_equal(tensor_to_frames(x), frames)
    with pytest.raises(ReverieError, match="uint8"):
        frames_to_tensor(frames.astype(np.float32))


def test_latent_statistics_normalise_encodings() -> None:
    torch.manual_seed(0)
    model = Autoencoder(PRESETS["tiny"])
    x = frames_to_tensor(pattern_frames(8))
    model.train()
    for _ in range(3):
        model(x)  # the first batches set the statistics (running average), no optimiser involved
    with torch.no_grad():
        z = model.eval().encode(x)  # (B, C, h, w)
    assert z.mean(dim=(0, 2, 3)).abs().max() < 1e-3
    assert torch.allclose(z.std(dim=(0, 2, 3)), torch.ones(z.shape[1]), atol=1e-3)


def test_losses_analytic() -> None:
    a = torch.from_numpy(pattern_frames(2))
    # every pixel off by exactly 1 level: PSNR = 10 log10(255^2 / 1)
    assert psnr_uint8(a, a + 1) == pytest.approx(20 * np.log10(255), abs=1e-9)
    x = frames_to_tensor(a)
    assert float(ssim(x, x)) == pytest.approx(1.0, abs=1e-5)
    noisy = (x + 0.3 * torch.randn_like(x)).clamp(-1, 1)
    assert float(ssim(x, noisy)) < 0.8
    loss, m = reconstruction_loss(x, x)
    assert float(loss) == pytest.approx(0.0, abs=1e-5) and m["l1"] == 0.0
    # the [-1, 1] PSNR equals the 0..255 one: an error of 2/255 in [-1, 1] is one level
    assert psnr_from_mse((2 / 255) ** 2) == pytest.approx(20 * np.log10(255), abs=1e-3)


def test_preset_overrides_are_typed() -> None:
    cfg = preset_config("tiny", {"latent_channels": "8", "channels": "[8, 16, 32]"})
    assert cfg.latent_channels == 8 and cfg.channels == (8, 16, 32)
    with pytest.raises(ReverieError, match="latent_channels"):
        preset_config("tiny", {"latent_chanels": 8})
    with pytest.raises(ReverieError, match="tiny, small, base"):
        preset_config("huge")


def test_tiny_autoencoder_overfits_a_few_frames() -> None:
    """200 steps on 4 frames take the held-in PSNR from ~9 dB (random init) to above 16 dB."""
    torch.manual_seed(0)
    frames = pattern_frames(4)
    model = Autoencoder(PRESETS["tiny"])
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    x = frames_to_tensor(frames)

    def psnr_now() -> float:
        with torch.no_grad():
            recon = tensor_to_frames(model.eval().decode(model.encode(x)))
        model.train()
        return psnr_uint8(torch.from_numpy(recon), torch.from_numpy(frames))

    before = psnr_now()
    for _ in range(200):
        x_hat, _ = model(x)
        loss, _ = reconstruction_loss(x_hat, x)
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = psnr_now()
    assert after > 16.0 and after > before + 6.0, (before, after)
