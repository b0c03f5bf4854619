"""Run the application with uvicorn on a socket bound beforehand.

Binding first lets `wsd serve` say in one line that a port is taken (before loading
models), and `--port 0` pick a free port and print it: the ready line carries the
real address once the server accepts connections.
"""

from __future__ import annotations

import asyncio
import signal
import socket
from typing import Any, Callable

from ..errors import WsdError

#: Seconds open streams get to finish when the server stops; then they are cancelled
#: (their answers are stored as stopped).
GRACEFUL_SHUTDOWN_SECONDS = 3


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise WsdError(f"cannot listen on {host}:{port}: {exc.strerror or exc}",
                       "pick another --port (0 picks a free one), or stop the program using it") from None
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def serve(app: Any, sock: socket.socket, on_ready: Callable[[str], None]) -> None:
    """Serve until Ctrl-C or SIGTERM; `on_ready(url)` once connections are accepted."""
    import uvicorn

    config = uvicorn.Config(app, log_config=None, lifespan="on",
                            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS)
    server = uvicorn.Server(config)

    async def main() -> None:
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started and not task.done():
            await asyncio.sleep(0.05)
        if server.started:
            on_ready(url_of(sock))
        await task

    # uvicorn stops gracefully on SIGINT and SIGTERM, then raises the signal again: let
    # SIGTERM end as Ctrl-C does (a clean exit) instead of killing the process there.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        asyncio.run(main())
    finally:
        signal.signal(signal.SIGTERM, previous)
    if not server.started:
        raise WsdError("the server could not start", "see the lines above and the server log")
