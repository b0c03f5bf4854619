"""HTTP to a model server: JSON requests with retries where they are safe, a streamed
request that a cancel closes at once, and every failure as one line.

Retries: only for requests that compute nothing the caller keeps half of (reading the
model list, tokenizing, scoring with prompt log-probabilities): sending one twice
cannot duplicate work. A streamed continuation is never retried: a repeat would write
a second, different continuation.

Cancel: the thread reading an answer blocks in the socket; a small watcher shuts the
socket down the moment the cancel event is set, so the read returns at once (the
server then aborts the request, as it does for any client that leaves). Streams and
scoring requests made with a cancel event both work this way.

Threads: each thread gets its own connection pool (made on its first request), so
answers running at once in several threads never share a socket, and one answer's
cancel shuts only its own thread's connections down. A pool goes with its thread.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

import httpx

from ..errors import RemoteError, RemoteRefusal
from .remote_spec import API_KEY_ENV, CONNECT_TIMEOUT_S, RemoteOptions, RemoteSpec

#: Attempts for a request that is safe to repeat, and the pause before each repeat.
RETRY_PAUSES_S = (0.5, 1.5)
#: HTTP statuses worth a repeat: the server or a proxy in front of it is busy or restarting.
RETRY_STATUSES = {429, 502, 503, 504}


class TransportFailure(RemoteError):
    """The request did not get through (connection refused or dropped, timeout), as
    opposed to a server that answered with an error status."""


class RequestCancelled(Exception):
    """The caller's cancel event closed a request before its answer arrived."""


class StreamLost(Exception):
    """A streamed response ended before its end marker (connection dropped, server
    stopped, or no data within the timeout). Carries the reason in words."""


@dataclass
class RequestStats:
    """What the client sent, for `wsd bench`: requests, wall time in HTTP, and the
    server's own time for them where it reports it (vLLM with
    --enable-per-request-metrics: queue + first token + generation)."""

    requests: int = 0
    retries: int = 0
    seconds: float = 0.0  # wall time from sending a request to its last byte
    server_seconds: float = 0.0  # the server's time for the requests that report it
    timed_requests: int = 0  # requests that reported it
    prompt_tokens: int = 0  # prompt tokens the server processed (its `usage`), scoring included
    # Requests of several threads add up here.
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def count(self, seconds: float) -> None:
        with self._lock:
            self.requests += 1
            self.seconds += seconds

    def count_retry(self) -> None:
        with self._lock:
            self.retries += 1

    def add_server_time(self, data: Any) -> None:
        usage = data.get("usage") if isinstance(data, dict) else None
        metrics = data.get("metrics") if isinstance(data, dict) else None
        parts = ([metrics.get(k) for k in ("queue_time_ms", "time_to_first_token_ms", "generation_time_ms")]
                 if isinstance(metrics, dict) else [])
        with self._lock:
            if isinstance(usage, dict) and isinstance(usage.get("prompt_tokens"), int):
                self.prompt_tokens += usage["prompt_tokens"]
            if parts and all(isinstance(p, (int, float)) for p in parts):
                self.server_seconds += sum(parts) / 1000.0  # type: ignore[arg-type]
                self.timed_requests += 1

    def snapshot(self) -> dict[str, float]:
        return {"requests": self.requests, "retries": self.retries, "seconds": self.seconds,
                "server_seconds": self.server_seconds, "timed_requests": self.timed_requests,
                "prompt_tokens": self.prompt_tokens}


