"""One answer on its way into the chat store, whoever asked for it (`wsd generate`, the
chat app, `wsd serve`). Each feeds the decoder's events to its own view of the answer
(a `LiveAnswer`) and hands the session the text that view holds:

    start ─▶ pending ── save_partial(text), at most every SAVE_INTERVAL ──┬─▶ finish(trace): complete | stopped
                                                                          ├─▶ stop(text): stopped, text kept
                                                                          └─▶ fail(text, error): error, text kept

The question is stored first and the answer row exists while it is written, so a crash
loses at most SAVE_INTERVAL of text and the chat shows the answer as interrupted. A
session is one answer's and shares nothing with another but the store, which is safe
to use from several threads (one SQLite connection behind one lock).
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

from .settings import DecodingSettings
from .messages import Message
from .store import COMPLETE, ERROR, PENDING, STOPPED, Store, title_from
from .trace import Trace

SAVE_INTERVAL = 2.0  # seconds between saves of the answer being written


@dataclass
class AnswerSession:
    store: Store
    chat_id: int
    answer_id: int
    # Where a failed write is reported (a one-line message); None raises it. The server
    # answers its client even when the store cannot be written.
    on_error: Callable[[str], None] | None = None
    saved_at: float = field(default_factory=time.monotonic)
    saved_text: str = ""

    @classmethod
    def start(cls, store: Store, chat_id: int,
              on_error: Callable[[str], None] | None = None) -> "AnswerSession":
        """A pending answer at the end of chat `chat_id`, whose question is stored."""
        record = store.add_message(chat_id, "assistant", "", status=PENDING)
        return cls(store, chat_id, record.id, on_error)

    @classmethod
    def new_chat(cls, store: Store, messages: Sequence[Message], settings: DecodingSettings,
                 source: str, on_error: Callable[[str], None] | None = None) -> "AnswerSession":
        """A chat of its own from `source` holding the conversation, then a pending answer.
        The system prompt is a chat setting (as in the chat app), not a message."""
        question = next(m.content for m in reversed(messages) if m.role == "user")
        chat = store.create_chat(title_from(question), settings=settings.to_dict(), source=source)
        for message in messages:
            if message.role != "system":
                store.add_message(chat.id, message.role, message.content)
        return cls.start(store, chat.id, on_error)

    def save_partial(self, text: str, now: float | None = None) -> None:
        """The answer so far; written when it changed and SAVE_INTERVAL has passed since
        the last write (it stays `pending`)."""
        now = time.monotonic() if now is None else now
        if text == self.saved_text or now - self.saved_at < SAVE_INTERVAL:
            return
        self.saved_at = now
        if self._write(content=text):
            self.saved_text = text

    def finish(self, trace: Trace) -> None:
        """The answer ended with its trace: `stopped` when cut short, else `complete`."""
        self._write(content=trace.answer, status=STOPPED if trace.stopped_early else COMPLETE, trace=trace)

    def stop(self, text: str) -> None:
        """Stopped before the decoder gave its trace: what was written is kept."""
        self._write(content=text, status=STOPPED)

    def fail(self, text: str, error: str) -> None:
        self._write(content=text, status=ERROR, error=error)

    def discard(self) -> None:
        """Remove the answer (nothing was written and the failure is shown elsewhere)."""
        self.store.delete_message(self.answer_id)

    def _write(self, **fields: object) -> bool:
        try:
            self.store.update_message(self.answer_id, **fields)  # type: ignore[arg-type]
        except (sqlite3.Error, OSError) as exc:
            if self.on_error is None:
                raise
            self.on_error(f"could not store answer {self.answer_id} of chat {self.chat_id}: {exc}")
            return False
        return True


__all__ = ["AnswerSession", "SAVE_INTERVAL"]
