"""The response: `chat.completion.chunk` events (SSE) or one `chat.completion`.

Stream, in order:
1. a chunk with `delta.role` = "assistant";
2. text chunks, `delta.content` plus `delta.wsd.model` ("drafter" | "base");
3. once, between the drafter's text and the base model's: a chunk with an empty delta
   and `wsd.switch` (index, window score, kept and discarded draft text, fired);
   nudging instead: before each turn a chunk with an empty delta and `wsd.handover`
   (index, to_model, reason, base_top_prob, base_token);
4. the last chunk: `finish_reason` ("stop" | "length") and `wsd` with the spans,
   counts, timings, the switch sentence and, when asked, the full trace;
5. with `stream_options.include_usage`, a chunk with `usage` and no choices;
6. `data: [DONE]`.
An error after the stream began is one `data: {"error": ...}` event, then `[DONE]`.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, AsyncIterator

import anyio

from ..answer import describe_handovers, describe_switch
from ..modes import BASE, DRAFTER, mode_named
from ..trace import Trace
from .channel import Channel
from .public import public_settings, public_trace, scrub
from .relay import HandoverMark, SwitchMark, TextDelta, TokenLogprob
from .request import ServeRequest
from .schemas import logprob_entry, usage_body
from .worker import Done, Failed, Job

FINISH_REASONS = {"eos": "stop", "stop_string": "stop", "cancelled": "stop",
                  "max_tokens": "length", "context_full": "length",
                  "max_rounds": "length", "repetition": "stop"}  # the last two: nudging


@dataclass
class Completion:
    """What every chunk of one answer shares."""

    model: str
    request: ServeRequest
    id: str = field(default_factory=lambda: "chatcmpl-" + uuid.uuid4().hex[:24])
    created: int = field(default_factory=lambda: int(time.time()))
    system_fingerprint: str | None = None

    def chunk(self, delta: dict[str, Any], finish_reason: str | None = None,
              logprobs: tuple[TokenLogprob, ...] | None = None, **extra: Any) -> dict[str, Any]:
        choice: dict[str, Any] = {"index": 0, "delta": delta, "finish_reason": finish_reason,
                                  "logprobs": self._logprobs(logprobs)}
        return {"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                "model": self.model, "system_fingerprint": self.system_fingerprint,
                "choices": [choice], **extra}

    def usage_chunk(self, trace: Trace) -> dict[str, Any]:
        return {"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                "model": self.model, "system_fingerprint": self.system_fingerprint,
                "choices": [], "usage": usage(trace)}

    def completion(self, done: Done, logprobs: list[TokenLogprob]) -> dict[str, Any]:
        trace = done.trace
        choice = {"index": 0, "message": {"role": "assistant", "content": trace.answer},
                  "finish_reason": finish_reason(done), "logprobs": self._logprobs(tuple(logprobs))}
        return {"id": self.id, "object": "chat.completion", "created": self.created,
                "model": self.model, "system_fingerprint": self.system_fingerprint,
                "choices": [choice], "usage": usage(trace),
                "wsd": extras(done, self.request)}

    def _logprobs(self, entries: tuple[TokenLogprob, ...] | None) -> dict[str, Any] | None:
        if not self.request.logprobs:
            return None
        return {"content": [logprob_entry(e.token, e.logprob) for e in entries or ()]}


def finish_reason(done: Done) -> str:
    """OpenAI's word for why the answer ended; an answer stopped by the server's deadline
    is cut by a limit, as one that reached `max_tokens` ("length")."""
    if done.timed_out:
        return "length"
    return FINISH_REASONS.get(done.trace.stop_reason, "stop")


def usage(trace: Trace) -> dict[str, int]:
    """Counted in the tokens of the model that ends the answer: the base model's (the
    drafter's in `draft` mode). `prompt_tokens` is the base model's prompt (the drafter's
    own prompt is in `wsd.counts.prompt_tokens_drafter`); `completion_tokens` the
    answer's tokens: kept draft tokens (as the base model tokenized them) plus the base
    model's. So prompt + completion is the base model's context use."""
    c = trace.counts
    alone = mode_named(trace.mode).alone
    if alone == DRAFTER:
        return usage_body(c.get("prompt_tokens_drafter", 0), c.get("draft_tokens", 0))
    if alone == BASE:
        completion = c.get("base_tokens", 0)
    else:  # before the switch was found, the draft tokens scored so far
        completion = c.get("kept_draft_tokens", len(trace.draft_tokens)) + c.get("base_tokens", 0)
    return usage_body(c.get("prompt_tokens_base", 0), completion)


def extras(done: Done, request: ServeRequest) -> dict[str, Any]:
    """The `wsd` object of the last chunk and of a non-stream response (without the
    server's system prompt or model paths: `public.py`)."""
    trace = done.trace
    switch = SwitchMark.from_trace(trace).to_dict() if trace.switch_index is not None else None
    if switch is not None:
        switch["description"] = describe_switch(trace)
    out: dict[str, Any] = {
        "mode": trace.mode, "spans": trace.spans, "switch": switch,
        "stop_reason": trace.stop_reason, "client_stop": done.stopped_by_client,
        "stop_note": scrub(trace.stop_note, trace.models) or None,
        "counts": trace.counts, "timings": trace.timings,
        "settings": public_settings(trace.settings, request.server_system),
        "server_system_prompt": request.server_system, "chat_id": done.chat_id,
    }
    if mode_named(trace.mode).hands_over:  # the spans carry each turn's hand-over record
        out["handovers"] = {"count": trace.counts.get("handovers", 0),
                            "description": describe_handovers(trace)}
    if request.want_trace:
        out["trace"] = public_trace(trace, request.server_system)
    return out


def switch_chunk_extra(mark: SwitchMark) -> dict[str, Any]:
    return {"wsd": {"switch": mark.to_dict()}}


def error_event(error: Any) -> str:
    return json.dumps(error.body(), ensure_ascii=False)


async def sse_events(completion: Completion, job: Job, channel: Channel,
                     shutdown: anyio.Event | None = None) -> AsyncIterator[dict[str, str]]:
    """The SSE stream of one answer. When the client leaves, the server cancels this
    generator; `finally` then stops the engine at its next step. When the server shuts
    down (`shutdown` is set), the answer is stopped and the stream ends normally."""
    request = completion.request

    async def stop_on_shutdown() -> None:
        if shutdown is not None:
            await shutdown.wait()
            job.cancel.set()

    watcher = asyncio.create_task(stop_on_shutdown())
    try:
        yield _data(completion.chunk({"role": "assistant", "content": ""}))
        while True:
            item = await channel.get()
            if isinstance(item, TextDelta):
                delta = {"content": item.text, "wsd": {"model": item.model}}
                yield _data(completion.chunk(delta, logprobs=item.logprobs))
            elif isinstance(item, SwitchMark):
                yield _data(completion.chunk({}, **switch_chunk_extra(item)))
            elif isinstance(item, HandoverMark):
                yield _data(completion.chunk({}, wsd={"handover": item.to_dict()}))
            elif isinstance(item, Done):
                yield _data(completion.chunk({}, finish_reason(item),
                                             wsd=extras(item, request)))
                if request.include_usage:
                    yield _data(completion.usage_chunk(item.trace))
                yield {"data": "[DONE]"}
                return
            elif isinstance(item, Failed):
                yield {"data": error_event(item.error)}
                yield {"data": "[DONE]"}
                return
    finally:
        watcher.cancel()
        job.cancel.set()  # a no-op once the answer is done


def _data(payload: dict[str, Any]) -> dict[str, str]:
    return {"data": json.dumps(payload, ensure_ascii=False)}


async def collect(channel: Channel) -> tuple[Done | Failed, list[TokenLogprob]]:
    """A non-stream answer: wait for the end, gathering the log-probabilities."""
    logprobs: list[TokenLogprob] = []
    while True:
        item = await channel.get()
        if isinstance(item, TextDelta):
            logprobs.extend(item.logprobs)
        elif isinstance(item, (Done, Failed)):
            return item, logprobs
