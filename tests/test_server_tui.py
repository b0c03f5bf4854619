"""A served answer, opened in the chat app: the same spans, the switch, the ⇄ mark."""

from __future__ import annotations

import asyncio

import pytest
from server_process import SERVE_API_KEY

from tui.app import WsdChatApp
from tui.widgets.answer import AnswerWidget
from tui.widgets.sidebar import ChatItem
from wsd_local.store import Store

pytestmark = pytest.mark.models

QUESTION = "What should I pack for a weekend hiking trip?"


def test_served_answer_opens_in_the_chat_app(wsd_server) -> None:
    with wsd_server.client(SERVE_API_KEY) as http:
        response = http.post("/v1/chat/completions", json={
            "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": QUESTION}],
            "max_tokens": 20, "wsd": {"threshold": 0.5, "draft_max_tokens": 12}})
    assert response.status_code == 200, response.text
    served = response.json()["wsd"]
    assert served["switch"] is not None  # a draft capped at 12 tokens always hands over
    chat_id = served["chat_id"]

    async def open_it() -> None:
        with Store(wsd_server.data_dir / "chats.sqlite3") as store:
            app = WsdChatApp(store=store, load_models=False, open_chat=chat_id)
            async with app.run_test(size=(120, 40)) as pilot:
                await pilot.pause()
                widgets = list(app.query(AnswerWidget))
                assert len(widgets) == 1
                plain = widgets[0].rendered.plain
                assert all(span["text"].strip()[:30] in plain for span in served["spans"])
                item = next(i for i in app.query(ChatItem) if i.chat.id == chat_id)
                assert item.chat.source == "serve" and item.chat.title == QUESTION
                assert "⇄" in str(item.query_one("Label").render())
                assert item.chat.settings["system"] == "Be brief."  # the chat continues with it

    asyncio.run(open_it())
