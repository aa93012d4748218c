"""Captions of `reverie/Drive-v0`: one sentence per scene, every attribute mentioned, phrasing varied.

The wording is drawn from a generator seeded by (episode seed, attributes), so the caption is stable
while the scene stays the same, differs between episodes, and is reproducible for a seed.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from typing import Any

import numpy as np

_LANES = {1: "single-lane", 2: "two-lane", 3: "three-lane", 4: "four-lane"}
_OPEN = (
    "driving on a {lanes} {way}",
    "cruising along a {lanes} {way}",
    "a teal car on a {lanes} {way}",
    "heading down a {lanes} {way}",
    "rolling along a {lanes} {way}",
)
_WAY = ("road", "highway", "country road")
_TIME = {
    "day": ("in daylight", "on a sunny day", "during the day", "under a blue sky"),
    "dusk": ("at dusk", "at sunset", "in the evening light", "as the sun goes down"),
    "night": ("at night", "at night with the headlights on", "in the dark", "late at night"),
}
_ROAD = {
    "straight": ("the road runs straight ahead", "on a straight stretch", "a straight road ahead"),
    "left curve": ("the road curves to the left", "a bend to the left ahead", "curving left"),
    "right curve": ("the road curves to the right", "a bend to the right ahead", "curving right"),
}
_TRAFFIC = {
    "none": ("no other cars around", "the road is empty", "no traffic ahead"),
    "ahead": ("{vehicle} further ahead", "traffic ahead with {vehicle}", "{vehicle} in the distance"),
    "close": ("behind {vehicle}", "right behind {vehicle}", "following {vehicle} closely"),
}
_SIDE = {
    "trees": ("trees along the road", "through a forest", "lined with trees"),
    "buildings": ("buildings along the road", "through a town", "past houses and street lamps"),
    "fields": ("open fields with power poles", "through farmland", "fields on both sides"),
}
_OFFROAD = {
    "trees": ("off the road on the grass", "driving on the grass verge"),
    "buildings": ("off the road on the pavement", "up on the sidewalk"),
    "fields": ("off the road in the field", "driving through the field"),
}


def _article(noun: str) -> str:
    return ("an " if noun[0] in "aeiou" else "a ") + noun


def caption(scene: Mapping[str, Any], episode_seed: int) -> str:
    key = repr(sorted(scene.items())).encode()
    rng = np.random.default_rng([episode_seed, zlib.crc32(key)])

    def pick(options: tuple[str, ...]) -> str:
        return options[int(rng.integers(len(options)))]

    lanes = _LANES.get(int(scene["lanes"]), f"{scene['lanes']}-lane")
    head = pick(_OPEN).format(lanes=lanes, way=pick(_WAY))
    time = pick(_TIME[scene["time"]])
    parts = [
        pick(_ROAD[scene["road"]]),
        pick(_TRAFFIC[scene["traffic"]]).format(vehicle=_article(scene.get("vehicle") or "car")),
        pick(_SIDE[scene["roadside"]]),
    ]
    if scene.get("offroad"):
        parts.insert(0, pick(_OFFROAD[scene["roadside"]]))
    order = rng.permutation(len(parts))
    rest = ", ".join(parts[i] for i in order)
    if rng.random() < 0.3:
        return f"{time}, {head}, {rest}"
    return f"{head} {time}, {rest}"
