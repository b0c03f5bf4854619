"""The TUI shows what came from outside (questions, answers, chat titles, model names,
errors) as text: Rich markup in it stays literal (`[@click=...]` would be an action) and
control sequences are shown as escapes, never sent to the terminal. Stored chats and a
recorded trace, no models: this is about display only."""

from __future__ import annotations

import re
from pathlib import Path

from rich.text import Text
from test_tui_chat import SIZE, answers, sync
from test_tui_turns_inspector import TurnsApp, load
from textual.widgets import DataTable

from chat_traces import make_trace
from tui.app import WsdChatApp
from tui.errors import describe_error
from tui.widgets.answer import UserMessage
from tui.widgets.sidebar import ChatItem
from wsd_local.errors import RemoteError
from wsd_local.store import Store

MARKUP = "[@click=app.quit]boom[/] [bold red]loud[/]"
CONTROLS = "\x1b]0;pwned\x07\x1b[2J\x9b\u202e"
OBEYED = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def visible(text: object) -> str:
    """What a view shows, as plain text (a Rich Text, Textual Content or str)."""
    plain = text if isinstance(text, str) else text.plain  # type: ignore[attr-defined]
    assert not OBEYED.findall(plain), plain
    return plain


@sync
async def test_a_hostile_chat_is_shown_as_text(tmp_path: Path) -> None:
    store = Store(tmp_path / "chats.sqlite3")
    chat = store.create_chat(f"title {MARKUP} {CONTROLS}", source="serve")
    store.add_message(chat.id, "user", f"question {MARKUP} {CONTROLS}")
    trace = make_trace(kept=f"Sure, {MARKUP} {CONTROLS} yes", continuation=f" then {CONTROLS} more")
    store.add_message(chat.id, "assistant", trace.answer, trace=trace)
    store.add_message(chat.id, "assistant", "", status="error", error=f"server said {CONTROLS}")
    app = WsdChatApp(store=store, load_models=False, open_chat=chat.id)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        first, failed = answers(app)
        shown = visible(first.rendered)
        assert MARKUP in shown and "\\x1b]0;pwned\\x07\\x1b[2J\\x9b\\u202e" in shown
        assert "\\x1b]0;pwned" in visible(failed.rendered)
        (question,) = app.chat_screen.view.query(UserMessage)
        assert MARKUP in visible(question.render())
        (item,) = app.chat_screen.query(ChatItem)
        assert MARKUP in visible(item.query_one("Label").render())
        assert MARKUP in visible(app.chat_screen.sub_title)
        assert app.is_running  # nothing clicked its way to app.quit


@sync
async def test_the_turns_table_does_not_read_answers_as_markup() -> None:
    trace = load()
    first = trace.spans[0]["text"]
    trace.spans[0]["text"] = f"{MARKUP} {CONTROLS} {first}"
    trace.answer = f"{MARKUP} {CONTROLS} {trace.answer}"
    app = TurnsApp(trace)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        table = app.screen.query_one(DataTable)
        preview = table.get_row_at(0)[-1]
        assert isinstance(preview, Text) and visible(preview).startswith(MARKUP)


def test_error_lines_quote_servers_inert() -> None:
    line = describe_error(RemoteError(f"the server said {CONTROLS}\nsecond line"))
    assert "\\x1b]0;pwned" in visible(line) and "\n" not in line
    line = describe_error(ValueError(f"bug with {CONTROLS}"))
    assert "internal error: ValueError: bug with \\x1b]0;pwned" in visible(line)
