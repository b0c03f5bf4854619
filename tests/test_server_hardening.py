"""`wsd serve` against hostile requests and the web pages a user opens: a real server
(the demo pair), crafted requests sent raw with httpx and sockets. Each refusal is a
one-line OpenAI-shaped 4xx, nothing refused runs the models or is stored, and the server
answers normally afterwards.

Two servers: the shared one (`wsd_server`: the defaults, a queue of one, the key from
the environment) and, for the flags, one started here with a key file, a named host
and origin, a system prompt of its own, small limits and a deadline so short that
every answer reaches it."""

from __future__ import annotations

import json
import socket
import threading
from pathlib import Path
from typing import Iterator
from urllib.parse import urlsplit

import httpx
import pytest
from server_process import SERVE_API_KEY, ServerProcess, wait_for

from wsd_local.server.limits import MIB, RequestLimits
from wsd_local.store import Store

pytestmark = pytest.mark.models

USER = [{"role": "user", "content": "Hi"}]
JSON = {"Content-Type": "application/json"}
DEFAULT_LIMITS = RequestLimits()
EVIL = "https://evil.example"


def error_of(response: httpx.Response, status: int, code: str | None = None) -> str:
    """The error's message, once it is checked to be OpenAI's shape, in one line."""
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"] and "\n" not in error["message"] and "Traceback" not in error["message"]
    if code is not None:
        assert error["code"] == code
    return error["message"]


def served_chats(server: ServerProcess) -> int:
    path = server.data_dir / "chats.sqlite3"
    if not path.exists():
        return 0
    with Store(path) as store:
        return len(store.list_chats(source="serve"))


def request_bytes(body: dict) -> bytes:
    return json.dumps(body).encode()


def read_until_text(lines: Iterator[str]) -> None:
    for line in lines:
        if line.startswith("data: {") and json.loads(line[6:])["choices"][0]["delta"].get("content"):
            return
    raise AssertionError("the stream ended without text")


@pytest.fixture(scope="module")
def raw(wsd_server) -> Iterator[httpx.Client]:
    with wsd_server.client(SERVE_API_KEY) as http:
        yield http


def still_answers(http: httpx.Client) -> None:
    response = http.post("/v1/chat/completions", json={"messages": USER, "max_tokens": 3})
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"]


# -- the shared server: its defaults ----------------------------------------------------------
def chunked(total: int) -> Iterator[bytes]:
    """A body of `total` bytes sent without a Content-Length (chunked)."""
    yield b'{"messages": [{"role": "user", "content": "'
    sent = 0
    while sent < total:
        yield b"a" * min(MIB, total - sent)
        sent += MIB
    yield b'"}]}'


HUGE = "1" + "0" * 399
OVER = DEFAULT_LIMITS.max_body_bytes + 1
CRAFTED = [
    # name, body, headers, status, code or param
    ("temperature-99", request_bytes({"messages": USER, "temperature": 99}), JSON, 400, "temperature"),
    ("threshold-400-digits", b'{"messages": [{"role": "user", "content": "Hi"}], "wsd": {"threshold": '
     + HUGE.encode() + b"}}", JSON, 400, "wsd.threshold"),
    ("nested-3000", b'{"messages": [{"role": "user", "content": "Hi"}], "x": ' + b"[" * 3000 + b"]" * 3000
     + b"}", JSON, 400, "invalid_json"),
    ("lone-surrogate", b'{"messages": [{"role": "user", "content": "\\ud800"}]}', JSON, 400,
     "messages[0].content"),
    ("not-utf-8", b'{"messages": [{"role": "user", "content": "\xff"}]}', JSON, 400, "invalid_json"),
    ("over-the-body-limit", b'{"messages": [{"role": "user", "content": "' + b"a" * OVER + b'"}]}', JSON,
     413, "request_too_large"),
    ("over-the-body-limit-chunked", None, JSON, 413, "request_too_large"),
    ("text-plain", request_bytes({"messages": USER}), {"Content-Type": "text/plain"}, 415,
     "unsupported_media_type"),
    ("no-content-type", request_bytes({"messages": USER}), {}, 415, "unsupported_media_type"),
]


