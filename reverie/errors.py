"""User-facing errors: the CLI prints these as one clear line, without a traceback."""

from __future__ import annotations


class ReverieError(Exception):
    """Bad input or state the user can fix. The message names what is wrong and what is accepted."""
