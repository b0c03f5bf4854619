"""`wsd serve` under the conditions of real use: a client that leaves mid-answer, and a
full queue (the shared server has --max-queue 1). Real server process, real models;
every wait is bounded, nothing is timed."""

from __future__ import annotations

import json
import threading
from typing import Iterator

import httpx
import pytest
from server_process import SERVE_API_KEY, wait_for

from wsd_local.store import Store

pytestmark = pytest.mark.models

LONG = 1500  # tokens an answer could run to if nobody stopped it


def long_request(prompt: str) -> dict:
    return {"messages": [{"role": "user", "content": prompt}], "max_tokens": LONG,
            "stream": True, "wsd": {"draft_max_tokens": LONG}}


def read_until_text(lines: Iterator[str]) -> str:
    """Read the stream until the first text arrives (the answer is being written). The
    caller keeps `lines` open: closing the iterator closes the connection."""
    for line in lines:
        if line.startswith("data: {"):
            delta = json.loads(line[6:])["choices"][0]["delta"]
            if delta.get("content"):
                return delta["content"]
    raise AssertionError("the stream ended without text")


def stored(wsd_server, prompt: str):
    """The stored answer to `prompt` once it is no longer pending."""
    def find():
        with Store(wsd_server.data_dir / "chats.sqlite3") as store:
            for chat in store.list_chats(source="serve"):
                messages = store.messages(chat.id)
                if messages[0].content == prompt and messages[-1].status != "pending":
                    return messages[-1]
        return None
    return wait_for(find, f"the stored answer to {prompt!r}")


def test_disconnect_stops_the_answer_and_frees_the_pair(wsd_server) -> None:
    prompt = "Tell me a long story about a lighthouse keeper and a storm."
    with wsd_server.client(SERVE_API_KEY) as http:
        with http.stream("POST", "/v1/chat/completions", json=long_request(prompt)) as response:
            assert response.status_code == 200
            read_until_text(response.iter_lines())
        # The connection is closed: the next request is answered (the pair is free).
        answer = http.post("/v1/chat/completions", json={
            "messages": [{"role": "user", "content": "What is 17 plus 25?"}], "max_tokens": 8})
        assert answer.status_code == 200, answer.text
        assert answer.json()["choices"][0]["message"]["content"]
    message = stored(wsd_server, prompt)
    assert message.status == "stopped"
    trace = message.trace
    trace.check()
    assert trace.stop_reason == "cancelled" and message.content == trace.answer and trace.answer
    written = trace.counts.get("draft_tokens", 0) + trace.counts.get("base_tokens", 0)
    assert written < LONG  # stopped long before the limit


def test_a_non_stream_client_that_gives_up_stops_its_answer(wsd_server) -> None:
    prompt = "Describe, in great detail, every room of an old castle."
    body = {**long_request(prompt), "stream": False}
    with wsd_server.client(SERVE_API_KEY, timeout=2.0) as impatient:
        with pytest.raises(httpx.ReadTimeout):
            impatient.post("/v1/chat/completions", json=body)
    message = stored(wsd_server, prompt)
    assert message.status == "stopped" and message.trace.stop_reason == "cancelled"


def test_full_queue_is_a_503_with_retry_after(wsd_server) -> None:
    prompt = "Write a long letter to a friend about a trip to the mountains."
    queued: dict = {}
    with wsd_server.client(SERVE_API_KEY) as http:
        with http.stream("POST", "/v1/chat/completions", json=long_request(prompt)) as running:
            lines = running.iter_lines()
            read_until_text(lines)  # the pair is busy with this one

            def waiting_request() -> None:
                with wsd_server.client(SERVE_API_KEY) as other:
                    queued["response"] = other.post("/v1/chat/completions", json={
                        "messages": [{"role": "user", "content": "Name a fruit."}], "max_tokens": 4})

            thread = threading.Thread(target=waiting_request)
            thread.start()
            try:
                wait_for(lambda: http.get("/health").json()["waiting"] == 1, "the second request to queue")
                # A local pair answers one request at a time, whatever --max-concurrency
                # says (the server runs with its default): the second one waits.
                health = http.get("/health").json()
                assert health["running"] == 1 and health["max_concurrency"] == 1
                refused = http.post("/v1/chat/completions", json={
                    "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4})
                assert refused.status_code == 503
                assert int(refused.headers["retry-after"]) >= 1
                error = refused.json()["error"]
                assert error["code"] == "queue_full" and error["type"] == "server_error"
            finally:
                lines.close()
                running.close()  # leave: the queued request runs next
                thread.join(timeout=120)
        assert not thread.is_alive()
        assert queued["response"].status_code == 200, queued["response"].text
        assert http.get("/health").json()["waiting"] == 0
    assert stored(wsd_server, prompt).status == "stopped"


def test_a_local_pair_says_it_answers_one_request_at_a_time(wsd_server) -> None:
    ready = next(line for line in wsd_server.stdout_path.read_text().splitlines()
                 if line.startswith("wsd serve: listening on"))
    assert "one answer at a time (a local model)" in ready
