"""Saved conversations: SQLite (stdlib sqlite3) in the user data directory.

One file, `chats.sqlite3`, in `paths.data_dir()` (`WSD_DATA_DIR` overrides it). The
schema version lives in `PRAGMA user_version`; `MIGRATIONS[n]` takes a database from
version n to n+1, so a new file walks the same path as an old one being upgraded.

- version 1: chats (title) and messages (role, content).
- version 2: per-chat settings (system prompt included) and `updated_at`; per-message
  status (`pending` while an answer is written, then `complete`, `stopped` or `error`),
  the answer's full trace as JSON, and an error text.
- version 3: where a chat came from (`source`: `chat` for the TUI, `serve` for an
  answer given by `wsd serve`, `generate` for `wsd generate`), so every answer lands in
  one store and the TUI can open any of them.

Durability: WAL journal, every write is its own transaction. A user message is stored
before generation starts, and the answer row exists (status `pending`) while it is
written, so a crash loses nothing already saved. Never imports Textual.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

from .errors import WsdError
from .fsutil import create_private_file, private_dir
from .paths import data_dir
from .trace import Trace

DB_NAME = "chats.sqlite3"

#: Message status values (version 2).
PENDING, COMPLETE, STOPPED, ERROR = "pending", "complete", "stopped", "error"
STATUSES = (PENDING, COMPLETE, STOPPED, ERROR)

#: Where a chat came from (version 3).
SOURCES = ("chat", "serve", "generate")

_V1 = """
CREATE TABLE chats (
    id          INTEGER PRIMARY KEY,
    title       TEXT NOT NULL,
    created_at  REAL NOT NULL
);
CREATE TABLE messages (
    id          INTEGER PRIMARY KEY,
    chat_id     INTEGER NOT NULL REFERENCES chats(id) ON DELETE CASCADE,
    role        TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
    content     TEXT NOT NULL,
    created_at  REAL NOT NULL
);
"""

_V2 = """
ALTER TABLE chats ADD COLUMN updated_at REAL;
UPDATE chats SET updated_at = COALESCE(
    (SELECT MAX(created_at) FROM messages WHERE messages.chat_id = chats.id), created_at);
ALTER TABLE chats ADD COLUMN settings_json TEXT;
ALTER TABLE messages ADD COLUMN status TEXT NOT NULL DEFAULT 'complete';
ALTER TABLE messages ADD COLUMN trace_json TEXT;
ALTER TABLE messages ADD COLUMN error TEXT;
CREATE INDEX messages_by_chat ON messages(chat_id, id);
CREATE INDEX chats_by_update ON chats(updated_at);
"""

_V3 = """
ALTER TABLE chats ADD COLUMN source TEXT NOT NULL DEFAULT 'chat';
CREATE INDEX chats_by_source ON chats(source, updated_at);
"""

MIGRATIONS: tuple[str, ...] = (_V1, _V2, _V3)
SCHEMA_VERSION = len(MIGRATIONS)


@dataclass
class ChatRecord:
    id: int
    title: str
    created_at: float
    updated_at: float
    settings: dict[str, Any] = field(default_factory=dict)  # DecodingSettings.to_dict()
    source: str = "chat"  # chat | serve | generate


@dataclass
class MessageRecord:
    id: int
    chat_id: int
    role: str
    content: str
    created_at: float
    status: str = COMPLETE
    trace_json: str | None = None
    error: str | None = None

    @property
    def trace(self) -> Trace | None:
        """The answer's trace, or None (user turns, answers from schema 1, unreadable JSON)."""
        if not self.trace_json:
            return None
        try:
            return Trace.from_json(self.trace_json)
        except (ValueError, TypeError, KeyError):
            return None

    def to_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


def default_path() -> Path:
    return data_dir() / DB_NAME


