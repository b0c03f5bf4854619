"""The chat store: schema creation, upgrade from version 1, crash safety."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from wsd_local.errors import WsdError
from wsd_local.store import (COMPLETE, MIGRATIONS, PENDING, SCHEMA_VERSION, STOPPED, Store,
                             context_messages, default_path, title_from)

from chat_traces import make_trace


def test_new_database_has_current_schema(tmp_path: Path) -> None:
    store = Store(tmp_path / "c.sqlite3")
    assert store.version == SCHEMA_VERSION == 3
    cols = {r[1] for r in store._db.execute("PRAGMA table_info(messages)")}
    assert {"status", "trace_json", "error", "content", "role"} <= cols
    assert store._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    store.close()


def test_default_path_follows_wsd_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WSD_DATA_DIR", str(tmp_path / "data"))
    assert default_path() == tmp_path / "data" / "chats.sqlite3"
    with Store() as store:
        store.create_chat("x")
    assert (tmp_path / "data" / "chats.sqlite3").is_file()


def test_chat_and_message_round_trip(tmp_path: Path) -> None:
    store = Store(tmp_path / "c.sqlite3")
    chat = store.create_chat("  Barking   dog ", settings={"mode": "wsd", "system": "Be kind."})
    assert chat.title == "Barking dog" and chat.settings["system"] == "Be kind."
    user = store.add_message(chat.id, "user", "How do I stop barking?")
    trace = make_trace()
    answer = store.add_message(chat.id, "assistant", "", status=PENDING)
    store.update_message(answer.id, content=trace.answer, status=COMPLETE, trace=trace)
    msgs = store.messages(chat.id)
    assert [m.id for m in msgs] == [user.id, answer.id]
    restored = msgs[1].trace
    assert restored is not None and restored.spans == trace.spans
    assert restored.switch_index == trace.switch_index and restored.discarded_draft == trace.discarded_draft
    assert msgs[1].status == COMPLETE and msgs[0].trace is None

    store.rename_chat(chat.id, "Dogs")
    store.set_chat_settings(chat.id, {"mode": "paper"})
    assert store.get_chat(chat.id).title == "Dogs"
    assert store.get_chat(chat.id).settings == {"mode": "paper"}
    with pytest.raises(ValueError):
        store.update_message(answer.id, status="bogus")


def test_list_is_most_recent_first_and_delete_cascades(tmp_path: Path) -> None:
    store = Store(tmp_path / "c.sqlite3")
    a = store.create_chat("a")
    b = store.create_chat("b")
    time.sleep(0.01)
    store.add_message(a.id, "user", "hi")  # touching a chat moves it to the top
    assert [c.title for c in store.list_chats()] == ["a", "b"]
    store.delete_chat(a.id)
    assert [c.id for c in store.list_chats()] == [b.id]
    assert store._db.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 0


def test_upgrade_from_version_1_keeps_data(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(MIGRATIONS[0])
    db.execute("PRAGMA user_version = 1")
    db.execute("INSERT INTO chats (id, title, created_at) VALUES (1, 'old chat', 100.0)")
    db.execute("INSERT INTO messages (chat_id, role, content, created_at) VALUES (1, 'user', 'q', 101.0)")
    db.execute("INSERT INTO messages (chat_id, role, content, created_at) VALUES (1, 'assistant', 'a', 102.0)")
    db.commit()
    db.close()

    store = Store(path)
    assert store.version == 3
    chat = store.get_chat(1)
    assert chat.title == "old chat" and chat.updated_at == 102.0 and chat.settings == {}
    assert chat.source == "chat"  # version 3: chats from before were TUI chats
    msgs = store.messages(1)
    assert [(m.role, m.content, m.status, m.trace) for m in msgs] == [
        ("user", "q", COMPLETE, None), ("assistant", "a", COMPLETE, None)]
    # Upgraded databases accept version-2 data.
    store.add_message(1, "assistant", "b", status=STOPPED, trace=make_trace())
    store.close()
    assert Store(path).version == 3  # opening again is a no-op


def test_chats_remember_where_they_came_from(tmp_path: Path) -> None:
    store = Store(tmp_path / "c.sqlite3")
    tui = store.create_chat("asked in the TUI")
    served = store.create_chat("asked over HTTP", source="serve")
    assert store.get_chat(served.id).source == "serve" and tui.source == "chat"
    assert [c.id for c in store.list_chats(source="serve")] == [served.id]
    assert {c.id for c in store.list_chats()} == {tui.id, served.id}
    with pytest.raises(ValueError):
        store.create_chat("x", source="nowhere")


def test_newer_schema_is_refused_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "new.sqlite3"
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 99")
    db.close()
    with pytest.raises(WsdError, match="newer than this wsd-local"):
        Store(path)


def test_garbage_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "junk.sqlite3"
    path.write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(WsdError, match="cannot open the chat database"):
        Store(path)


_KILLED_WRITER = textwrap.dedent("""
    import os, sys, time
    from wsd_local.store import Store, PENDING
    store = Store(sys.argv[1])
    chat = store.create_chat("survivor")
    store.add_message(chat.id, "user", "saved before generation")
    answer = store.add_message(chat.id, "assistant", "partial", status=PENDING)
    # An open write transaction at the moment of the kill must not corrupt anything.
    store._db.execute("BEGIN IMMEDIATE")
    store._db.execute("INSERT INTO messages (chat_id, role, content, created_at) VALUES (?, 'user', 'lost', 0)",
                      (chat.id,))
    print("ready", flush=True)
    time.sleep(60)
""")


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_database_left_by_killed_process_opens(tmp_path: Path) -> None:
    path = tmp_path / "killed.sqlite3"
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_WRITER, str(path)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    store = Store(path)
    [chat] = store.list_chats()
    msgs = store.messages(chat.id)
    assert [(m.role, m.content, m.status) for m in msgs] == [
        ("user", "saved before generation", COMPLETE), ("assistant", "partial", PENDING)]
    assert store._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    store.add_message(chat.id, "user", "and it still takes writes")
    assert len(store.messages(chat.id)) == 3


def test_context_messages_keeps_last_answer_and_skips_empty() -> None:
    from wsd_local.store import MessageRecord

    def m(i: int, role: str, text: str) -> MessageRecord:
        return MessageRecord(id=i, chat_id=1, role=role, content=text, created_at=0.0)

    records = [m(1, "user", "q1"), m(2, "assistant", "first"), m(3, "assistant", "second"),
               m(4, "user", "q2"), m(5, "assistant", "")]
    assert context_messages(records) == [
        {"role": "user", "content": "q1"},
        {"role": "assistant", "content": "second"}, {"role": "user", "content": "q2"}]


def test_title_from_long_question() -> None:
    assert title_from("short  one") == "short one"
    long = title_from("word " * 40)
    assert len(long) <= 48 and long.endswith("…")


def test_store_and_export_never_import_textual() -> None:
    code = ("import sys, wsd_local.store, wsd_local.export; "
            "sys.exit('textual' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
