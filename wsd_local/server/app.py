"""The FastAPI application: `/v1/chat/completions`, `/v1/models`, `/health`.

`create_app(engine, config)` wires the parts: the model worker (started and stopped
with the application; `config.concurrency` threads answer at once), the guard against web pages (`guard.py`), CORS for the origins
allowed, the API key, the OpenAI-shaped errors. Handlers never call the engine: they
queue a job and wait for its items on a `Channel`. The body is read up to its limit and
parsed in a thread, so no request can hold the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Callable

import anyio
from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from sse_starlette.sse import EventSourceResponse
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import ClientDisconnect

from .. import __version__
from ..settings import DecodingSettings
from ..store import Store
from .auth import RequireApiKey
from .channel import Channel
from .errors import ApiError, CatchBugs, install_error_handlers
from .guard import ANY, AccessPolicy, BrowserGuard
from .limits import RequestLimits
from .public import public_defaults
from .request import ServeRequest, body_too_large, parse_request, read_body
from .schemas import ChatCompletionRequest
from .storage import ServedAnswers
from .streaming import Completion, collect, sse_events
from .worker import Failed, Job, ModelWorker, QueueFull

#: Seconds between SSE comment lines that keep idle proxies from closing a stream.
SSE_PING_SECONDS = 15
#: Seconds a stream gets to end its answer when the server stops (less than uvicorn's
#: graceful shutdown, see runner.py).
SHUTDOWN_GRACE_SECONDS = 2


@dataclass
class ServerConfig:
    model_name: str
    defaults: DecodingSettings
    max_queue: int = 16
    concurrency: int = 1  # answers at once (engine_pool.answer_slots)
    api_key: str | None = None
    store: Store | None = None  # None: answers are not recorded (--no-store)
    limits: RequestLimits = field(default_factory=RequestLimits)
    access: AccessPolicy = field(default_factory=AccessPolicy)


def create_app(engine: Any, config: ServerConfig) -> FastAPI:
    worker = ModelWorker(engine, ServedAnswers(config.store) if config.store else None,
                         config.max_queue, config.limits.deadline_s, config.concurrency)
    started_at = int(time.time())
    fingerprint = f"wsd-local-{__version__}-{getattr(engine, 'backend_name', 'unknown')}"

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        worker.start()
        try:
            yield
        finally:
            await asyncio.to_thread(worker.stop)

    app = FastAPI(
        title="wsd-local", version=__version__, lifespan=lifespan,
        description="Weak-to-strong decoding behind an OpenAI-compatible API: a small aligned "
                    "drafter starts each answer, a base model takes over at the switch point. "
                    "Send WSD settings in the request's `wsd` object; WSD information comes back "
                    "in `wsd` fields that OpenAI clients ignore (see docs/SERVER.md).")
    app.state.worker = worker
    install_error_handlers(app)
    # Outermost last: CatchBugs, the guard, CORS (answers preflights without the key),
    # the API key, the routes.
    if config.api_key:
        app.add_middleware(RequireApiKey, api_key=config.api_key)
    origins = config.access.allowed_origins
    if origins:
        app.add_middleware(CORSMiddleware, allow_origins=["*"] if ANY in origins else sorted(origins),
                           allow_methods=["GET", "POST"], allow_headers=["*"],
                           expose_headers=["Retry-After"], max_age=600)
    app.add_middleware(BrowserGuard, policy=config.access)
    app.add_middleware(CatchBugs)

    def model_card() -> dict[str, Any]:
        identities = getattr(engine, "identities", {})
        return {"id": config.model_name, "object": "model", "created": started_at,
                "owned_by": "wsd-local",
                "wsd": {"models": {role: {"name": m.name, "quantization": m.quantization,
                                          "architecture": m.architecture}
                                   for role, m in identities.items()},
                        "defaults": public_defaults(config.defaults),
                        "server_system_prompt": config.defaults.system is not None}}

    @app.get("/health", summary="Liveness and queue state (no API key needed)")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "model": config.model_name, "busy": worker.busy,
                "running": worker.running, "max_concurrency": worker.concurrency,
                "waiting": worker.waiting, "max_queue": worker.max_queue, "served": worker.served,
                "model_server_requests": worker.server_requests()}

    @app.get("/v1/models", summary="The served model (the drafter + base pair)")
    async def list_models() -> dict[str, Any]:
        return {"object": "list", "data": [model_card()]}

    @app.get("/v1/models/{model_id:path}", summary="One model")
    async def get_model(model_id: str) -> dict[str, Any]:
        if model_id != config.model_name:
            raise ApiError(404, f"model {model_id!r} is not served here; this server serves "
                                f"{config.model_name!r}", "model", "model_not_found")
        return model_card()

    @app.post("/v1/chat/completions", summary="Answer a conversation with weak-to-strong decoding",
              response_model=None, openapi_extra=_REQUEST_BODY)
    async def chat_completions(request: Request) -> Any:
        # The body is read here, not by FastAPI, so that every problem gets OpenAI's
        # error shape; it is parsed in a thread (a large or deep body takes time).
        raw = await _read_limited(request, config.limits)
        plan = await anyio.to_thread.run_sync(_parse, raw, config)
        channel = Channel()
        job = Job(plan, channel.post)
        try:
            worker.submit(job)
        except QueueFull as full:
            raise ApiError(503, f"the server is busy: {worker.max_queue} requests are already "
                                f"waiting; retry in {full.retry_after} s", type="server_error",
                           code="queue_full", headers={"Retry-After": str(full.retry_after)}) from None
        watcher = asyncio.create_task(_withdraw_on_disconnect(request, lambda: worker.withdraw(job)))
        try:
            first = await channel.get()  # Started, or Failed (e.g. the prompt is too long)
            if isinstance(first, Failed):
                raise first.error
            completion = Completion(config.model_name, plan, system_fingerprint=fingerprint)
            if plan.stream:
                watcher.cancel()  # from here the SSE response watches the connection
                # On shutdown the stream ends the answer itself (stopped, with its last
                # chunk and [DONE]) within the grace period, instead of being cut off.
                shutdown = anyio.Event()
                return EventSourceResponse(sse_events(completion, job, channel, shutdown), sep="\n",
                                           ping=SSE_PING_SECONDS, shutdown_event=shutdown,
                                           shutdown_grace_period=SHUTDOWN_GRACE_SECONDS)
            result, logprobs = await collect(channel)
            if isinstance(result, Failed):
                raise result.error
            return JSONResponse(completion.completion(result, logprobs))
        except BaseException:
            worker.withdraw(job)
            raise
        finally:
            watcher.cancel()

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = get_openapi(title=app.title, version=app.version, description=app.description,
                               routes=app.routes)
            spec.setdefault("components", {}).setdefault("schemas", {}).update(_REQUEST_SCHEMAS)
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def _request_schemas() -> dict[str, Any]:
    schema = ChatCompletionRequest.model_json_schema(ref_template="#/components/schemas/{model}")
    return {**schema.pop("$defs", {}), "ChatCompletionRequest": schema}


_REQUEST_SCHEMAS = _request_schemas()
_REQUEST_BODY = {"requestBody": {"required": True, "content": {"application/json": {
    "schema": {"$ref": "#/components/schemas/ChatCompletionRequest"}}}}}


def _parse(raw: bytes, config: ServerConfig) -> ServeRequest:
    return parse_request(read_body(raw, config.limits), config.defaults, config.model_name, config.limits)


async def _read_limited(request: Request, limits: RequestLimits) -> bytes:
    """The body, refused (413) as soon as it is known to exceed the limit: from its
    declared length before reading, or while reading a chunked one."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limits.max_body_bytes:
        raise body_too_large(limits)
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limits.max_body_bytes:
                raise body_too_large(limits)
            chunks.append(chunk)
    except ClientDisconnect:  # left while sending: nobody to answer, and not a bug
        raise ApiError(499, "the client closed the request", code="client_closed") from None
    return b"".join(chunks)


async def _withdraw_on_disconnect(request: Request, withdraw: Callable[[], None]) -> None:
    """Withdraw the request when the client closes the connection (the body is already
    read, so the next ASGI message is the disconnect): it stops if it runs, and leaves
    the queue at once if it waits."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            withdraw()
            return
