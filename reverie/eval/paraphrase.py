"""Free-text paraphrases of Dungeon scenes, in words the world's own captions never use.

The text-adherence measure asks whether a model follows *meaning*, not the caption templates it was
trained on. A paraphrase keeps the scene's wall material, wall colour, lighting and kind (room or
corridor) but rewrites them with our own sentence shapes and synonyms. Every synonym below is
outside the world's Phrasebook (`reverie.worlds.dungeon.PHRASES`, which writes colours verbatim)
and is one a person would accept as the same thing:

- colour: red -> crimson / scarlet / ruby; blue -> azure / cobalt / sapphire; green -> emerald /
  jade / leaf-coloured; grey -> ash-coloured / smoke-coloured / ashen; brown -> umber /
  coffee-coloured / cocoa-coloured; yellow -> mustard / lemon-coloured / saffron; purple -> violet /
  plum / amethyst; white -> ivory / whitewashed / chalk-white. (Not "slate", "pewter", "chestnut" or
  "golden": each also names a material, and a paraphrase must not make one attribute ambiguous.)
- material: stone -> granite / rock-hewn / cut-rock; brick -> brick-built / brick-faced / brick-laid;
  wood -> oak / wood-clad / plank-lined; metal -> steel / ironclad / sheet-steel; moss ("mossy
  stone") -> moss-grown / moss-clad / moss-overgrown.
- light: bright -> brilliantly lit / flooded with light / glowing with lamplight; dim -> murky /
  shadowy / poorly lit; flickering -> lit by guttering lamps / in wavering lamplight / lit by
  sputtering lamps.
- kind: room -> hall / vault / cellar; corridor -> tunnel / walkway / gallery.

Objects and sizes are left out: the classifier does not score them, and leaving them out makes the
paraphrase shorter than most captions, which is part of what free text looks like.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from reverie.worlds.captions import Phrasebook

__all__ = ["PARAPHRASES", "paraphrase", "read_attributes"]

PARAPHRASES = Phrasebook(
    templates=(
        "I am in a {kind} whose walls are {color} and {material}, {light}",
        "{color} {material} walls surround this {kind}, {light}",
        "picture a {kind} {light}, its walls {material} and {color}",
        "the walls of this {kind} are {material}, painted {color}; it is {light}",
        "{light}, a {kind} lined with {color} {material} walls",
        "somewhere underground: a {kind} with {color} {material} walls, {light}",
    ),
    words={
        "color": {
            "red": ("crimson", "scarlet", "ruby"),
            "blue": ("azure", "cobalt", "sapphire"),
            "green": ("emerald", "jade", "leaf-coloured"),
            "grey": ("ash-coloured", "smoke-coloured", "ashen"),
            "brown": ("umber", "coffee-coloured", "cocoa-coloured"),
            "yellow": ("mustard", "lemon-coloured", "saffron"),
            "purple": ("violet", "plum", "amethyst"),
            "white": ("ivory", "whitewashed", "chalk-white"),
        },
        "material": {
            "stone": ("granite", "rock-hewn", "cut-rock"),
            "brick": ("brick-built", "brick-faced", "brick-laid"),
            "wood": ("oak", "wood-clad", "plank-lined"),
            "metal": ("steel", "ironclad", "sheet-steel"),
            "moss": ("moss-grown", "moss-clad", "moss-overgrown"),
        },
        "light": {
            "bright": ("brilliantly lit", "flooded with light", "glowing with lamplight"),
            "dim": ("murky", "shadowy", "poorly lit"),
            "flickering": ("lit by guttering lamps", "in wavering lamplight", "lit by sputtering lamps"),
        },
        "kind": {"room": ("hall", "vault", "cellar"), "corridor": ("tunnel", "walkway", "gallery")},
    },
    keep_optional=1.0,
)
SLOTS = ("kind", "material", "color", "light")


def paraphrase(scene: Mapping[str, object], rng: np.random.Generator) -> str:
    """A free-text description of the scene's kind, material, colour and light."""
    missing = [s for s in SLOTS if str(scene.get(s, "")) not in PARAPHRASES.words[s]]
    if missing:
        raise ValueError(f"scene has no paraphrasable {', '.join(missing)}: {dict(scene)}")
    return PARAPHRASES.compose({s: scene[s] for s in SLOTS}, rng)


def read_attributes(text: str) -> dict[str, str]:
    """The attribute values a paraphrase names (longest matching synonym wins; unmatched slots absent)."""
    out: dict[str, str] = {}
    low = text.lower()
    for slot in SLOTS:
        hits = [
            (len(word), value)
            for value, words in PARAPHRASES.words[slot].items()
            for word in words
            if word in low
        ]
        if hits:
            out[slot] = max(hits)[1]
    return out