class Store:
    """A chat database. Safe to share between threads (one connection, one lock)."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_path()
        self._lock = threading.RLock()
        try:
            if not self.path.exists():
                private_dir(self.path.parent)
                create_private_file(self.path)  # chats are the owner's only (SQLite keeps the mode)
            # Autocommit mode: transactions are explicit (BEGIN IMMEDIATE ... COMMIT).
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                       timeout=5.0)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA foreign_keys = ON")
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise WsdError(f"cannot open the chat database {self.path}: {exc}",
                           "move the file aside to start a new one, or set WSD_DATA_DIR") from None

    # -- schema ------------------------------------------------------------------
    @property
    def version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self) -> None:
        with self._lock:
            current = self.version
            if current > SCHEMA_VERSION:
                raise WsdError(
                    f"the chat database {self.path} has schema version {current}, newer than "
                    f"this wsd-local understands ({SCHEMA_VERSION})",
                    "upgrade wsd-local, or set WSD_DATA_DIR to use another folder")
            for version in range(current, SCHEMA_VERSION):
                # One transaction per step: a crash mid-upgrade leaves the old version intact.
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    for statement in _statements(MIGRATIONS[version]):
                        self._db.execute(statement)
                    self._db.execute(f"PRAGMA user_version = {version + 1}")
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _write(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Cursor:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                cursor = self._db.execute(sql, tuple(params))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            return cursor

    def _read(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, tuple(params)).fetchall()

    # -- chats -------------------------------------------------------------------
    def create_chat(self, title: str = "New chat", settings: dict[str, Any] | None = None,
                    source: str = "chat") -> ChatRecord:
        if source not in SOURCES:
            raise ValueError(f"unknown chat source {source!r}")
        now = time.time()
        cursor = self._write(
            "INSERT INTO chats (title, created_at, updated_at, settings_json, source) VALUES (?, ?, ?, ?, ?)",
            (_clean_title(title), now, now, json.dumps(settings or {}), source))
        chat = self.get_chat(int(cursor.lastrowid))
        assert chat is not None
        return chat

    def get_chat(self, chat_id: int) -> ChatRecord | None:
        rows = self._read("SELECT * FROM chats WHERE id = ?", (chat_id,))
        return _chat(rows[0]) if rows else None

    def list_chats(self, source: str | None = None) -> list[ChatRecord]:
        """Most recently used first; only those from `source` when given."""
        if source is None:
            rows = self._read("SELECT * FROM chats ORDER BY updated_at DESC, id DESC")
        else:
            rows = self._read("SELECT * FROM chats WHERE source = ? ORDER BY updated_at DESC, id DESC",
                              (source,))
        return [_chat(r) for r in rows]

    def rename_chat(self, chat_id: int, title: str) -> None:
        self._write("UPDATE chats SET title = ? WHERE id = ?", (_clean_title(title), chat_id))

    def set_chat_settings(self, chat_id: int, settings: dict[str, Any]) -> None:
        self._write("UPDATE chats SET settings_json = ? WHERE id = ?", (json.dumps(settings), chat_id))

    def delete_chat(self, chat_id: int) -> None:
        self._write("DELETE FROM chats WHERE id = ?", (chat_id,))

    # -- messages ----------------------------------------------------------------
    def add_message(self, chat_id: int, role: str, content: str, *, status: str = COMPLETE,
                    trace: Trace | str | None = None, error: str | None = None) -> MessageRecord:
        if status not in STATUSES:
            raise ValueError(f"unknown message status {status!r}")
        now = time.time()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                cursor = self._db.execute(
                    "INSERT INTO messages (chat_id, role, content, created_at, status, trace_json, error)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (chat_id, role, content, now, status, _trace_json(trace), error))
                self._db.execute("UPDATE chats SET updated_at = ? WHERE id = ?", (now, chat_id))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        record = self.get_message(int(cursor.lastrowid))
        assert record is not None
        return record

    def update_message(self, message_id: int, *, content: str | None = None,
                       status: str | None = None, trace: Trace | str | None = None,
                       error: str | None = None) -> None:
        """Change the given fields of a message (None leaves a field as it is)."""
        sets: list[str] = []
        params: list[Any] = []
        for column, value in (("content", content), ("status", status),
                              ("trace_json", _trace_json(trace)), ("error", error)):
            if value is not None:
                sets.append(f"{column} = ?")
                params.append(value)
        if status is not None and status not in STATUSES:
            raise ValueError(f"unknown message status {status!r}")
        if sets:
            self._write(f"UPDATE messages SET {', '.join(sets)} WHERE id = ?", (*params, message_id))

    def get_message(self, message_id: int) -> MessageRecord | None:
        rows = self._read("SELECT * FROM messages WHERE id = ?", (message_id,))
        return _message(rows[0]) if rows else None

    def delete_message(self, message_id: int) -> None:
        self._write("DELETE FROM messages WHERE id = ?", (message_id,))

    def messages(self, chat_id: int) -> list[MessageRecord]:
        return [_message(r) for r in
                self._read("SELECT * FROM messages WHERE chat_id = ? ORDER BY id", (chat_id,))]


def context_messages(records: Iterable[MessageRecord]) -> list[dict[str, str]]:
    """The conversation's turns the models see, from stored messages.

    An answer that is empty (failed before writing anything) is left out; when a
    question has several answers (regenerated, or re-run from another switch point),
    only the last one is part of the context. The system prompt is a chat setting, not
    a turn: `messages.normalize` places it.
    """
    out: list[dict[str, str]] = []
    for record in records:
        if record.role == "system":
            continue
        if record.role == "assistant":
            if not record.content.strip():
                continue
            if out and out[-1]["role"] == "assistant":
                out[-1] = record.to_dict()
                continue
        out.append(record.to_dict())
    return out


def _statements(script: str) -> Iterator[str]:
    # The migration scripts hold no semicolons inside literals, so splitting is safe;
    # executescript() would COMMIT on its own and break the one-transaction-per-step rule.
    for part in script.split(";"):
        if part.strip():
            yield part.strip()


def _clean_title(title: str) -> str:
    title = " ".join(str(title).split())
    return title[:200] if title else "Untitled chat"


def _trace_json(trace: Trace | str | None) -> str | None:
    if trace is None or isinstance(trace, str):
        return trace
    return trace.to_json(indent=None)


def _chat(row: sqlite3.Row) -> ChatRecord:
    try:
        settings = json.loads(row["settings_json"] or "{}")
    except ValueError:
        settings = {}
    return ChatRecord(id=row["id"], title=row["title"], created_at=row["created_at"],
                      updated_at=row["updated_at"] or row["created_at"],
                      settings=settings if isinstance(settings, dict) else {}, source=row["source"])


def _message(row: sqlite3.Row) -> MessageRecord:
    return MessageRecord(id=row["id"], chat_id=row["chat_id"], role=row["role"],
                         content=row["content"], created_at=row["created_at"],
                         status=row["status"], trace_json=row["trace_json"], error=row["error"])


def title_from(text: str, limit: int = 48) -> str:
    """A chat title from its first question."""
    words = " ".join(text.split())
    return words if len(words) <= limit else words[: limit - 1].rstrip() + "…"


__all__ = ["Store", "ChatRecord", "MessageRecord", "context_messages", "title_from",
           "SCHEMA_VERSION", "PENDING", "COMPLETE", "STOPPED", "ERROR", "SOURCES"]
