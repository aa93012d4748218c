"""The typed action spec: its JSON form round-trips exactly, bad dicts are refused clearly."""

from __future__ import annotations

import json

import numpy as np
import pytest
from gymnasium import spaces

from reverie.errors import ReverieError
from reverie.worlds.action_spec import ActionSpec

DISCRETE = {"type": "discrete", "n": 3, "names": ["noop", "forward", "back"]}
BOX = {"type": "box", "shape": [3], "low": [-1, -1.0, 0.0], "high": [1.0, 1.0, 1.0], "names": ["x", "y", "z"]}
NONE = {"type": "none"}
STREAM = {
    "type": "discrete",
    "n": 2,
    "names": ["noop", "c1"],
    "source": "latent-actions",
    "model": "/runs/la",
    "codes": [1, 0],
}


@pytest.mark.parametrize(
    "d",
    [
        DISCRETE,
        BOX,
        NONE,
        STREAM,
        {"type": "discrete", "n": 9},
        {"n": 2, "type": "discrete", "names": ["a", "b"]},
    ],
)
def test_round_trip_is_the_same_json(d: dict) -> None:
    spec = ActionSpec.from_dict(d)
    assert spec.to_dict() == d
    assert json.dumps(spec.to_dict()) == json.dumps(d)  # key order and number types too
    assert ActionSpec.of(spec) is spec and ActionSpec.of(d) == spec


def test_to_dict_is_a_fresh_copy() -> None:
    spec = ActionSpec.from_dict(STREAM)
    out = spec.to_dict()
    out["codes"].append(5)
    out["names"].append("x")
    assert spec.to_dict() == STREAM


@pytest.mark.parametrize(
    "d,words",
    [
        ("discrete", "a dict"),
        ({"n": 3}, "'type' must be one of discrete, box, none"),
        ({"type": "multi"}, "'type' must be one of discrete, box, none"),
        ({"type": "discrete"}, "integer 'n' >= 1"),
        ({"type": "discrete", "n": 0}, "integer 'n' >= 1"),
        ({"type": "discrete", "n": "9"}, "integer 'n' >= 1"),
        ({"type": "box"}, "'shape' list of positive integers"),
        ({"type": "box", "shape": []}, "'shape' list of positive integers"),
        ({"type": "box", "shape": [2.5]}, "'shape' list of positive integers"),
        ({"type": "discrete", "n": 2, "names": "ab"}, "'names' must be a list of strings"),
    ],
)
def test_bad_specs_are_refused_clearly(d: object, words: str) -> None:
    with pytest.raises(ReverieError, match="bad action spec") as e:
        ActionSpec.from_dict(d)  # type: ignore[arg-type]
    assert words in str(e.value)


def test_helpers() -> None:
    d, b, v = ActionSpec.from_dict(DISCRETE), ActionSpec.from_dict(BOX), ActionSpec.from_dict(NONE)
    assert (d.is_discrete, d.is_box, d.has_actions) == (True, False, True)
    assert (b.is_discrete, b.is_box, b.has_actions) == (False, True, True)
    assert (v.is_discrete, v.is_box, v.has_actions) == (False, False, False)
    assert (d.num_actions, b.num_actions, v.num_actions) == (3, 0, 0)
    assert (d.action_dim, b.action_dim, v.action_dim) == (0, 3, 0)
    assert ActionSpec.from_dict({"type": "box", "shape": [2, 3]}).action_dim == 6
    assert d.null_action() == 0 and v.null_action() is None
    null = b.null_action()
    assert null.dtype == np.float32 and null.tolist() == [0.0, 0.0, 0.0]
    shifted = ActionSpec.from_dict({"type": "box", "shape": [2], "low": [0.5, -1], "high": [1, 1]})
    assert shifted.null_action().tolist() == [0.5, 0.0]  # zeros clipped into the box
    assert d.space() == spaces.Discrete(3) and v.space() == spaces.Discrete(1)
    box = b.space()
    assert isinstance(box, spaces.Box) and box.shape == (3,) and box.low.tolist() == [-1, -1, 0]


def test_encode_decode_features() -> None:
    d, b, v = ActionSpec.from_dict(DISCRETE), ActionSpec.from_dict(BOX), ActionSpec.from_dict(NONE)
    e = d.encode(np.array([2]))
    assert e.dtype == np.int64 and e.shape == () and d.decode(e) == 2
    with pytest.raises(ReverieError, match=r"action 3 is outside 0\.\.2 \(noop, forward, back\)"):
        d.encode(3)
    box = b.encode([2.0, 0.5, -1.0])  # clipped into the box
    assert box.dtype == np.float32 and box.tolist() == [1.0, 0.5, 0.0]
    np.testing.assert_array_equal(b.decode(box), box)
    assert b.decode(box).shape == (3,)
    assert v.encode(None).shape == (0,) and v.decode(np.zeros(0)) is None
    assert d.features(1).tolist() == [0.0, 1.0, 0.0]
    # box features: each axis scaled from [low, high] to [-1, 1]
    np.testing.assert_allclose(b.features([0.0, 0.5, 0.5]), [0.0, 0.5, 0.0])
    assert v.features(None).shape == (0,)
    # a recorded action round-trips through encode/decode and stays inside the space
    for spec in (d, b):
        a = spec.space().sample()
        assert spec.space().contains(spec.decode(spec.encode(a)))


def test_shipped_model_spec_reads_back_unchanged() -> None:
    """The shipped weights' config.json keeps loading: its spec reads and writes the same JSON."""
    from pathlib import Path

    config = Path(__file__).resolve().parents[1] / "reverie" / "weights" / "default" / "config.json"
    d = json.loads(config.read_text())["data"]["action_spec"]
    spec = ActionSpec.from_dict(d)
    assert json.dumps(spec.to_dict()) == json.dumps(d)
    assert (spec.num_actions, spec.names[0] if spec.names else None) == (9, "noop")
