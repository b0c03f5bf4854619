"""How many answers one engine may run at once (`wsd serve --max-concurrency`,
`wsd eval --concurrency`).

An engine with a model in this process answers one request at a time: llama.cpp's
contexts and KV cache are not thread-safe, and `Engine` locks. An engine whose models
are all on model servers holds no model state here: each answer's state is kept per
thread by the remote backends (docs/REMOTE.md), so N threads may answer N requests on
the one engine and the servers batch them. Kept apart from engine.py so the CLI can
read the limit without loading llama.cpp.
"""

from __future__ import annotations

from typing import Any

#: More would only add threads and connections: a server batches a few dozen at most.
MAX_CONCURRENCY = 256


def answer_slots(engine: Any, wanted: int) -> int:
    """Answers `engine` may run at once: `wanted` when it runs no model here, else 1."""
    return max(1, wanted) if getattr(engine, "runs_nothing_here", False) else 1
