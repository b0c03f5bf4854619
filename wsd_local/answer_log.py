"""Answers given outside the chat app, kept in the same store as chats (as `llm` logs
its prompts): `wsd generate` saves each answer as a chat of source `generate`, which
`wsd log` lists and `wsd chat` opens (the chat list marks it with ›).

The question is stored before the answer is written and the answer row exists while it
is written (status `pending`), so an interrupted run keeps what it had; a stopped answer
is `stopped`, a failed one `error` with its message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from .settings import DecodingSettings
from .messages import Message
from .store import COMPLETE, ERROR, PENDING, STOPPED, ChatRecord, MessageRecord, Store, title_from
from .trace import Trace


class AnswerLog:
    """One logged answer: the conversation, then the answer as it ends."""

    def __init__(self, store: Store, messages: Sequence[Message], settings: DecodingSettings,
                 source: str = "generate") -> None:
        self.store = store
        question = next(m.content for m in reversed(messages) if m.role == "user")
        self.chat = store.create_chat(title_from(question), settings=settings.to_dict(), source=source)
        for message in messages:
            if message.role != "system":  # the system prompt is a chat setting
                store.add_message(self.chat.id, message.role, message.content)
        self.answer = store.add_message(self.chat.id, "assistant", "", status=PENDING)

    def finished(self, trace: Trace) -> None:
        status = STOPPED if trace.stopped_early else COMPLETE
        self.store.update_message(self.answer.id, content=trace.answer, status=status, trace=trace)

    def save(self, text: str) -> None:
        """The answer so far, still being written (it stays `pending`)."""
        self.store.update_message(self.answer.id, content=text)

    def stopped(self, text: str) -> None:
        self.store.update_message(self.answer.id, content=text, status=STOPPED)

    def failed(self, text: str, error: str) -> None:
        self.store.update_message(self.answer.id, content=text, status=ERROR, error=error)

    def close(self) -> None:
        self.store.close()


@dataclass
class LoggedAnswer:
    chat: ChatRecord
    question: MessageRecord | None
    answer: MessageRecord


def recent_answers(store: Store, limit: int | None, source: str | None = None) -> list[LoggedAnswer]:
    """The newest `limit` answers (all when None), oldest first, from chats of `source`
    (every source when None)."""
    found: list[LoggedAnswer] = []
    for chat in store.list_chats(source):  # most recently updated first
        if limit is not None and len(found) >= limit:
            cutoff = sorted((a.answer.created_at for a in found), reverse=True)[limit - 1]
            if chat.updated_at < cutoff:
                break  # every answer of this chat and the ones after is older
        question = None
        for record in store.messages(chat.id):
            if record.role == "user":
                question = record
            elif record.role == "assistant":
                found.append(LoggedAnswer(chat, question, record))
    found.sort(key=lambda a: (a.answer.created_at, a.answer.id))
    return found[-limit:] if limit else found
