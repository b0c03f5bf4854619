"""What-if, made real: continue a stored answer from another switch point."""

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
    """Reuse the trace's draft and its base-model scores (no drafting, no scoring), keep
    draft tokens 0..switch_index, and let the base model write the rest."""
    settings = trace.settings.with_changes(mode="paper")
    messages = normalize(trace.messages)
    decoder = Decoder(engine.drafter, engine.base, messages, settings, cancel,
                      backend_name=engine.backend_name, replay=trace, forced_switch=switch_index)
    yield from decoder.events()
