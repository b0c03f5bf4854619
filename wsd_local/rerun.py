"""What-if, made real: continue a stored answer from another switch point.

The stored draft and its base-model scores are reused (no drafting, no scoring) as far
as they go. An online answer's drafter stopped at its own switch, so a switch further
on is unknown: then the drafter writes on from the stored draft, the check goes on
scoring, and the answer continues from the switch asked for (`rerun_from`) or from the
one the new settings' rule finds (`rerun_with`).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Iterator

from .decoder import Decoder
from .events import Event
from .messages import normalize
from .trace import Trace

if TYPE_CHECKING:
    from .engine import Engine


def rerun(engine: "Engine", trace: Trace, cancel: threading.Event | None = None,
          forced_switch: int | None = None, **changes: Any) -> Iterator[Event]:
    """The stored answer's draft again, in paper mode with `changes` to its settings:
    draft tokens up to the switch are the stored ones (the drafter writes on where the
    stored draft stops short), the base model writes the rest. The switch is
    `forced_switch`, or where the rule finds it."""
    # A re-run is the paper's pipeline (the draft complete, then checked), except for an
    # answer made with --switch-skip-repeats, which keeps its mode and so its rule.
    mode = trace.mode if trace.settings.switch_skip_repeats else "paper"
    settings = trace.settings.with_changes(mode=mode, **changes)
    decoder = Decoder(engine.drafter, engine.base, normalize(trace.messages), settings, cancel,
                      backend_name=engine.backend_name, replay=trace, forced_switch=forced_switch)
    yield from decoder.events()


def rerun_from(engine: "Engine", trace: Trace, switch_index: int,
               cancel: threading.Event | None = None) -> Iterator[Event]:
    """Keep draft tokens 0..switch_index and let the base model write the rest."""
    return rerun(engine, trace, cancel, forced_switch=switch_index)


def rerun_with(engine: "Engine", trace: Trace, threshold: float, window: int,
               cancel: threading.Event | None = None) -> Iterator[Event]:
    """Another threshold and window: the switch is where the rule finds it with them."""
    return rerun(engine, trace, cancel, threshold=threshold, window=window)