@pytest.mark.parametrize("body, headers, status, where", [c[1:] for c in CRAFTED],
                         ids=[c[0] for c in CRAFTED])
def test_crafted_requests_get_a_4xx_and_run_nothing(raw, wsd_server, body, headers, status, where) -> None:
    served, chats = raw.get("/health").json()["served"], served_chats(wsd_server)
    content = chunked(OVER) if body is None else body
    response = raw.post("/v1/chat/completions", content=content, headers=headers)
    message = error_of(response, status)
    error = response.json()["error"]
    assert where in (error["code"], error["param"]), message
    assert raw.get("/health").json()["served"] == served and served_chats(wsd_server) == chats


def test_the_server_answers_after_the_crafted_requests(raw, wsd_server) -> None:
    chats = served_chats(wsd_server)
    still_answers(raw)
    assert served_chats(wsd_server) == chats + 1


def test_web_pages_and_rebound_names_are_refused(raw, wsd_server) -> None:
    served, chats = raw.get("/health").json()["served"], served_chats(wsd_server)
    port = urlsplit(wsd_server.url).port
    for host in ("evil.example", f"evil.example:{port}", "127.0.0.1.evil.example"):
        for response in (raw.get("/health", headers={"Host": host}), raw.get("/v1/models", headers={"Host": host}),
                         raw.post("/v1/chat/completions", json={"messages": USER}, headers={"Host": host})):
            assert "--allow-host" in error_of(response, 403, "host_not_allowed")
    for host in (f"localhost:{port}", "LOCALHOST", f"127.0.0.2:{port}", f"[::1]:{port}"):
        assert raw.get("/health", headers={"Host": host}).status_code == 200, host
    # A cross-site page: a form-like text/plain POST (no preflight), a JSON POST, a preflight.
    for response in (raw.post("/v1/chat/completions", content=request_bytes({"messages": USER}),
                              headers={"Content-Type": "text/plain", "Origin": EVIL}),
                     raw.post("/v1/chat/completions", json={"messages": USER}, headers={"Origin": EVIL}),
                     raw.get("/v1/models", headers={"Origin": "null"}),
                     raw.options("/v1/chat/completions", headers={"Origin": EVIL,
                                                                  "Access-Control-Request-Method": "POST"})):
        assert "--allow-origin" in error_of(response, 403, "origin_not_allowed")
        assert "access-control-allow-origin" not in response.headers
    # The server's own pages (/docs) send its own origin.
    assert raw.get("/v1/models", headers={"Origin": wsd_server.url}).status_code == 200
    assert raw.get("/health").json()["served"] == served and served_chats(wsd_server) == chats


def test_bearer_is_case_insensitive_and_the_key_exact(wsd_server) -> None:
    for header, status in ((f"bearer {SERVE_API_KEY}", 200), (f"BEARER {SERVE_API_KEY}", 200),
                           (f"Bearer {SERVE_API_KEY}x", 401), (f"Bearer {SERVE_API_KEY[:-1]}", 401),
                           (f"Basic {SERVE_API_KEY}", 401), ("Bearer", 401)):
        response = httpx.get(wsd_server.url + "/v1/models", headers={"Authorization": header})
        assert response.status_code == status, header


