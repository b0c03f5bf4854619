"""Fake HTTP servers for the error paths of the remote backend (and only for those).

They imitate what other servers answer — llama-server's and Ollama's model lists, a
server whose completions carry no prompt log-probabilities, a server that never
answers, one that refuses the key, a stream that stalls — so the one-line errors and
the cancel can be tested without those servers. Model behaviour is tested against a
real vLLM in tests/remote/.
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

Route = Callable[["FakeHandler", dict[str, Any] | None], None]


class FakeHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    routes: dict[str, Route] = {}

    def log_message(self, *args: Any) -> None:  # keep test output clean
        pass

    def _dispatch(self, body: dict[str, Any] | None) -> None:
        route = self.routes.get(f"{self.command} {self.path}")
        if route is None:
            self.send_json({"error": {"message": "Not Found"}}, 404)
            return
        route(self, body)

    def do_GET(self) -> None:  # noqa: N802
        self._dispatch(None)

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        self._dispatch(json.loads(raw) if raw else {})

    def send_json(self, data: Any, status: int = 200) -> None:
        payload = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hung up mid-answer is what some tests do on purpose


class FakeServer:
    """A threaded HTTP server on 127.0.0.1 (free port) answering `routes`
    ({"GET /v1/models": handler, ...}); use as a context manager."""

    def __init__(self, routes: dict[str, Route]) -> None:
        handler = type("Handler", (FakeHandler,), {"routes": routes})
        self.httpd = _QuietServer(("127.0.0.1", 0), handler)
        self.port = int(self.httpd.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.disconnected = threading.Event()  # set by routes that notice a client leaving
        self.stalling = threading.Event()  # set by routes when they start to keep a client waiting
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "FakeServer":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def models(owned_by: str, name: str = "some-model", **extra: Any) -> Route:
    def route(h: FakeHandler, body: Any) -> None:
        h.send_json({"object": "list", "data": [{"id": name, "object": "model", "owned_by": owned_by, **extra}]})
    return route


def json_route(data: Any, status: int = 200) -> Route:
    def route(h: FakeHandler, body: Any) -> None:
        h.send_json(data, status)
    return route


def silent(seconds: float) -> Route:
    """Accept the request and answer nothing for `seconds`."""
    def route(h: FakeHandler, body: Any) -> None:
        time.sleep(seconds)
        h.send_json({})
    return route


def tokenize_bytes(h: FakeHandler, body: Any) -> None:
    """A byte-level tokenizer: one token per byte, ids 0..255, GPT-2 raw strings."""
    from wsd_local.backend.remote_vocab import byte_level_table

    chars = {b: c for c, b in byte_level_table().items()}
    data = str(body.get("prompt", "")).encode()
    h.send_json({"tokens": list(data), "token_strs": [chars[b] for b in data], "count": len(data),
                 "max_model_len": 2048})


def scoring_without_prompt_logprobs(h: FakeHandler, body: Any) -> None:
    """A completions answer as llama-server gives it: text, no prompt log-probabilities."""
    h.send_json({"choices": [{"index": 0, "text": "x", "logprobs": None, "finish_reason": "length"}]})


def scoring_with_prompt_logprobs(h: FakeHandler, body: Any) -> None:
    prompt = body.get("prompt") or []
    entries = [None] + [{str(t): {"logprob": -1.0, "rank": 1}} for t in prompt[1:]]
    h.send_json({"choices": [{"index": 0, "text": "x", "prompt_logprobs": entries, "finish_reason": "length"}]})


def stream_then_stall(server_ref: list[FakeServer], stall_s: float) -> Route:
    """Completions: scoring requests answered; a streamed one sends one token, then
    nothing for `stall_s` (noting when the client hangs up)."""
    def route(h: FakeHandler, body: Any) -> None:
        if not body.get("stream"):
            scoring_with_prompt_logprobs(h, body)
            return
        h.send_response(200)
        h.send_header("Content-Type", "text/event-stream")
        h.end_headers()
        event = {"choices": [{"index": 0, "text": "A", "finish_reason": None, "logprobs": {
            "tokens": ["token_id:65"], "token_logprobs": [-0.5],
            "top_logprobs": [{"token_id:65": -0.5, "token_id:66": -1.5}]}}]}
        h.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
        h.wfile.flush()
        deadline = time.monotonic() + stall_s
        while time.monotonic() < deadline:  # send nothing; notice the client leaving
            readable, _, _ = select.select([h.connection], [], [], 0.05)
            if readable and h.connection.recv(1, socket.MSG_PEEK) == b"":
                server_ref[0].disconnected.set()
                return
    return route


def vllm_like(stream_route: Route) -> dict[str, Route]:
    """Enough of vLLM's API for RemoteBackend to load (a byte tokenizer, scoring), with
    the given streamed completions."""
    return {"GET /v1/models": models("vllm", "fake", max_model_len=2048),
            "POST /tokenize": tokenize_bytes,
            "POST /v1/completions": stream_route}


def scoring_then_stall(server_ref: list[FakeServer]) -> Route:
    """Completions: the first scoring request (the check when loading) is answered,
    every later one gets no answer until the client hangs up."""
    calls = []

    def route(h: FakeHandler, body: Any) -> None:
        calls.append(1)
        if len(calls) == 1:
            scoring_with_prompt_logprobs(h, body)
            return
        server_ref[0].stalling.set()
        while True:
            readable, _, _ = select.select([h.connection], [], [], 0.05)
            if readable and h.connection.recv(1, socket.MSG_PEEK) == b"":
                server_ref[0].disconnected.set()
                return
    return route