class ServerClient:
    """Connections to one server: a pool per thread that uses it (see the module's
    note), a cancel from any thread."""

    def __init__(self, spec: RemoteSpec, options: RemoteOptions, label: str = "model server",
                 needs: str = "WSD's base model needs a vLLM server (vllm serve MODEL)") -> None:
        self.spec = spec
        self.options = options
        self.label = label  # how errors name the server: "model server", "drafter's model server"
        self.needs = needs  # the hint for a server that lacks an endpoint WSD needs
        self._local = threading.local()  # this thread's pool and its sockets
        self._pools: weakref.WeakSet[httpx.Client] = weakref.WeakSet()  # every thread's, for close()
        self._pools_lock = threading.Lock()
        self._extensions = {"trace": self._trace}
        self.stats = RequestStats()

    @property
    def _http(self) -> httpx.Client:
        """This thread's connection pool, made on its first request."""
        pool = getattr(self._local, "http", None)
        if pool is None:
            headers = {"Authorization": f"Bearer {self.options.api_key}"} if self.options.api_key else {}
            timeout = httpx.Timeout(self.options.timeout_s,
                                    connect=min(CONNECT_TIMEOUT_S, self.options.timeout_s))
            pool = httpx.Client(headers=headers, follow_redirects=False, timeout=timeout)
            self._local.http = pool
            with self._pools_lock:
                self._pools.add(pool)
        return pool

    @property
    def _sockets(self) -> "weakref.WeakSet[socket.socket]":
        """The sockets of this thread's connections, learnt when each connects: a cancel
        shuts them down (the thread runs one answer at a time, so they are its own)."""
        sockets = getattr(self._local, "sockets", None)
        if sockets is None:
            sockets = self._local.sockets = weakref.WeakSet()
        return sockets

    def close(self) -> None:
        with self._pools_lock:
            pools = list(self._pools)
        for pool in pools:
            pool.close()

    def _trace(self, event: str, info: dict[str, Any]) -> None:
        # Called in the thread that sends the request.
        if event == "connection.connect_tcp.complete":
            stream = info.get("return_value")
            sock = stream.get_extra_info("socket") if stream is not None else None
            if sock is not None:
                self._sockets.add(sock)

    @contextlib.contextmanager
    def _watched(self, cancel: threading.Event | None) -> Iterator[None]:
        """While the block runs, a set `cancel` shuts this client's sockets down."""
        if cancel is None:
            yield
            return
        done = threading.Event()
        _CancelWatcher(cancel, self._sockets, done)
        try:
            yield
        finally:
            # Not joined: the watcher sees `done` at its next poll and ends; waiting for
            # that would add up to a poll interval to every request.
            done.set()

    # -- requests ------------------------------------------------------------------
    def url(self, path: str) -> str:
        """`/v1/...` paths go under the API URL, others (vLLM's /tokenize) under the root."""
        if path.startswith("/v1/"):
            return self.spec.api_url + path[len("/v1"):]
        return self.spec.root + path

    def get_json(self, path: str) -> Any:
        return self._request("GET", path, None, retry=True)

    def post_json(self, path: str, payload: dict[str, Any], *, retry: bool,
                  cancel: threading.Event | None = None) -> Any:
        """POST and return the JSON answer; `retry` only for requests safe to repeat.
        A set `cancel` closes the request at once and raises `RequestCancelled`."""
        return self._request("POST", path, payload, retry=retry, cancel=cancel)

    def _request(self, method: str, path: str, payload: dict[str, Any] | None, retry: bool,
                 cancel: threading.Event | None = None) -> Any:
        pauses = RETRY_PAUSES_S if retry else ()
        attempt = 0
        while True:
            start = time.perf_counter()
            try:
                response = self._send(method, path, payload, cancel)
            except httpx.TransportError as exc:
                self.stats.count(time.perf_counter() - start)
                if cancel is not None and cancel.is_set():
                    raise RequestCancelled() from None
                if attempt < len(pauses) and _transient(exc):
                    time.sleep(pauses[attempt])
                    attempt += 1
                    self.stats.count_retry()
                    continue
                raise self._transport_error(exc, path) from None
            self.stats.count(time.perf_counter() - start)
            if response.status_code in RETRY_STATUSES and attempt < len(pauses):
                time.sleep(pauses[attempt])
                attempt += 1
                self.stats.count_retry()
                continue
            if response.status_code >= 400:
                raise self.status_error(response.status_code, response.text, path)
            try:
                data = response.json()
                self.stats.add_server_time(data)
                return data
            except ValueError:
                raise RemoteError(f"{self.where} answered {path} with something that is not JSON",
                                  "is this the URL of an OpenAI-compatible server?") from None

    def _send(self, method: str, path: str, payload: dict[str, Any] | None,
              cancel: threading.Event | None) -> httpx.Response:
        """One request, read to the end; with `cancel`, a watcher can close it midway."""
        if cancel is not None and cancel.is_set():
            raise RequestCancelled()
        with self._watched(cancel):
            return self._http.request(method, self.url(path), json=payload, extensions=self._extensions)

    def stream_events(self, path: str, payload: dict[str, Any],
                      cancel: threading.Event | None) -> Iterator[dict[str, Any]]:
        """POST with `stream: true` and yield each server-sent JSON event. Raises
        RemoteError when the server answers with an error status, StreamLost when the
        connection cannot be made, breaks off or stays silent past the timeout; returns
        quietly when `cancel` is set."""
        start = time.perf_counter()
        try:
            with self._watched(cancel), \
                    self._http.stream("POST", self.url(path), json=payload, extensions=self._extensions) as response:
                if response.status_code >= 400:
                    raise self.status_error(response.status_code, response.read().decode(errors="replace"), path)
                yield from self._events(response, cancel)
        except httpx.TimeoutException:
            if cancel is not None and cancel.is_set():
                return
            raise StreamLost(f"{self.where} sent nothing for {self.options.timeout_s:g} s") from None
        except httpx.TransportError as exc:
            if cancel is not None and cancel.is_set():
                return  # our own shutdown of the socket
            raise StreamLost(f"connection to {self.where} lost ({_short(exc)})") from None
        finally:
            self.stats.count(time.perf_counter() - start)

    def _events(self, response: httpx.Response, cancel: threading.Event | None) -> Iterator[dict[str, Any]]:
        """The JSON events of a server-sent event stream, up to `[DONE]`."""
        try:
            for event in sse_json(response.iter_lines(), stop=lambda: cancel is not None and cancel.is_set()):
                if isinstance(event, dict) and "error" in event:
                    raise StreamLost(f"{self.where} reported an error mid-answer: {_message_of(event)}")
                self.stats.add_server_time(event)
                yield event
        except SseBroken:
            raise StreamLost(f"{self.where} sent a broken event") from None
        except SseUnfinished:
            raise StreamLost(f"{self.where} closed the connection mid-answer") from None

    # -- errors --------------------------------------------------------------------
    @property
    def where(self) -> str:
        return f"the {self.label} at {self.spec.api_url}"

    def _transport_error(self, exc: httpx.TransportError, path: str) -> TransportFailure:
        if isinstance(exc, httpx.ConnectTimeout):
            return TransportFailure(f"cannot reach {self.where}: no answer to connecting within "
                               f"{min(CONNECT_TIMEOUT_S, self.options.timeout_s):g} s",
                               "check the host name, the port and any firewall in between")
        if isinstance(exc, httpx.ConnectError):
            return TransportFailure(f"cannot reach {self.where} ({_short(exc)})",
                               "is the server running, and are the host and port right?")
        if isinstance(exc, httpx.TimeoutException):
            return TransportFailure(f"{self.where} did not answer {path} within {self.options.timeout_s:g} s",
                               "the server may be overloaded; raise --remote-timeout to wait longer")
        return TransportFailure(f"connection to {self.where} failed during {path} ({_short(exc)})",
                           "is the server still running? see its log")

    def status_error(self, status: int, body: str, path: str) -> RemoteError:
        message = _message_of(_json_or_text(body))
        if status in (401, 403):
            return RemoteRefusal(f"{self.where} refused the request (HTTP {status}: {message})",
                               f"give its API key with --api-key or {API_KEY_ENV}")
        if status == 404:
            return RemoteRefusal(f"{self.where} has no {path} (HTTP 404: {message})", self.needs)
        if status >= 500:
            return RemoteError(f"{self.where} failed on {path} (HTTP {status}: {message})",
                               "see the server's log")
        if status in (400, 422):
            return RequestRejected(f"{self.where} rejected {path} (HTTP {status}: {message})",
                                   said=f"HTTP {status}: {message}")
        return RemoteError(f"{self.where} rejected {path} (HTTP {status}: {message})")