def test_clients_that_leave_while_waiting_free_the_queue(raw, wsd_server) -> None:
    """The shared server queues one request. Twenty clients each queue one behind a
    running answer and leave: each place is free as soon as its client is gone, and the
    next request waits in the queue instead of getting a 503."""
    address = (urlsplit(wsd_server.url).hostname, urlsplit(wsd_server.url).port)
    body = request_bytes({"messages": USER, "max_tokens": 2})
    head = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: {address[0]}:{address[1]}\r\n"
            f"Authorization: Bearer {SERVE_API_KEY}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    waiting = lambda: raw.get("/health").json()["waiting"]  # noqa: E731
    long = {"messages": [{"role": "user", "content": "Tell me a long story about a lighthouse keeper."}],
            "max_tokens": 1500, "stream": True, "wsd": {"draft_max_tokens": 1500}}
    served = raw.get("/health").json()["served"]
    result: dict = {}
    with raw.stream("POST", "/v1/chat/completions", json=long) as running:
        lines = running.iter_lines()
        read_until_text(lines)  # the pair is busy with this answer
        for _ in range(20):
            with socket.create_connection(address) as leaver:
                leaver.sendall(head + body)
                wait_for(lambda: waiting() == 1, "the request to queue")
            wait_for(lambda: waiting() == 0, "the place of the client that left to be free")

        def queued() -> None:
            with wsd_server.client(SERVE_API_KEY) as other:
                result["response"] = other.post("/v1/chat/completions", json={
                    "messages": [{"role": "user", "content": "Name a fruit."}], "max_tokens": 3})

        thread = threading.Thread(target=queued)
        thread.start()
        try:
            wait_for(lambda: waiting() == 1, "the next request to queue")
        finally:
            lines.close()
            running.close()  # leave: the queued request runs next
            thread.join(timeout=120)
    assert result["response"].status_code == 200, result["response"].text
    # The twenty never ran: the running answer and the queued one are all that was served.
    wait_for(lambda: raw.get("/health").json()["served"] == served + 2, "both answers to be counted")


def test_answers_name_model_files_not_their_paths(raw, demo_paths) -> None:
    response = raw.post("/v1/chat/completions", json={"messages": USER, "max_tokens": 2, "wsd": {"trace": True}})
    assert response.status_code == 200, response.text
    models = response.json()["wsd"]["trace"]["models"]
    assert {role: m["path"] for role, m in models.items()} == {role: p.name for role, p in demo_paths.items()}
    for text in (response.text, raw.get("/v1/models").text, raw.get("/health").text):
        for path in demo_paths.values():
            assert str(path.parent) not in text and str(path.parent).replace("/", "\\/") not in text


# -- a server started with the flags ----------------------------------------------------------
SECRET = "Answer as the Ministry of Silly Walks would."
FLAGGED_KEY = "key-from-a-file"
ORIGIN = "https://app.example"
NAMED_HOST = "wsd.internal"
TOKENS_LIMIT = 600
DEADLINE_S = 0.2  # shorter than any long answer, on any machine: every answer reaches it


@pytest.fixture(scope="module")
def flagged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    folder = tmp_path_factory.mktemp("serve-flags")
    key_file = folder / "key"
    key_file.write_text(FLAGGED_KEY + "\n")
    server = ServerProcess(folder / "data", args=[
        "--ctx", "1024", "--api-key-file", str(key_file), "--allow-origin", ORIGIN, "--allow-host", NAMED_HOST,
        "--system", SECRET, "--max-tokens-limit", str(TOKENS_LIMIT), "--max-tokens", "64",
        "--max-body-mb", "1", "--request-timeout", str(DEADLINE_S)])
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def keyed(flagged) -> Iterator[httpx.Client]:
    with flagged.client(FLAGGED_KEY) as http:
        yield http


def test_the_key_file_is_the_key(flagged, keyed) -> None:
    assert keyed.get("/v1/models").status_code == 200
    with flagged.client() as anonymous, flagged.client("wrong") as wrong:
        error_of(anonymous.get("/v1/models"), 401, "invalid_api_key")
        error_of(wrong.get("/v1/models"), 401, "invalid_api_key")
    cmdline = Path(f"/proc/{flagged.process.pid}/cmdline")  # what `ps` shows (Linux)
    if cmdline.exists():
        assert FLAGGED_KEY not in cmdline.read_text()


