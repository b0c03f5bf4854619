"""The decoding modes, each declared once in its own module and listed here.

A new mode is a module with its `Mode` (and, if no decoder fits, its decoder class)
plus one line in `MODES`; docs/DESIGN.md, "Modes", lists what follows from it.
"""

from __future__ import annotations

from ..errors import ConfigError
from .base import BASE_MODE
from .draft import DRAFT_MODE
from .mode import BASE, DRAFTER, AnswerDecoder, Mode, Records
from .nudging import NUDGING_MODE
from .paper import PAPER_MODE
from .wsd import WSD_MODE

#: Every mode, in the order they are offered (the default first).
MODES: tuple[Mode, ...] = (WSD_MODE, PAPER_MODE, BASE_MODE, DRAFT_MODE, NUDGING_MODE)
#: The order in which comparisons list them: one model alone, weak-to-strong, nudging.
COMPARISON_ORDER: tuple[Mode, ...] = (BASE_MODE, DRAFT_MODE, PAPER_MODE, WSD_MODE, NUDGING_MODE)
MODE_NAMES: tuple[str, ...] = tuple(m.name for m in MODES)
_BY_NAME = {m.name: m for m in MODES}


def find_mode(name: object) -> Mode | None:
    """The mode called `name`, or None (for names read from files)."""
    return _BY_NAME.get(name) if isinstance(name, str) else None


def mode_named(name: str) -> Mode:
    """The mode called `name`; ConfigError naming the known ones otherwise."""
    mode = find_mode(name)
    if mode is None:
        raise ConfigError(f"unknown mode {name!r}", "use one of " + ", ".join(MODE_NAMES))
    return mode


def names(modes: tuple[Mode, ...] | list[Mode]) -> tuple[str, ...]:
    return tuple(m.name for m in modes)


__all__ = ["Mode", "Records", "AnswerDecoder", "MODES", "COMPARISON_ORDER", "MODE_NAMES", "find_mode",
           "mode_named", "names", "WSD_MODE", "PAPER_MODE", "BASE_MODE", "DRAFT_MODE", "NUDGING_MODE",
           "DRAFTER", "BASE"]
