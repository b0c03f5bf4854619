"""A served answer, opened in the chat app: the same spans, the switch, the ⇄ mark."""

from __future__ import annotations

import asyncio

import pytest
from server_process import SERVE_API_KEY

from tui.app import WsdChatApp
from tui.widgets.answer import AnswerWidget
from tui.widgets.sidebar import ChatItem
from tui.widgets.spans import SWITCH_MARKER
from wsd_local.store import Store

pytestmark = pytest.mark.models


def test_served_answer_opens_in_the_chat_app(wsd_server) -> None:
    question = "What should I pack for a weekend hiking trip?"
    with wsd_server.client(SERVE_API_KEY) as http:
        response = http.post("/v1/chat/completions", json={
            "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": question}],
            "max_tokens": 24, "wsd": {"threshold": 0.5, "draft_max_tokens": 16}})
    assert response.status_code == 200, response.text
    served = response.json()
    trace_switch = served["wsd"]["switch"]
    assert trace_switch is not None  # a draft capped at 16 tokens always hands over

    async def open_it() -> None:
        store = Store(wsd_server.data_dir / "chats.sqlite3")
        app = WsdChatApp(store=store, load_models=False, open_chat=served["wsd"]["chat_id"])
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            widgets = list(app.query(AnswerWidget))
            assert len(widgets) == 1
            plain = widgets[0].rendered.plain
            spans = served["wsd"]["spans"]
            assert spans[0]["text"].strip() in plain and SWITCH_MARKER in plain
            titles = [item.chat for item in app.query(ChatItem)]
            mine = next(c for c in titles if c.id == served["wsd"]["chat_id"])
            assert mine.source == "serve" and mine.title == question
            assert mine.settings["system"] == "Be brief."  # the chat continues with it
        store.close()

    asyncio.run(open_it())
