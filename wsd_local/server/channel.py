"""Items from the model worker's thread to one request's handler on the event loop.

The worker never touches asyncio objects directly: it hands each batch of items to
the loop with `call_soon_threadsafe`, so the event loop never waits on the engine and
the engine never waits on a client.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any


class Channel:
    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._loop = loop or asyncio.get_running_loop()
        self._queue: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
        self._buffer: deque[Any] = deque()

    def post(self, *items: Any) -> None:
        """From any thread: deliver `items`, in order, as one batch."""
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, items)
        except RuntimeError:
            pass  # the loop is closed: the server is gone, and so is the client

    async def get(self) -> Any:
        """The next item (on the loop)."""
        while not self._buffer:
            self._buffer.extend(await self._queue.get())
        return self._buffer.popleft()
