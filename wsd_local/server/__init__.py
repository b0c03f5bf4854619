"""`wsd serve`: weak-to-strong decoding behind an OpenAI-compatible HTTP API.

- `app.create_app` builds the FastAPI application (routes, auth, error handlers);
  `runner` serves it with uvicorn on a socket bound beforehand; `logs` sets up the
  one-line terminal log and the log file.
- `schemas` holds the request's shape; `request.parse_request` turns it into a
  conversation, decoding settings and response options (every setting validated from
  the same declarations as the CLI flags).
- `worker.ModelWorker` owns the engine in one thread; requests wait in a bounded queue;
  `channel.Channel` carries each request's items from that thread to the event loop.
- `relay.AnswerRelay` turns the decoder's events into what the client is sent: text
  as the base model confirms it, the switch, the end, the client's stop strings.
- `streaming` formats the chunks (SSE) and the non-stream response; `storage` records
  every answer in the chat store; `errors` and `auth` speak OpenAI's error format.
- `guard` keeps web pages out (Host, Origin, Content-Type); `limits` bounds what one
  request may ask (size, nesting, counts, tokens, time); `public` keeps the server's
  model paths and system prompt out of what clients see (docs/SECURITY.md).

The server's dependencies (FastAPI, uvicorn, sse-starlette) are the optional extra
`wsd-local[server]`; `missing_dependency()` says which one is absent.
"""

from __future__ import annotations

import importlib

#: Import names of the server extra's packages.
SERVER_PACKAGES = ("fastapi", "uvicorn", "sse_starlette")
INSTALL_HINT = "pip install 'wsd-local[server]'"


def missing_dependency() -> str | None:
    """The first package of the server extra that cannot be imported, or None."""
    for name in SERVER_PACKAGES:
        try:
            importlib.import_module(name)
        except ImportError:
            return name
    return None
