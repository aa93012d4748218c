"""Every action of any world is playable: the keys the engine binds to an action give that action,
named acts (FIRE) have their own key, the rest get numbered keys, and the page is told exactly that."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from gymnasium import spaces

from reverie.engine.controls import NUMBER_KEYS, InputMapper, InputState
from reverie.engine.intents import read_name
from reverie.serve.page_controls import page_controls
from reverie.worlds.actions import ActionMapper

ATARI_FULL = ["noop", "fire", "up", "right", "left", "down", "upright", "upleft", "downright", "downleft",
              "upfire", "rightfire", "leftfire", "downfire", "uprightfire", "upleftfire", "downrightfire",
              "downleftfire"]  # fmt: skip
DISCRETE_WORLDS = {
    "dungeon": ["noop", "forward", "back", "turn_left", "turn_right", "strafe_left", "strafe_right",
                "forward_left", "forward_right"],
    "drive": ["noop", "accelerate", "brake", "left", "right", "accelerate_left", "accelerate_right"],
    "breakout": ["noop", "fire", "right", "left"],
    "atari_full": ATARI_FULL,
    "lunar_lander": ["noop", "fire_left", "fire_main", "fire_right"],
    "cartpole": ["push_left", "push_right"],
    "miniworld": ["turn_left", "turn_right", "move_forward", "move_back", "pickup", "drop", "toggle", "done"],
    "unnamed": [f"a{i}" for i in range(12)],
    "multidiscrete": ActionMapper(spaces.MultiDiscrete([3, 4])).spec["names"],
    "vizdoom_buttons": ActionMapper(
        spaces.MultiBinary(6),
        ["MOVE_FORWARD", "MOVE_BACKWARD", "TURN_LEFT", "TURN_RIGHT", "ATTACK", "USE"],
    ).spec["names"],
}  # fmt: skip


def _spec(names: list[str]) -> dict[str, Any]:
    return {"type": "discrete", "n": len(names), "names": names}


@pytest.mark.parametrize("world", sorted(DISCRETE_WORLDS))
def test_every_action_is_reached_by_its_own_keys(world: str) -> None:
    names = DISCRETE_WORLDS[world]
    m = InputMapper(_spec(names))
    assert [b.name for b in m.bindings] == names
    for i, b in enumerate(m.bindings):
        assert b.keys or i == 0, f"{b.name} has no key"
        assert m(InputState(keys=frozenset(b.keys))) == i, (b.name, b.keys)
        assert m(InputState(buttons=frozenset({b.name}))) == i  # an on-screen button names it directly


def test_breakout_fire_has_the_space_bar_and_combines_with_movement() -> None:
    m = InputMapper(_spec(DISCRETE_WORLDS["breakout"]))
    assert {b.name: b.keys for b in m.bindings} == {
        "noop": (), "fire": ("space",), "right": ("keyd",), "left": ("keya",)
    }  # fmt: skip
    assert m.names[m(InputState(keys=frozenset({"space"})))] == "fire"
    assert m.names[m(InputState(keys=frozenset({"arrowleft"})))] == "left"
    full = InputMapper(_spec(ATARI_FULL))
    assert full.names[full(InputState(keys=frozenset({"space", "keyw", "keyd"})))] == "uprightfire"
    assert (
        full.names[full(InputState(keys=frozenset({"space"}), forward=-0.9))] == "downfire"
    )  # stick + button


def test_names_read_word_by_word() -> None:
    assert read_name("downleftfire") is not None and read_name("downleftfire").move == (-1, 0, -1)  # type: ignore[union-attr]
    assert read_name("move_forward+attack").acts == frozenset({"fire"})  # type: ignore[union-attr]
    assert read_name("move_left").move == (0, -1, 0)  # type: ignore[union-attr]  # slides, does not turn
    assert read_name("left").move == (0, 0, -1)  # type: ignore[union-attr]
    assert read_name("pickup") is None and read_name("a3") is None and read_name("d0=1+d1=2") is None


def test_unreadable_actions_get_numbered_keys_in_order() -> None:
    m = InputMapper(_spec(DISCRETE_WORLDS["miniworld"]))
    keys = {b.name: b.keys for b in m.bindings}
    assert keys["move_forward"] == ("keyw",) and keys["turn_left"] == ("keya",)
    assert [keys[n] for n in ("pickup", "drop", "toggle", "done")] == [
        ("digit1",),
        ("digit2",),
        ("digit3",),
        ("digit4",),
    ]
    assert m.names[m(InputState(keys=frozenset({"1"})))] == "pickup"  # a plain character works too


def test_more_actions_than_keys_are_reached_by_buttons() -> None:
    names = [f"a{i}" for i in range(len(NUMBER_KEYS) + 5)]
    m = InputMapper(_spec(names))
    keyless = [b.name for b in m.bindings if not b.keys]
    assert keyless == ["a0", *names[-4:]]  # a0 is the null action: holding nothing
    c = page_controls(_spec(names))
    assert [t["action"] for t in c["touch"] if "action" in t] == names[-4:]
    for name in names[-4:]:
        assert m.names[m(InputState(buttons=frozenset({name})))] == name


def test_page_controls_for_breakout_dungeon_and_a_box() -> None:
    breakout = page_controls(_spec(DISCRETE_WORLDS["breakout"]))
    labels = {b["name"]: b["label"] for b in breakout["bindings"]}
    assert labels == {"noop": "", "fire": "Space", "right": "D/→", "left": "A/←"}
    assert "space" in breakout["keys"] and breakout["pad"] == {"0": "space"}  # gamepad A fires
    assert breakout["touch"] == [{"label": "fire", "key": "space"}]
    dungeon = page_controls(_spec(DISCRETE_WORLDS["dungeon"]))
    assert dungeon["pad"] == {} and "space" not in dungeon["keys"]
    assert [t["key"] for t in dungeon["touch"]] == ["keyq", "keye"]  # strafing needs buttons on a phone
    assert {b["name"]: b["label"] for b in dungeon["bindings"]}["forward_left"] == "W+A"
    mini = page_controls(_spec(DISCRETE_WORLDS["miniworld"]))
    assert mini["pad"] == {"0": "digit1", "1": "digit2", "2": "digit3", "3": "digit4"}
    box = {
        "type": "box",
        "shape": [3],
        "low": [-1, 0, 0],
        "high": [1, 1, 1],
        "names": ["steer", "gas", "nitro"],
    }
    c = page_controls(box)
    assert [b["label"] for b in c["bindings"]] == ["A/D", "W", "1"]
    m = InputMapper(box)
    np.testing.assert_allclose(m(InputState(keys=frozenset({"keyw", "digit1"}))), [0, 1, 1])


def test_box_act_axes_follow_their_keys() -> None:
    spec = {"type": "box", "shape": [2], "low": [-1, 0], "high": [1, 1], "names": ["move", "attack"]}
    m = InputMapper(spec)
    np.testing.assert_allclose(m(InputState(keys=frozenset({"space"}))), [0, 1])
    assert page_controls(spec)["bindings"][1]["label"] == "Space"
