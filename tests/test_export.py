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


HOSTILE = ('Click <a href="https://evil.example">here</a><script>alert(1)</script>, '
           'see ![pixel](https://evil.example/p.png?u=1) and ![ref][r]\n\n[r]: https://evil.example/q.png')


def test_markdown_carries_no_raw_html_and_no_remote_images(store: Store) -> None:
    """Rendered by a CommonMark renderer with HTML on (markdown-it, as editors and sites
    use it): no tag or image from a prompt, an answer or a name survives; code shows
    exactly as written and ordinary Markdown stays Markdown."""
    from markdown_it import MarkdownIt

    code_answer = "Use **this**:\n\n```c\n#include <stdio.h>\n```\n\nor `a<b>` in a [link](https://x.example)."
    chat = store.create_chat('<img src="https://evil.example/t.png">', settings={"system": HOSTILE})
    store.add_message(chat.id, "user", HOSTILE + "\n```\n<b>an unclosed fence")
    trace = make_trace(kept="<iframe src=x>", discarded=" ![d](https://evil.example/d.png)",
                       continuation=" " + HOSTILE)
    store.add_message(chat.id, "assistant", trace.answer, trace=trace)
    store.add_message(chat.id, "assistant", code_answer)
    store.add_message(chat.id, "assistant", "", status=ERROR, error="<b>bad</b> server")
    md = chat_to_markdown(store.get_chat(chat.id), store.messages(chat.id))
    html = MarkdownIt("commonmark").render(md)
    for raw in ("<script", "<a href=\"https://evil.example\">here", "<iframe", "<img", "<b>"):
        assert raw not in html
    assert "evil.example" in html  # still there, as text or as a link to click
    # The unclosed fence in the question ends with the question: the answer after it is
    # still a heading and marked text, not code.
    assert "<h2>Assistant (wsd" in html and html.count("<h2>") == 4
    assert '<pre><code class="language-c">#include &lt;stdio.h&gt;\n</code></pre>' in html
    assert "<code>a&lt;b&gt;</code>" in html and "<strong>this</strong>" in html
    assert '<a href="https://x.example">link</a>' in html
    assert "#include <stdio.h>" in md  # code is written as it came


def test_inert_markdown_keeps_plain_markdown_unchanged() -> None:
    from wsd_local.markdown_text import inert_markdown

    plain = "# Title\n\n- one *two* **three**\n- [a link](https://example.org)\n\n| a | b |\n|---|---|\n| 1 | 2 |\n"
    assert inert_markdown(plain) == plain
    # A backslash before a backtick opens no code span: the HTML after it is not code.
    assert inert_markdown("\\`<b>x\\`") == "\\`&lt;b>x\\`"