class RequestRejected(RemoteError):
    """The server found the request itself invalid (HTTP 400 / 422): a field it does not
    know, a conversation its chat template refuses. `said` is its status and message."""

    def __init__(self, message: str, said: str) -> None:
        super().__init__(message)
        self.said = said


class SseBroken(ValueError):
    """A server-sent event whose data is not JSON."""


class SseUnfinished(Exception):
    """A server-sent event stream that ended before its `[DONE]`."""


def sse_json(lines: Iterable[str], stop: Callable[[], bool] = lambda: False) -> Iterator[Any]:
    """The JSON data of each server-sent event in OpenAI's framing (`data: {...}` lines,
    then `data: [DONE]`); other lines (comments, pings) are skipped. Returns quietly
    when `stop()` is true before a line; raises SseBroken for data that is not JSON and
    SseUnfinished when the lines end before `[DONE]`. The one parser of such streams
    (model servers' answers here, `wsd serve`'s in the load benchmark)."""
    for line in lines:
        if stop():
            return
        if not line.startswith("data:"):
            continue
        data = line[len("data:"):].strip()
        if data == "[DONE]":
            return
        try:
            event = json.loads(data)
        except ValueError:
            raise SseBroken(data[:80]) from None
        yield event
    if not stop():
        raise SseUnfinished()


class _CancelWatcher:
    """Shuts the client's sockets down when `cancel` is set, so a blocked read (or
    write) returns at once; ends by itself when the request is done."""

    POLL_S = 0.05

    def __init__(self, cancel: threading.Event, sockets: "weakref.WeakSet[socket.socket]",
                 done: threading.Event) -> None:
        self._cancel, self._sockets, self._done = cancel, sockets, done
        self._thread = threading.Thread(target=self._run, name="wsd-cancel-watch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._done.is_set():
            if self._cancel.wait(self.POLL_S) and not self._done.is_set():
                for sock in list(self._sockets):
                    try:
                        sock.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass  # already closed
                return


def _transient(exc: httpx.TransportError) -> bool:
    """Failures where the same request may well succeed a moment later."""
    return isinstance(exc, (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError,
                            httpx.WriteError, httpx.PoolTimeout))


def _json_or_text(body: str) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return body


def _message_of(data: Any) -> str:
    """The server's error message in one short line (OpenAI and vLLM error shapes)."""
    message: Any = data
    if isinstance(data, dict):
        inner = data.get("error", data)
        message = inner.get("message", inner) if isinstance(inner, dict) else inner
        if message is data and "detail" in data:
            message = data["detail"]
    text = " ".join(str(message).split())
    return text[:300] + ("…" if len(text) > 300 else "")


def _short(exc: Exception) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:200]
