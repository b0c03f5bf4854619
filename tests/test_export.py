"""Chat export: Markdown with spans marked, JSON with full traces."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from wsd_local.errors import WsdError
from wsd_local.export import DRAFTER_MARK, SWITCH_MARK, chat_to_json, chat_to_markdown, export_chat
from wsd_local.store import ERROR, STOPPED, Store
from wsd_local.trace import Trace

from chat_traces import make_trace


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "c.sqlite3")


def _chat(store: Store):
    chat = store.create_chat("Barking dog", settings={"mode": "wsd", "threshold": 0.8, "system": "Be brief."})
    store.add_message(chat.id, "user", "How do I stop barking?")
    trace = make_trace()
    store.add_message(chat.id, "assistant", trace.answer, trace=trace)
    store.add_message(chat.id, "user", "And at night?")
    stopped = make_trace(continuation=" and", stop_reason="cancelled")
    store.add_message(chat.id, "assistant", stopped.answer, status=STOPPED, trace=stopped)
    return chat, trace


def test_markdown_marks_spans_switch_and_discarded_draft(store: Store) -> None:
    chat, trace = _chat(store)
    md = chat_to_markdown(store.get_chat(chat.id), store.messages(chat.id))
    assert md.startswith("# Barking dog\n")
    assert "> Be brief." in md
    expected = f"{DRAFTER_MARK} {trace.kept_draft}{SWITCH_MARK}{trace.continuation}"
    assert expected in md
    # The draft the base model did not keep is set apart, not dropped.
    assert "_Draft not kept by the base model:_" in md and f"> {trace.discarded_draft.strip()}" in md
    assert "stopped by the user" in md
    assert "drafter: SmolLM2-135M-Instruct" in md and "base: gemma-3-270m" in md
    # Removing the markers gives back the answer exactly.
    body = md.split("\n" + DRAFTER_MARK + " ", 1)[1].split("\n", 1)[0]
    assert body.replace(SWITCH_MARK, "") == trace.answer


def test_markdown_of_answers_without_trace_and_single_model(store: Store) -> None:
    chat = store.create_chat("plain")
    store.add_message(chat.id, "user", "q")
    store.add_message(chat.id, "assistant", "an old answer")  # e.g. from schema version 1
    base_only = make_trace(mode="base")
    store.add_message(chat.id, "assistant", base_only.answer, trace=base_only)
    store.add_message(chat.id, "assistant", "", status=ERROR, error="prompt too long")
    md = chat_to_markdown(store.get_chat(chat.id), store.messages(chat.id))
    assert "an old answer" in md
    assert f"**[base ▸]**{base_only.answer}" in md and md.count(SWITCH_MARK) == 1  # legend only
    assert "failed: prompt too long" in md


def test_json_has_full_traces(store: Store) -> None:
    chat, trace = _chat(store)
    data = json.loads(chat_to_json(store.get_chat(chat.id), store.messages(chat.id)))
    assert data["format"] == "wsd-local-chat" and data["chat"]["title"] == "Barking dog"
    assert [m["role"] for m in data["messages"]] == ["user", "assistant", "user", "assistant"]
    assert data["messages"][0]["trace"] is None
    restored = Trace.from_dict(data["messages"][1]["trace"])
    assert restored.spans == trace.spans and restored.draft_tokens == trace.draft_tokens
    assert data["messages"][3]["status"] == "stopped"


def test_export_writes_files(store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WSD_DATA_DIR", str(tmp_path / "data"))
    chat, _ = _chat(store)
    md = export_chat(store, chat.id, "markdown")
    assert md == tmp_path / "data" / "exports" / f"barking-dog-{chat.id}.md"
    assert md.read_text(encoding="utf-8").startswith("# Barking dog")
    js = export_chat(store, chat.id, "json", folder=tmp_path / "out")
    assert json.loads(js.read_text(encoding="utf-8"))["chat"]["id"] == chat.id
    with pytest.raises(WsdError, match="unknown export format"):
        export_chat(store, chat.id, "pdf")
    with pytest.raises(WsdError, match="no chat"):
        export_chat(store, 999, "json")


def test_markdown_marks_every_nudging_turn(store: Store) -> None:
    """The stored real nudging trace of the demo pair (tests/data/nudging_sample.json)."""
    from wsd_local.export import BASE_MARK, TO_DRAFTER_MARK

    trace = Trace.from_json((Path(__file__).parent / "data" / "nudging_sample.json").read_text(encoding="utf-8"))
    chat = store.create_chat("Focus", settings={"mode": "nudging"})
    store.add_message(chat.id, "user", trace.messages[-1]["content"])
    store.add_message(chat.id, "assistant", trace.answer, trace=trace)
    md = chat_to_markdown(store.get_chat(chat.id), store.messages(chat.id))
    assert f"(nudging, {trace.counts['handovers']} hand-overs)" in md
    body = md.split("\n" + DRAFTER_MARK + " ", 1)[1].rstrip("\n")
    expected = trace.spans[0]["text"]
    for span in trace.spans[1:]:
        if span["text"]:  # each turn after its model's mark (a space between unless the text has one)
            mark = BASE_MARK if span["model"] == "base" else TO_DRAFTER_MARK
            expected += mark + ("" if span["text"][:1].isspace() else " ") + span["text"]
    assert body == expected
    assert body.count(TO_DRAFTER_MARK) == sum(s["model"] == "drafter" and s["text"] != "" for s in trace.spans[1:]) > 3
