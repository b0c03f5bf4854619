"""Shared helpers of the inspector and compare tests (no tests here).

Imported as `from test_tui_inspector_support import ...`: pytest puts tests/ on sys.path.
"""

from __future__ import annotations

import asyncio
import functools
import math
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from wsd_local.switch import switch_index
from wsd_local.settings import DecodingSettings
from wsd_local.trace import TokenRecord, Trace

SAMPLE = Path(__file__).parent / "data" / "trace_sample.json"


def load_sample() -> Trace:
    """A real trace of the demo pair (see tests/data/README.md)."""
    return Trace.from_json(SAMPLE.read_text(encoding="utf-8"))


def synthetic_trace(n: int = 500, switch_at: int | None = 300) -> Trace:
    """n draft tokens of low probability; a run of confident ones from switch_at - 5."""
    probs = [0.3 + 0.2 * math.sin(j) ** 2 for j in range(n)]
    if switch_at is not None:
        for j in range(switch_at - 5, min(n, switch_at + 20)):
            probs[j] = 0.97
    tokens = [TokenRecord(j, f" t{j}", math.log(p)) for j, p in enumerate(probs)]
    k = switch_index(probs, 6, 0.8)
    kept = "".join(t.text for t in tokens[: k + 1])
    cont = [TokenRecord(1000 + i, f" b{i}", -0.2) for i in range(40)]
    cont_text = "".join(t.text for t in cont)
    return Trace(settings=DecodingSettings(mode="paper"), messages=[],
                 answer=kept + cont_text, draft_text="".join(t.text for t in tokens),
                 draft_tokens=tokens, switch_index=k, switch_fired=switch_at is not None,
                 kept_draft=kept, continuation=cont_text, continuation_tokens=cont,
                 switch_char=len(kept))


def sync(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async pilot test without an asyncio pytest plugin."""
    @functools.wraps(test)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        asyncio.run(test(*args, **kwargs))
    return wrapper


async def wait_until(pilot: Any, condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll the app until `condition` holds (instead of fixed pauses)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await pilot.pause(0.05)
