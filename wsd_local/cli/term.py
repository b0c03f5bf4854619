"""Terminal conventions: colour only for a terminal that wants it.

- `NO_COLOR` (any non-empty value, https://no-color.org) turns colour off everywhere;
- `FORCE_COLOR` (non-empty) turns it on even into a pipe (for `less -R`), unless
  `NO_COLOR` is set too;
- otherwise colour is on for a terminal (not `TERM=dumb`) and off for pipes and files.
Transient progress lines (carriage returns) are written to terminals only.
"""

from __future__ import annotations

import os
from typing import TextIO


def is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # closed or replaced streams
        return False


def use_color(stream: TextIO, disabled: bool = False) -> bool:
    """Whether to colour what goes to `stream` (`disabled`: the command's --no-color)."""
    if disabled or os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    return is_terminal(stream) and os.environ.get("TERM") != "dumb"
