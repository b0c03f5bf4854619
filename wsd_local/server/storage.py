"""Served answers in the chat store, like TUI chats (source `serve`, marked ⇄ there).

Each request is one new chat holding the request's conversation, then its answer, kept
by an `AnswerSession` of its own (pending, saved every `SAVE_INTERVAL`, then
`complete`, `stopped` (the client left) or `error`, with its trace). A multi-turn
client therefore leaves one chat per request, each with the whole conversation so far;
the TUI can open any of them, inspect the switch and continue from there.

The store is a record, not a condition of answering: when a write fails the answer
still goes to the client, and the failure is logged.
"""

from __future__ import annotations

import logging
import sqlite3
from typing import Sequence

from ..answer_session import AnswerSession
from ..settings import DecodingSettings
from ..errors import WsdError
from ..messages import Message
from ..store import Store

log = logging.getLogger("wsd_local.server")

SOURCE = "serve"


class ServedAnswers:
    """Starts the stored answer of each request; one session per answer, so answers
    written at once from several threads share only the store (which locks)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def begin(self, messages: Sequence[Message], settings: DecodingSettings) -> AnswerSession | None:
        """A new chat with the conversation and a pending answer (None: not stored)."""
        try:
            return AnswerSession.new_chat(self.store, messages, settings, SOURCE, on_error=log.error)
        except (sqlite3.Error, WsdError, OSError) as exc:
            log.error("could not store the request: %s", exc)
            return None
