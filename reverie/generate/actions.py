"""Where the actions of generated frames come from: a user's `name:count` script or the explore policy.

Without `--actions`, actions come from the world's explore policy (`reverie.worlds.explore`): a
scripted prior that holds actions for human-like runs, seeded per sample. It never sees the
generated frames (obs=None), so it cannot react to walls the model dreams.
"""

from __future__ import annotations

import re
from typing import Any

from reverie.errors import ReverieError
from reverie.worlds.action_spec import ActionSpec

ACTIONS_FORM = "NAME:COUNT[,NAME:COUNT...], e.g. forward:30,turn_left:10"
_ITEM = re.compile(r"^\s*([A-Za-z0-9_\-]+)\s*(?::\s*(\d+))?\s*$")


def parse_actions(text: str, spec: ActionSpec | dict[str, Any]) -> list[int]:
    """`forward:30,turn_left:10` -> discrete action indices, one per frame (COUNT defaults to 1)."""
    actions = ActionSpec.of(spec)
    if not actions.is_discrete:
        raise ReverieError(
            f"--actions needs a model with named discrete actions; this one's are {actions.kind!r}; "
            "accepted: leave out --actions (the explore policy picks them)"
        )
    names = [str(n) for n in actions.names or ()]
    out: list[int] = []
    for item in text.split(","):
        m = _ITEM.match(item)
        if not m or int(m.group(2) or 1) < 1:
            raise ReverieError(f"bad --actions item {item.strip()!r}; accepted form: {ACTIONS_FORM}")
        name = m.group(1)
        if name not in names:
            raise ReverieError(
                f"unknown action {name!r} in --actions; this model's actions: {', '.join(names)}"
            )
        out += [names.index(name)] * int(m.group(2) or 1)
    return out


def frame_actions(
    spec: ActionSpec | dict[str, Any], count: int, seed: int, script: list[int] | None = None
) -> list[Any]:
    """`count` actions, one per frame; act[0] (leading to the first frame) is the null action.

    A script shorter than the clip is padded with the null action ("noop"); a longer one is cut.
    """
    if count <= 0:
        return []
    actions = ActionSpec.of(spec)
    null = actions.null_action()
    if not actions.has_actions:
        return [None] * count
    if script is not None:
        rest = list(script[: count - 1])
        return [null, *rest, *[null] * (count - 1 - len(rest))]
    from reverie.worlds.explore import make_policy

    policy = make_policy("explore", actions, seed=seed)
    return [null, *[policy(None, {}) for _ in range(count - 1)]]
