"""Varied sentences from an attribute dict, so a text-conditioned model learns meaning, not one template.

A `Phrasebook` holds templates with `{slot}` fields and `[optional parts]`, and synonyms for each
attribute value. `compose(attrs, rng)` picks a template, a synonym per slot and which optional parts to
keep. A slot whose attribute is missing or empty drops the optional part around it (a template that
needs it outside an optional part is skipped). List values are joined ("pillars, lamps and barrels").

    book = Phrasebook(
        templates=("a {light} {color} {material} {kind}[ with {objects}]",),
        words={"kind": {"room": ("room", "chamber")}, "light": {"dim": ("dim", "dimly lit")}},
    )
    book.compose({"kind": "room", "light": "dim", "color": "red", "material": "brick"}, rng)
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

_SLOT = re.compile(r"\{(\w+)\}")
_OPTIONAL = re.compile(r"\[([^\[\]]*)\]")


def join_words(items: Sequence[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


@dataclass(frozen=True)
class Phrasebook:
    templates: tuple[str, ...]
    # slot -> attribute value -> synonyms; a value without an entry is written as is.
    words: Mapping[str, Mapping[str, Sequence[str]]] = field(default_factory=dict)
    keep_optional: float = 0.6  # chance of keeping each optional part whose slots are all present

    def word(self, slot: str, value: str, rng: np.random.Generator) -> str:
        choices = self.words.get(slot, {}).get(value, (value,))
        return str(choices[int(rng.integers(len(choices)))])

    def _fill(self, slot: str, attrs: Mapping[str, object], rng: np.random.Generator) -> str:
        value = attrs.get(slot)
        if isinstance(value, list | tuple):
            items = [self.word(slot, str(v), rng) for v in value]
            order = rng.permutation(len(items))
            return join_words([items[i] for i in order])
        return self.word(slot, str(value), rng)

    @staticmethod
    def _present(slot: str, attrs: Mapping[str, object]) -> bool:
        value = attrs.get(slot)
        return value is not None and value != "" and not (isinstance(value, list | tuple) and not value)

    def compose(self, attrs: Mapping[str, object], rng: np.random.Generator) -> str:
        """One sentence describing `attrs`; deterministic for the rng state."""
        usable = [
            t
            for t in self.templates
            if all(self._present(s, attrs) for s in _SLOT.findall(_OPTIONAL.sub("", t)))
        ]
        if not usable:
            raise ValueError(f"no template fits the attributes {sorted(attrs)}")
        text = usable[int(rng.integers(len(usable)))]

        def optional(m: re.Match[str]) -> str:
            inner = m.group(1)
            ok = all(self._present(s, attrs) for s in _SLOT.findall(inner))
            return inner if ok and rng.random() < self.keep_optional else ""

        text = _OPTIONAL.sub(optional, text)
        text = _SLOT.sub(lambda m: self._fill(m.group(1), attrs, rng), text)
        text = re.sub(r"\s+", " ", text).strip()
        text = re.sub(r"\s+([,.;])", r"\1", text)
        return re.sub(r"\b([Aa]) (?=[aeiouAEIOU])", r"\1n ", text)
