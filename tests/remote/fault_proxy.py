"""A TCP proxy in front of the real vLLM that injects network faults on demand.

Not a fake server: every byte that passes comes from vLLM. The tests switch it between

- `pass_all()`: forward everything;
- `cut_streams_after(n)`: close a streamed response (`text/event-stream`) after its
  n-th server-sent event, as a dropped Wi-Fi or a restarted server would;
- `refuse_all()`: close every open connection and every new one at once;
- `drop_requests(n)`: close the connection instead of forwarding the next n requests
  (a request lost in transit), then pass again;
- `without_logprobs()`: rename the `logprobs` field of requests (same length, so the
  request stays valid), so vLLM answers completions without log-probabilities, as a
  server that cannot return them does.

It counts requests by path so tests can see what the client sent, and streamed
responses the client closed before their end (`closed_by_client`).
"""

from __future__ import annotations

import socket
import threading
from collections import Counter


class FaultProxy:
    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self.port = int(self._listener.getsockname()[1])
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._mode = "pass"
        self._cut_after = 0
        self._drop = 0
        self.paths: Counter[str] = Counter()
        self.cut_streams = 0
        self.closed_by_client = 0  # streamed responses the client left before `[DONE]`
        self._strip_logprobs = False
        self._closed = False
        threading.Thread(target=self._accept, daemon=True, name="fault-proxy").start()

    def url(self, path: str = "/v1") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    # -- modes ---------------------------------------------------------------------
    def pass_all(self) -> None:
        with self._lock:
            self._mode = "pass"

    def cut_streams_after(self, events: int) -> None:
        with self._lock:
            self._mode, self._cut_after = "cut", events

    def drop_requests(self, count: int) -> None:
        with self._lock:
            self._mode, self._drop = "pass", count

    def without_logprobs(self, on: bool = True) -> None:
        with self._lock:
            self._strip_logprobs = on

    def refuse_all(self) -> None:
        with self._lock:
            self._mode = "refuse"
            sockets = list(self._open)
        for sock in sockets:
            _close(sock)

    def close(self) -> None:
        self._closed = True
        self.refuse_all()
        _close(self._listener)

    # -- forwarding ----------------------------------------------------------------
    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                refuse = self._mode == "refuse"
            if refuse:
                _close(client)
                continue
            try:
                server = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                _close(client)
                continue
            with self._lock:
                self._open.update((client, server))
            state = {"streaming": False, "done": False}  # the connection's current response
            threading.Thread(target=self._pump, args=(client, server, False, state), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, True, state), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, from_server: bool, state: dict) -> None:
        events = 0
        streaming = False
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if not from_server:
                    if self._count_paths(data) and self._take_drop():
                        break
                    with self._lock:
                        if self._strip_logprobs:
                            data = data.replace(b'"logprobs":', b'"logprobz":')
                else:
                    if b"text/event-stream" in data:
                        streaming, events = True, 0
                        state.update(streaming=True, done=False)
                    if streaming and b"data: [DONE]" in data:
                        state["done"] = True
                    if streaming:
                        events += data.count(b"data: ")
                        with self._lock:
                            cut = self._mode == "cut" and events >= self._cut_after
                        if cut:
                            # Forward up to the n-th event, then drop the connection.
                            keep = _prefix_with_events(data, data.count(b"data: ") - (events - self._cut_after))
                            sink.sendall(keep)
                            self.cut_streams += 1
                            state["by_proxy"] = True
                            break
                sink.sendall(data)
        except OSError:
            pass  # a reset: a client that closes with data unread resets the connection
        finally:
            if not from_server:  # the client's side ended: did it leave a stream early?
                with self._lock:
                    if (state["streaming"] and not state["done"] and not state.get("by_proxy")
                            and self._mode != "refuse"):
                        self.closed_by_client += 1
                        state["streaming"] = False
            for sock in (source, sink):
                _close(sock)
                with self._lock:
                    self._open.discard(sock)

    def _count_paths(self, data: bytes) -> bool:
        """Count a request that starts in `data`; True if one does."""
        line = data.split(b"\r\n", 1)[0].decode("latin-1", errors="replace").split()
        if len(line) >= 2 and line[0] in ("GET", "POST"):
            with self._lock:
                self.paths[line[1]] += 1
            return True
        return False

    def _take_drop(self) -> bool:
        with self._lock:
            if self._drop > 0:
                self._drop -= 1
                return True
            return False


def _prefix_with_events(data: bytes, n: int) -> bytes:
    """`data` up to the end of its n-th `data: ` event."""
    at = 0
    for _ in range(n):
        found = data.find(b"data: ", at)
        if found < 0:
            return data
        end = data.find(b"\n\n", found)
        at = len(data) if end < 0 else end + 2
    return data[:at]


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass
