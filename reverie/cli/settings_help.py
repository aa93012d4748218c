"""The settings table at the end of `reverie train ... --help`, generated from the typed configs.

Each row is a field of a config dataclass, its default and the comment beside it in the source
(`reverie.typed_config.field_notes`), so the help cannot drift from the code. The table is built
only when help is shown: it imports the models, and with them torch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from typing import Any

from typer.core import TyperCommand

DEFAULT_PRESET = "small"  # the preset a `train` command uses without --preset


def _shown(value: Any) -> str:
    """A default as typed after --set KEY= (a string without quotes)."""
    return value if isinstance(value, str) else repr(value)


def settings_table(title: str, config: Any, prefix: str = "") -> str:
    """One section of the table: `title`, then a row `KEY  DEFAULT  note` per field of `config`."""
    from rich.markup import escape

    from reverie.typed_config import field_notes

    notes = field_notes(type(config))
    rows = [(prefix + f.name, _shown(getattr(config, f.name)), notes.get(f.name, "")) for f in fields(config)]
    key_w = max(len(r[0]) for r in rows)
    val_w = max(len(r[1]) for r in rows)
    lines = [f"  {k:<{key_w}}  {v:<{val_w}}  {n}".rstrip() for k, v, n in rows]
    return escape(title + "\n" + "\n".join(lines))  # rich markup would eat "[...]" in a note


def train_settings() -> str:
    from reverie.train.config import TrainConfig

    return settings_table("Training settings (--set KEY=VALUE or a --config YAML file):", TrainConfig())


def with_settings(*sections: Callable[[], str]) -> type[TyperCommand]:
    """A command class whose --help ends with the given settings sections (built when shown)."""

    class SettingsCommand(TyperCommand):
        def format_help(self, ctx: Any, formatter: Any) -> None:
            self.epilog = "\n\n".join(section() for section in sections)
            super().format_help(ctx, formatter)

    return SettingsCommand
