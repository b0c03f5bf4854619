"""What-if, made real: continue a stored answer from another switch point.

The stored draft and its base-model scores are reused (no drafting, no scoring) as far
as they go. An online answer's drafter stopped at its own switch, so a switch further
on is unknown: then the drafter writes on from the stored draft, the check goes on
scoring, and the answer continues from the switch asked for (`forced_switch`) or from
the one the new settings' rule finds (`Engine.rerun_from`, `Engine.rerun_with`).
"""

from __future__ import annotations

import threading
from typing import Any, Iterator, Protocol

from .backend.protocol import Backend
from .decoder import Decoder
from .events import Event
from .messages import normalize
from .modes import PAPER_MODE
from .trace import Trace


class LoadedModels(Protocol):
    """The models a re-run uses (an `Engine` is one)."""

    drafter: Backend | None
    base: Backend | None
    backend_name: str


def rerun(models: LoadedModels, trace: Trace, cancel: threading.Event | None = None,
          forced_switch: int | None = None, **changes: Any) -> Iterator[Event]:
    """The stored answer's draft again, in paper mode with `changes` to its settings:
    draft tokens up to the switch are the stored ones (the drafter writes on where the
    stored draft stops short), the base model writes the rest. The switch is
    `forced_switch`, or where the rule finds it."""
    # A re-run is the paper's pipeline (the draft complete, then checked), except for an
    # answer made with --switch-skip-repeats, which keeps its mode and so its rule.
    mode = trace.mode if trace.settings.switch_skip_repeats else PAPER_MODE.name
    settings = trace.settings.with_changes(mode=mode, **changes)
    decoder = Decoder(models.drafter, models.base, normalize(trace.messages), settings, cancel,
                      backend_name=models.backend_name, replay=trace, forced_switch=forced_switch)
    yield from decoder.events()


def rerun_from(models: LoadedModels, trace: Trace, switch_index: int,
               cancel: threading.Event | None = None) -> Iterator[Event]:
    """Keep draft tokens 0..switch_index and let the base model write the rest."""
    return rerun(models, trace, cancel, forced_switch=switch_index)
