"""Snapshots of the chat screen, drawn from stored traces (no model run).

Update after an intended change with `pytest tests/test_tui_snapshots_chat.py --snapshot-update`
and look at the SVGs in tests/__snapshots__/ before committing them.
"""

from __future__ import annotations

from pathlib import Path

from textual.pilot import Pilot

from wsd_local.store import STOPPED, Store

from chat_traces import make_trace
from tui.app import WsdChatApp
from tui.widgets.chat_input import ChatInput


def _app(tmp_path: Path) -> WsdChatApp:
    store = Store(tmp_path / "chats.sqlite3")
    store.create_chat("An older chat")
    chat = store.create_chat("Barking dog", settings={"mode": "wsd"})
    store.add_message(chat.id, "user", "How do I stop my neighbour's dog barking?")
    first = make_trace()
    store.add_message(chat.id, "assistant", first.answer, trace=first)
    store.add_message(chat.id, "user", "And at night?")
    stopped = make_trace(kept="At night, close the", discarded="", continuation=" windows and",
                         stop_reason="cancelled")
    store.add_message(chat.id, "assistant", stopped.answer, status=STOPPED, trace=stopped)
    return WsdChatApp(store=store, load_models=False, open_chat=chat.id)


async def _steady(pilot: Pilot) -> None:
    await pilot.pause()  # the chat screen composes after the app starts
    pilot.app.screen.query_one(ChatInput).cursor_blink = False
    await pilot.pause()


def test_chat_with_spans(snap_compare, tmp_path: Path) -> None:
    assert snap_compare(_app(tmp_path), terminal_size=(110, 32), run_before=_steady)


def test_chat_with_spans_narrow_no_sidebar(snap_compare, tmp_path: Path) -> None:
    async def run_before(pilot: Pilot) -> None:
        await pilot.press("ctrl+b")
        await _steady(pilot)

    assert snap_compare(_app(tmp_path), terminal_size=(70, 32), run_before=run_before)


def test_chat_with_a_nudging_answer(snap_compare, tmp_path: Path) -> None:
    """A stored real nudging answer of the demo pair (tests/data/nudging_sample.json):
    each turn in its model's colour, ⟫ / ⟪ at the hand-overs."""
    from wsd_local.trace import Trace

    trace = Trace.from_json((Path(__file__).parent / "data" / "nudging_sample.json").read_text(encoding="utf-8"))
    store = Store(tmp_path / "chats.sqlite3")
    chat = store.create_chat("Staying focused", settings={"mode": "nudging"})
    store.add_message(chat.id, "user", trace.messages[-1]["content"])
    store.add_message(chat.id, "assistant", trace.answer, trace=trace)
    app = WsdChatApp(store=store, load_models=False, open_chat=chat.id)
    assert snap_compare(app, terminal_size=(110, 32), run_before=_steady)
