"""Several engines of one pair, for answers side by side (`wsd serve --max-concurrency`,
`wsd eval --concurrency`).

An engine holds per-answer state (llama.cpp's KV cache, a remote backend's cancel
event and connections), so one engine answers one request at a time. When both models
are on model servers an engine is only connections and small caches: N copies answer N
requests at once, and the servers batch them. Kept apart from engine.py so the CLI can
read the limit without loading llama.cpp.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from .engine import Engine

#: More would only add threads and connections: a server batches a few dozen at most.
MAX_CONCURRENCY = 256


def load_engines(load: Callable[[], Engine], concurrency: int) -> list[Engine]:
    """Engines for up to `concurrency` answers at once: `load()` once, and when that
    pair is served entirely by model servers, `concurrency - 1` more copies (loaded
    side by side), each with its own connections and per-answer state. A pair with a
    local model gets one engine: llama.cpp contexts answer one request at a time."""
    first = load()
    if concurrency <= 1 or not first.runs_nothing_here:
        return [first]
    engines = [first]
    futures: list[Future[Engine]] = []
    try:
        with ThreadPoolExecutor(max_workers=min(8, concurrency - 1)) as pool:
            futures = [pool.submit(load) for _ in range(concurrency - 1)]
            for future in futures:
                engines.append(future.result())
    except BaseException:
        for future in futures:  # the ones loaded before the failure
            if future.done() and future.exception() is None and future.result() not in engines:
                future.result().close()
        for engine in engines:
            engine.close()
        raise
    return engines
