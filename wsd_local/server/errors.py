"""Errors in OpenAI's shape: `{"error": {"message", "type", "param", "code"}}`.

Every failure a client can cause gets this body with the right 4xx status; a bug in
the server is a 500 with a one-line message, and its traceback goes to the server's
log file (never to the client or the terminal).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import PromptError, UsageError, WsdError

log = logging.getLogger("wsd_local.server")

INVALID_REQUEST = "invalid_request_error"
SERVER_ERROR = "server_error"
#: An error message is one line of at most this many characters: it may quote what the
#: client sent (a 4 MB string, a 400-digit number), and that is cut in the middle.
MAX_MESSAGE_CHARS = 300


@dataclass
class ApiError(Exception):
    """A request the server cannot answer, as the client will read it."""

    status: int
    message: str
    param: str | None = None
    code: str | None = None
    type: str = INVALID_REQUEST
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Both may quote the request: one short line of valid Unicode (a lone surrogate
        # from the request would make the response itself unencodable).
        self.message = short_line(_encodable(self.message))
        self.param = None if self.param is None else short_line(_encodable(self.param))
        super().__init__(self.message)

    def body(self) -> dict[str, Any]:
        return error_body(self.message, self.type, self.param, self.code)

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers or None)


def error_body(message: str, type: str = INVALID_REQUEST, param: str | None = None,
               code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def _encodable(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def short_line(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """`text` in one line of at most `limit` characters (the middle cut, so that the
    end, which says what to do, stays)."""
    text = " ".join(text.splitlines())
    if len(text) <= limit:
        return text
    tail = limit // 3
    return f"{text[:limit - tail - 3]} … {text[-tail:]}"


def from_wsd_error(exc: WsdError, param: str | None = None) -> ApiError:
    """An engine error in OpenAI's terms: what the request got wrong (a prompt over the
    context, a bad setting) is a 400; what failed on the server's side (the models, the
    machine) a 500 that says so in one line."""
    if isinstance(exc, PromptError) and "context" in exc.message:
        return ApiError(400, exc.one_line(), param or "messages", "context_length_exceeded")
    if isinstance(exc, UsageError):
        return ApiError(400, exc.one_line(), param)
    return ApiError(500, exc.one_line(), type=SERVER_ERROR, code="server_failure")


def internal_error(what: str = "the server failed while answering") -> ApiError:
    return ApiError(500, f"{what}; the traceback is in the server log", type=SERVER_ERROR,
                    code="internal_error")


# -- handlers ------------------------------------------------------------------------------
def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return exc.response()


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return validation_error(exc.errors()).response()


def validation_error(errors: Any) -> ApiError:
    """The first problem pydantic found in the body, with the field it concerns."""
    problems = list(errors) or [{"msg": "invalid request", "loc": ()}]
    first = problems[0]
    if first.get("type") == "json_invalid":
        detail = (first.get("ctx") or {}).get("error", "")
        return ApiError(400, f"the request body is not valid JSON{': ' + detail if detail else ''}",
                        code="invalid_json")
    loc = [str(p) for p in first.get("loc", ()) if p != "body"]
    param = _param_path(loc)
    if first.get("type") == "missing":
        message = f"{param} is required" if param else "the request needs a JSON body"
    else:
        message = f"{param}: {first.get('msg', 'invalid value')}" if param else str(first.get("msg"))
    return ApiError(400, message, param or None)


def _param_path(loc: list[str]) -> str:
    """("messages", "0", "role") -> "messages[0].role" (how OpenAI names fields)."""
    out = ""
    for part in loc:
        if part.isdigit():
            out += f"[{part}]"
        elif part in ("str", "list[...]") or "[" in part:  # pydantic's union branch labels
            continue
        else:
            out += f".{part}" if out else part
    return out


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        message = f"no route {request.method} {request.url.path} (see /docs for the API)"
        code = "not_found"
    elif exc.status_code == 405:
        message = f"{request.method} is not allowed on {request.url.path}"
        code = "method_not_allowed"
    else:
        message, code = str(exc.detail), None
    return ApiError(exc.status_code, message, code=code, headers=dict(exc.headers or {})).response()


class CatchBugs:
    """ASGI middleware: an exception no handler took is a bug. The client gets a 500
    with one line (if nothing was sent yet), the traceback goes to the log file."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:  # noqa: BLE001 - this is the last line of defence
            log.error("bug while serving %s %s: %s", scope.get("method"), scope.get("path"),
                      _one_line(exc), exc_info=True)
            if started:
                return  # the response is under way: the connection just ends
            body = json.dumps(internal_error().body()).encode()
            await send({"type": "http.response.start", "status": 500,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:300]
