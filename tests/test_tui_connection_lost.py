"""The chat app shows an answer that lost its model server as stopped, with the reason
(a stored trace: no model needed)."""

from __future__ import annotations

from pathlib import Path

from chat_traces import make_trace
from test_tui_chat import SIZE, answers, sync, wait_until

from wsd_local.store import STOPPED, Store
from tui.app import WsdChatApp


@sync
async def test_lost_server_marks_the_answer_stopped(tmp_path: Path) -> None:
    """A stored answer that lost its server reads as stopped, with the reason."""
    store = Store(tmp_path / "chats.sqlite3")
    trace = make_trace(stop_reason="connection_lost")
    trace.stop_note = "the continuation stopped: connection to the model server at http://gpu:8000/v1 lost"
    chat = store.create_chat("lost", trace.settings.to_dict())
    store.add_message(chat.id, "user", trace.messages[-1]["content"])
    store.add_message(chat.id, "assistant", trace.answer, status=STOPPED, trace=trace)
    app = WsdChatApp(store=store, load_models=False, open_chat=chat.id)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: len(answers(app)) == 1, "the stored chat")
        shown = str(answers(app)[0].rendered)
        assert "connection lost — what was written is kept" in shown and "http://gpu:8000/v1" in shown
        assert "connection to the model server lost" in shown
