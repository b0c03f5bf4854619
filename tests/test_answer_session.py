"""The one answer session every asker stores answers with (`wsd generate`, the chat app,
`wsd serve`): an answer cut short is stored as the chat shows it, the partial answer is
written at most every SAVE_INTERVAL, and a stopped or failed answer keeps its text
(stored traces and a real store, no model needed)."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
from chat_traces import make_trace

from wsd_local.answer_session import SAVE_INTERVAL, AnswerSession
from wsd_local.settings import DecodingSettings
from wsd_local.messages import Message
from wsd_local.store import COMPLETE, ERROR, PENDING, STOPPED, Store


@pytest.mark.parametrize("reason,status", [("eos", COMPLETE), ("max_tokens", COMPLETE), ("cancelled", STOPPED),
                                           ("connection_lost", STOPPED), ("server_error", STOPPED)])
def test_logged_answer_status_follows_the_one_stopped_rule(tmp_path: Path, reason: str, status: str) -> None:
    store = Store(tmp_path / "chats.sqlite3")
    trace = make_trace(stop_reason=reason)
    session = AnswerSession.new_chat(store, [Message("user", trace.messages[-1]["content"])], trace.settings,
                                     source="generate")
    session.finish(trace)
    answer = store.messages(session.chat_id)[-1]
    assert (answer.role, answer.status, answer.content) == ("assistant", status, trace.answer)
    assert trace.stopped_early == (status == STOPPED)
    store.close()


def test_new_chat_stores_the_question_first_and_the_system_prompt_as_a_setting(tmp_path: Path) -> None:
    store = Store(tmp_path / "chats.sqlite3")
    settings = DecodingSettings(system="Be brief.")
    messages = [Message("system", "Be brief."), Message("user", "Why is the sky blue?"),
                Message("assistant", "Light scatters."), Message("user", "And at sunset?")]
    session = AnswerSession.new_chat(store, messages, settings, source="serve")
    chat = store.get_chat(session.chat_id)
    assert (chat.source, chat.title, chat.settings["system"]) == ("serve", "And at sunset?", "Be brief.")
    assert [(m.role, m.content, m.status) for m in store.messages(chat.id)] == [
        ("user", "Why is the sky blue?", COMPLETE), ("assistant", "Light scatters.", COMPLETE),
        ("user", "And at sunset?", COMPLETE), ("assistant", "", PENDING)]
    store.close()


def test_partial_answer_is_written_once_per_interval_and_only_when_it_changed(tmp_path: Path) -> None:
    store = Store(tmp_path / "chats.sqlite3")
    chat = store.create_chat("q")
    store.add_message(chat.id, "user", "q")
    session = AnswerSession.start(store, chat.id)
    t0 = session.saved_at

    def stored() -> tuple[str, str]:
        record = store.get_message(session.answer_id)
        return record.content, record.status

    session.save_partial("Keep", now=t0 + SAVE_INTERVAL / 2)
    assert stored() == ("", PENDING)  # too soon
    session.save_partial("Keep the", now=t0 + SAVE_INTERVAL)
    assert stored() == ("Keep the", PENDING)
    session.save_partial("Keep the dog", now=t0 + SAVE_INTERVAL * 1.5)
    assert stored() == ("Keep the", PENDING)  # the interval counts from the last write
    session.save_partial("Keep the dog", now=t0 + SAVE_INTERVAL * 2)
    assert stored() == ("Keep the dog", PENDING)
    session.stop("Keep the dog busy")
    assert stored() == ("Keep the dog busy", STOPPED)
    store.close()


def test_a_failed_answer_keeps_its_text_and_a_failed_write_is_reported(tmp_path: Path) -> None:
    store = Store(tmp_path / "chats.sqlite3")
    chat = store.create_chat("q")
    session = AnswerSession.start(store, chat.id)
    session.fail("half an answ", "the model server stopped answering")
    record = store.get_message(session.answer_id)
    assert (record.content, record.status, record.error) == (
        "half an answ", ERROR, "the model server stopped answering")

    reported: list[str] = []
    session.on_error = reported.append
    store.close()  # every write now fails
    session.finish(make_trace())
    assert len(reported) == 1 and f"answer {session.answer_id} of chat {chat.id}" in reported[0]
    session.on_error = None
    with pytest.raises(sqlite3.Error):
        session.stop("x")


def test_concurrent_sessions_share_one_store(tmp_path: Path) -> None:
    """Answers written at once from several threads (the server's workers) each end in
    their own chat with their own text."""
    store = Store(tmp_path / "chats.sqlite3")
    settings = DecodingSettings()

    def answer(n: int) -> None:
        session = AnswerSession.new_chat(store, [Message("user", f"question {n}")], settings, source="serve")
        text = ""
        for step in range(20):
            text += f" {n}.{step}"
            session.save_partial(text, now=session.saved_at + SAVE_INTERVAL)
        session.stop(text)

    threads = [threading.Thread(target=answer, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    chats = store.list_chats("serve")
    assert len(chats) == 6
    for chat in chats:
        question, reply = store.messages(chat.id)
        n = int(question.content.split()[-1])
        assert reply.status == STOPPED and reply.content == "".join(f" {n}.{s}" for s in range(20))
    store.close()


@pytest.mark.models
def test_wsd_generate_saves_the_answer_while_it_streams(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str], demo_paths) -> None:
    """With no interval every change is saved: the pending answer grows as it is printed
    (the drafter alone: its text only grows), then ends complete."""
    from wsd_local import answer_session
    from wsd_local.cli import main

    writes: list[tuple[str | None, str | None]] = []
    update = Store.update_message

    def recording(store: Store, message_id: int, **fields: object) -> None:
        writes.append((fields.get("content"), fields.get("status")))
        update(store, message_id, **fields)

    monkeypatch.setenv("WSD_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("WSD_CONFIG", str(tmp_path / "config.toml"))
    monkeypatch.setattr(answer_session, "SAVE_INTERVAL", 0.0)
    monkeypatch.setattr(Store, "update_message", recording)
    assert main(["generate", "--mode", "draft", "--max-tokens", "8", "Name a colour."]) == 0
    capsys.readouterr()
    *partials, (_, status) = writes
    assert status == COMPLETE and partials and all(s is None for _, s in partials)
    texts = [text for text, _ in partials]
    assert texts[-1] and all(a != b and b.startswith(a) for a, b in zip(texts, texts[1:]))