def test_allowed_hosts_and_origins_with_cors(flagged, keyed) -> None:
    assert keyed.get("/v1/models", headers={"Host": NAMED_HOST}).status_code == 200
    error_of(keyed.get("/v1/models", headers={"Host": "other.internal"}), 403, "host_not_allowed")
    preflight = keyed.options("/v1/chat/completions", headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type"})
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == ORIGIN
    assert {"authorization", "content-type"} <= set(preflight.headers["access-control-allow-headers"].split(", "))
    assert "POST" in preflight.headers["access-control-allow-methods"]
    for response in (keyed.get("/v1/models", headers={"Origin": ORIGIN}),
                     httpx.get(flagged.url + "/v1/models", headers={"Origin": ORIGIN})):  # a 401 too
        assert response.headers["access-control-allow-origin"] == ORIGIN
    error_of(keyed.get("/v1/models", headers={"Origin": EVIL}), 403, "origin_not_allowed")


def test_limits_from_the_flags(keyed) -> None:
    assert f"at most {TOKENS_LIMIT}" in error_of(keyed.post("/v1/chat/completions", json={
        "messages": USER, "max_tokens": TOKENS_LIMIT + 1}), 400)
    assert "1 MiB" in error_of(keyed.post("/v1/chat/completions", json={
        "messages": [{"role": "user", "content": "a" * MIB}]}), 413, "request_too_large")


def test_the_deadline_stops_an_answer_keeps_and_marks_it(flagged, keyed) -> None:
    prompt = "Tell me a long story about a dragon who learns to bake bread."
    body = {"messages": [{"role": "user", "content": prompt}], "max_tokens": TOKENS_LIMIT,
            "wsd": {"draft_max_tokens": TOKENS_LIMIT}}
    response = keyed.post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    answer = response.json()
    extras = answer["wsd"]
    assert answer["choices"][0]["finish_reason"] == "length"
    assert extras["stop_reason"] == "cancelled" and "--request-timeout" in extras["stop_note"]
    with Store(flagged.data_dir / "chats.sqlite3") as store:
        stored = store.messages(extras["chat_id"])[-1]
    assert stored.status == "stopped" and stored.content == answer["choices"][0]["message"]["content"]
    assert stored.trace.stop_note == extras["stop_note"]

    streamed = keyed.post("/v1/chat/completions", json={**body, "stream": True})
    chunks = [json.loads(line[6:]) for line in streamed.text.splitlines() if line.startswith("data: {")]
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"
    assert "--request-timeout" in chunks[-1]["wsd"]["stop_note"]
    assert streamed.text.rstrip().endswith("data: [DONE]")


def test_the_server_system_prompt_stays_on_the_server(flagged, keyed) -> None:
    card = keyed.get("/v1/models")
    assert SECRET not in card.text
    assert card.json()["data"][0]["wsd"]["server_system_prompt"] is True
    body = {"messages": USER, "max_tokens": 2, "wsd": {"trace": True}}
    for response in (keyed.post("/v1/chat/completions", json=body),
                     keyed.post("/v1/chat/completions", json={**body, "stream": True})):
        assert response.status_code == 200 and SECRET not in response.text
    extras = keyed.post("/v1/chat/completions", json=body).json()["wsd"]
    assert extras["server_system_prompt"] is True and extras["settings"]["system"] is None
    assert extras["trace"]["messages"] == USER
    with Store(flagged.data_dir / "chats.sqlite3") as store:  # the owner's record keeps it
        assert store.get_chat(extras["chat_id"]).settings["system"] == SECRET
    # A system prompt the client sent itself comes back as sent.
    own = keyed.post("/v1/chat/completions", json={**body, "messages": [
        {"role": "system", "content": "Be brief."}, *USER]}).json()["wsd"]
    assert own["server_system_prompt"] is False and own["settings"]["system"] == "Be brief."
    assert own["trace"]["messages"][0] == {"role": "system", "content": "Be brief."}
