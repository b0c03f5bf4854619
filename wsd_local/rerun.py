"""What-if, made real: continue a stored answer from another switch point.

The stored draft and its base-model scores are reused (no drafting, no scoring) as far
as they go. An online answer's drafter stopped at its own switch, so a switch further
on is unknown: then the drafter writes on from the stored draft, the check goes on
scoring, and the answer continues from the switch asked for (`rerun_from`) or from the
one the new settings' rule finds (`rerun_with`).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Iterator

from .decoder import Decoder
from .events import Event
from .messages import normalize
from .trace import Trace

if TYPE_CHECKING:
    from .engine import Engine


def rerun_from(engine: "Engine", trace: Trace, switch_index: int,
               cancel: threading.Event | None = None) -> Iterator[Event]:
    """Keep draft tokens 0..switch_index of the stored draft (written on where the
    stored one stops short of it) and let the base model write the rest."""
    settings = trace.settings.with_changes(mode="paper")
    decoder = Decoder(engine.drafter, engine.base, normalize(trace.messages), settings, cancel,
                      backend_name=engine.backend_name, replay=trace, forced_switch=switch_index)
    yield from decoder.events()


def rerun_with(engine: "Engine", trace: Trace, threshold: float, window: int,
               cancel: threading.Event | None = None) -> Iterator[Event]:
    """The stored answer again with another threshold and window: the switch is where
    the rule finds it with them (drafting on where the stored draft stops short)."""
    settings = trace.settings.with_changes(mode="paper", threshold=threshold, window=window)
    decoder = Decoder(engine.drafter, engine.base, normalize(trace.messages), settings, cancel,
                      backend_name=engine.backend_name, replay=trace)
    yield from decoder.events()
