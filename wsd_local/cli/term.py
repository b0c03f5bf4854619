"""Terminal conventions: colour only for a terminal that wants it; Ctrl+C stops gently.

- `NO_COLOR` (any non-empty value, https://no-color.org) turns colour off everywhere;
- `FORCE_COLOR` (non-empty) turns it on even into a pipe (for `less -R`), unless
  `NO_COLOR` is set too;
- otherwise colour is on for a terminal (not `TERM=dumb`) and off for pipes and files.
Transient progress lines (carriage returns) are written to terminals only.
A first Ctrl+C asks the running work to stop and keep what it finished (`ctrl_c_stops`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
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


@contextlib.contextmanager
def ctrl_c_stops(cancel: threading.Event):
    """First Ctrl-C sets `cancel`: the work stops and keeps what was written (like Esc in the TUI);
    a second one interrupts at once."""
    def handler(signum, frame):  # noqa: ARG001
        if cancel.is_set():
            raise KeyboardInterrupt
        cancel.set()

    try:
        previous = signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
