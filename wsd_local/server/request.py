"""One chat-completions request, read: the conversation, the decoding settings, and how
to answer (stream, stop strings, log-probabilities, trace).

Settings come in three layers, later ones winning: the server's defaults (`wsd serve`
flags), the OpenAI fields (`max_tokens` / `max_completion_tokens`, `temperature`,
`top_p`, `seed`), then the request's `wsd` object. Every value is checked against the
setting's declaration in `config.py`, and an error names the field as the client sent
it (`temperature`, `wsd.threshold`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable

from pydantic import ValidationError

from ..config import SETTING_NAMES, SETTINGS, SETTINGS_BY_NAME, DecodingSettings, SettingSpec
from ..errors import ConfigError, WsdError
from ..messages import Message, normalize
from .errors import ApiError, from_wsd_error, validation_error
from .schemas import WSD_OPTIONS_SCHEMA, ChatCompletionRequest

#: OpenAI fields that are decoding settings: request field -> setting name.
OPENAI_SETTINGS = (("max_completion_tokens", "max_tokens"), ("max_tokens", "max_tokens"),
                   ("temperature", "temperature"), ("top_p", "top_p"), ("seed", "seed"))

#: OpenAI roles and the role the models see (`developer` is the newer name of `system`).
ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}

MAX_STOP_STRINGS = 16


def _text_only(field: str) -> Callable[[Any], str | None]:
    return lambda value: None if value == [] else f"{field} are not supported: WSD answers in text only"


def _no_tool_choice(field: str) -> Callable[[Any], str | None]:
    return lambda value: None if value in ("none", "auto") else f"{field} is not supported: WSD answers in text only"


def _zero_only(field: str) -> Callable[[Any], str | None]:
    return lambda value: None if value == 0 else f"{field} is not supported (use temperature, top_p and seed)"


#: OpenAI fields this server cannot honour: why a value is refused, or None when it is
#: harmless (e.g. a zero penalty). Answering while ignoring it would be wrong.
UNSUPPORTED_FIELDS: dict[str, Callable[[Any], str | None]] = {
    "tools": _text_only("tools"), "functions": _text_only("functions"),
    "tool_choice": _no_tool_choice("tool_choice"), "function_call": _no_tool_choice("function_call"),
    "response_format": lambda value: None if (value.get("type") if isinstance(value, dict) else value) == "text"
    else "response_format other than text is not supported",
    "frequency_penalty": _zero_only("frequency_penalty"), "presence_penalty": _zero_only("presence_penalty"),
    "logit_bias": lambda value: None if not value else "logit_bias is not supported",
    "modalities": lambda value: None if value == ["text"] else "only the text modality is supported",
    "audio": lambda value: "audio is not supported",
    "prediction": lambda value: "prediction is not supported",
}


@dataclass(frozen=True)
class ServeRequest:
    messages: list[Message]  # normalized: optional system first, ends with a user turn
    settings: DecodingSettings  # `system` is the conversation's system prompt (or None)
    stream: bool = False
    include_usage: bool = False
    stops: tuple[str, ...] = ()
    logprobs: bool = False
    want_trace: bool = False


def read_body(raw: bytes) -> ChatCompletionRequest:
    """The body as JSON, whatever the Content-Type says (`curl -d` sends a form type)."""
    if not raw.strip():
        raise ApiError(400, "the request needs a JSON body", code="invalid_json")
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise ApiError(400, f"the request body is not valid JSON: {exc}", code="invalid_json") from None
    if not isinstance(data, dict):
        raise ApiError(400, "the request body must be a JSON object", code="invalid_json")
    try:
        return ChatCompletionRequest.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc.errors()) from None


def parse_request(body: ChatCompletionRequest, defaults: DecodingSettings,
                  model_name: str) -> ServeRequest:
    """The request as the worker runs it; ApiError (4xx) for anything wrong."""
    if body.model is not None and body.model != model_name:
        raise ApiError(404, f"model {body.model!r} is not served here; this server serves "
                            f"{model_name!r} (see GET /v1/models)", "model", "model_not_found")
    extra = body.model_extra or {}
    for field, refusal in UNSUPPORTED_FIELDS.items():
        reason = None if extra.get(field) is None else refusal(extra[field])
        if reason:
            raise ApiError(400, reason, field, "unsupported_parameter")
    if body.n not in (None, 1):
        raise ApiError(400, "n must be 1: one answer per request", "n", "unsupported_parameter")
    if body.top_logprobs:
        raise ApiError(400, "top_logprobs is not supported: the answer's own tokens come with "
                            "their log-probability (logprobs: true), alternatives do not",
                       "top_logprobs", "unsupported_parameter")

    wsd = dict(body.wsd or {})
    options = {key: wsd.pop(key) for key in list(wsd) if key in WSD_OPTIONS_SCHEMA}
    want_trace = options.get("trace", False)
    if not isinstance(want_trace, bool):
        raise ApiError(400, f"wsd.trace must be true or false, got {want_trace!r}", "wsd.trace")

    changes: dict[str, Any] = {}
    for field, name in OPENAI_SETTINGS:
        value = getattr(body, field)
        if value is not None and name not in changes:
            changes[name] = _checked(SETTINGS_BY_NAME[name], value, field)
    for key, value in wsd.items():
        name = SETTING_NAMES.get(key)
        if name is None:
            raise ApiError(400, f"unknown setting wsd.{key} (known: "
                                f"{', '.join([s.name for s in SETTINGS] + list(WSD_OPTIONS_SCHEMA))})",
                           f"wsd.{key}", "unknown_setting")
        changes[name] = _checked(SETTINGS_BY_NAME[name], value, f"wsd.{key}")
    try:
        settings = defaults.with_changes(**changes)
    except ConfigError as exc:  # each value was valid alone; this is a combination
        raise from_wsd_error(exc, "wsd") from None

    turns = _messages(body)
    # The conversation's own system message wins over the server's default prompt; a
    # `wsd.system` in the request wins over both.
    has_system = any(m.role == "system" for m in turns)
    system = settings.system if ("system" in changes or not has_system) else None
    try:
        messages = normalize(turns, system)
    except WsdError as exc:
        raise from_wsd_error(exc, "messages") from None
    effective_system = messages[0].content if messages[0].role == "system" else None
    settings = settings.with_changes(system=effective_system)

    return ServeRequest(
        messages=messages, settings=settings, stream=bool(body.stream),
        include_usage=bool(body.stream_options and body.stream_options.include_usage),
        stops=_stops(body.stop), logprobs=bool(body.logprobs), want_trace=want_trace)


def _checked(spec: SettingSpec, value: Any, param: str) -> Any:
    try:
        return spec.check(value)
    except ConfigError as exc:
        # The message names the setting as the CLI does (`max-tokens`); name the field.
        raise ApiError(400, exc.one_line().replace(spec.key, param, 1), param) from None


def _messages(body: ChatCompletionRequest) -> list[Message]:
    if not body.messages:
        raise ApiError(400, "messages must not be empty: send at least one user message", "messages")
    out = []
    for i, message in enumerate(body.messages):
        role = ROLES.get(message.role)
        if role is None:
            raise ApiError(400, f"messages[{i}].role {message.role!r} is not supported "
                                f"(use system, developer, user or assistant)", f"messages[{i}].role")
        content = message.content
        if isinstance(content, list):
            kinds = {part.type for part in content}
            if kinds - {"text"}:
                raise ApiError(400, f"messages[{i}].content: only text parts are supported, got "
                                    f"{', '.join(sorted(kinds - {'text'}))}", f"messages[{i}].content")
            content = "\n".join(part.text or "" for part in content)
        if content is None:
            raise ApiError(400, f"messages[{i}].content must be text", f"messages[{i}].content")
        out.append(Message(role, content))
    return out


def _stops(stop: str | list[str] | None) -> tuple[str, ...]:
    if stop is None:
        return ()
    stops = [stop] if isinstance(stop, str) else list(stop)
    if len(stops) > MAX_STOP_STRINGS:
        raise ApiError(400, f"stop takes at most {MAX_STOP_STRINGS} strings", "stop")
    if any(s == "" for s in stops):
        raise ApiError(400, "stop strings must not be empty", "stop")
    return tuple(stops)
