"""`wsd generate`'s answer log stores an answer cut short as the chat does: stopped when
the user stopped it or its model server was lost, complete otherwise (stored traces,
no model needed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from chat_traces import make_trace

from wsd_local.answer_log import AnswerLog
from wsd_local.messages import Message
from wsd_local.store import COMPLETE, STOPPED, Store


@pytest.mark.parametrize("reason,status", [("eos", COMPLETE), ("max_tokens", COMPLETE), ("cancelled", STOPPED),
                                           ("connection_lost", STOPPED), ("server_error", STOPPED)])
def test_logged_answer_status_follows_the_one_stopped_rule(tmp_path: Path, reason: str, status: str) -> None:
    store = Store(tmp_path / "chats.sqlite3")
    trace = make_trace(stop_reason=reason)
    log = AnswerLog(store, [Message("user", trace.messages[-1]["content"])], trace.settings)
    log.finished(trace)
    answer = store.messages(log.chat.id)[-1]
    assert (answer.role, answer.status, answer.content) == ("assistant", status, trace.answer)
    assert trace.stopped_early == (status == STOPPED)
    store.close()
