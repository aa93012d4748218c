"""bf16 only where the hardware does bf16 math: emulated bf16 made training and encoding several
times slower than fp32 on a CPU with AVX2 only, so "auto" (the default) falls back to fp32 there."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from reverie.cpus import native_bf16, uses_bf16
from reverie.errors import ReverieError
from reverie.models.world_model import choose_dtype
from reverie.train.config import TrainConfig, check

CPU = torch.device("cpu")


@pytest.mark.parametrize("has", [True, False])
def test_auto_follows_the_cpu_and_explicit_choices_do_not(monkeypatch: pytest.MonkeyPatch, has: bool) -> None:
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: has)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    assert native_bf16("cpu") is has
    assert uses_bf16("auto", CPU) is has
    assert uses_bf16("bf16", CPU) and not uses_bf16("fp32", CPU)
    assert choose_dtype("auto") == (torch.bfloat16 if has else torch.float32)


def test_amx_alone_counts_as_native(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True)
    assert native_bf16(CPU)


def test_training_defaults_to_auto_and_refuses_other_precisions() -> None:
    assert TrainConfig().precision == "auto"
    for ok in ("auto", "bf16", "fp32"):
        check(TrainConfig(precision=ok))
    with pytest.raises(ReverieError, match="accepted: auto, bf16, fp32"):
        check(TrainConfig(precision="int8"))


def test_latents_are_encoded_in_fp32_without_native_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    """encode_episodes autocasts only where bf16 is native: without it, the latents are the fp32 ones."""
    from reverie.models.autoencoder import PRESETS, Autoencoder, frames_to_tensor
    from reverie.train import dynamics_task

    class Episode(SimpleNamespace):
        def __len__(self) -> int:
            return len(self.obs)

    obs = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    ep = Episode(obs=obs, act=np.zeros(3, dtype=np.int64), captions=["a", "a", "b"])
    store = SimpleNamespace(
        spec=SimpleNamespace(is_box=False, action_dim=0),
        size=SimpleNamespace(height=32, width=32),
        lengths=[3],
        read=lambda i: ep,
    )
    torch.manual_seed(0)
    ae = Autoencoder(PRESETS["tiny"]).eval()
    with torch.no_grad():
        fp32 = ae.encode(frames_to_tensor(obs))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            bf16 = ae.encode(frames_to_tensor(obs)).float()
    for native, want in ((False, fp32), (True, bf16)):
        monkeypatch.setattr(dynamics_task, "native_bf16", lambda d, native=native: native)
        clips = dynamics_task.encode_episodes(store, [0], ae, "cpu", "test")
        assert torch.equal(clips.z, want), native
    assert not torch.equal(fp32, bf16)


def test_the_recorder_still_imports_no_torch() -> None:
    """reverie.cpus sits below the recorder, whose worker processes need no torch (measured here: 1.7 s
    and 218 MB against 41 MB without it): the bf16 check imports torch only when it is asked."""
    import subprocess
    import sys

    code = "import sys, reverie.data.record, reverie.cpus; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
