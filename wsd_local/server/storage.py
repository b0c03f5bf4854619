"""Served answers in the chat store, like TUI chats (source `serve`, marked ⇄ there).

Each request is one new chat holding the request's conversation: the system prompt as
the chat's setting (where the TUI keeps it), every turn as a message, then the answer,
`pending` while it is written (saved every `SAVE_INTERVAL`), then `complete`, `stopped`
(the client left) or `error`, with its trace. A multi-turn client therefore leaves one
chat per request, each with the whole conversation so far; the TUI can open any of
them, inspect the switch and continue from there.

The store is a record, not a condition of answering: when a write fails the answer
still goes to the client, and the failure is logged.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from dataclasses import dataclass
from typing import Callable, Sequence

from ..answer_log import AnswerLog
from ..settings import DecodingSettings
from ..errors import WsdError
from ..messages import Message
from ..store import Store
from ..trace import Trace

log = logging.getLogger("wsd_local.server")

SAVE_INTERVAL = 2.0  # seconds between saves of a partial answer
SOURCE = "serve"


@dataclass
class StoredAnswer:
    record: AnswerLog  # the chat and its pending answer, as `wsd generate` logs them
    saved_at: float
    saved_text: str = ""

    @property
    def chat_id(self) -> int:
        return self.record.chat.id


class ServedAnswers:
    """Writes served answers to `store` (safe from the worker thread: the store locks)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def begin(self, messages: Sequence[Message], settings: DecodingSettings) -> StoredAnswer | None:
        """A new chat with the conversation and a pending answer."""
        try:
            record = AnswerLog(self.store, messages, settings, source=SOURCE)
        except (sqlite3.Error, WsdError, OSError) as exc:
            log.error("could not store the request: %s", exc)
            return None
        return StoredAnswer(record, time.monotonic())

    def save_partial(self, answer: StoredAnswer | None, text: str) -> None:
        if answer is None or text == answer.saved_text:
            return
        now = time.monotonic()
        if now - answer.saved_at < SAVE_INTERVAL:
            return
        answer.saved_at = now
        if self._write(answer, lambda: answer.record.save(text)):
            answer.saved_text = text

    def finish(self, answer: StoredAnswer | None, trace: Trace) -> None:
        if answer is not None:
            self._write(answer, lambda: answer.record.finished(trace))

    def fail(self, answer: StoredAnswer | None, text: str, error: str) -> None:
        if answer is not None:
            self._write(answer, lambda: answer.record.failed(text, error))

    def _write(self, answer: StoredAnswer, write: Callable[[], None]) -> bool:
        try:
            write()
        except (sqlite3.Error, OSError) as exc:
            log.error("could not store answer %d of chat %d: %s", answer.record.answer.id,
                      answer.chat_id, exc)
            return False
        return True
