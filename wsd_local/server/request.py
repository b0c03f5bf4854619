"""One chat-completions request, read: the conversation, the decoding settings, and how
to answer (stream, stop strings, log-probabilities, trace).

Settings come in three layers, later ones winning: the server's defaults (`wsd serve`
flags), the OpenAI fields (`max_tokens` / `max_completion_tokens`, `temperature`,
`top_p`, `seed`), then the request's `wsd` object. Every value is checked against the
setting's declaration in `settings.py`, and an error names the field as the client sent
it (`temperature`, `wsd.threshold`).

Everything in a request is untrusted: the body is checked for size, nesting and
invalid text before pydantic sees it, and every value against this server's limits
(`limits.RequestLimits`) as well as the setting's own range, so that any body gets
either a parsed request or an `ApiError` (4xx), never another exception.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable

from pydantic import ValidationError

from ..settings import (SETTING_NAMES, SETTINGS, SETTINGS_BY_NAME, DecodingSettings, SettingSpec,
                      shown_value)
from ..errors import ConfigError, WsdError
from ..messages import Message, normalize
from .errors import ApiError, from_wsd_error, validation_error
from .limits import RequestLimits
from .schemas import WSD_OPTIONS_SCHEMA, ChatCompletionRequest

DEFAULT_LIMITS = RequestLimits()

#: OpenAI fields that are decoding settings: request field -> setting name.
OPENAI_SETTINGS = (("max_completion_tokens", "max_tokens"), ("max_tokens", "max_tokens"),
                   ("temperature", "temperature"), ("top_p", "top_p"), ("seed", "seed"))

#: OpenAI roles and the role the models see (`developer` is the newer name of `system`).
ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}

#: OpenAI's own bounds on settings whose declarations allow more (a temperature of 99
#: is refused by OpenAI, so it is here too): setting name -> (maximum, why).
OPENAI_MAXIMUMS: dict[str, tuple[float, str]] = {
    "temperature": (2.0, "OpenAI's range is 0 to 2"),
    "seed": (2**63 - 1, "a 64-bit integer"),
}


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
    #: The system prompt is the server's own (`--system`), which clients are not shown.
    server_system: bool = False


def read_body(raw: bytes, limits: RequestLimits = DEFAULT_LIMITS) -> ChatCompletionRequest:
    """The body as a request: JSON (standard JSON only: no NaN or Infinity), an object,
    nested at most `limits.max_json_depth` deep, its text valid Unicode."""
    if len(raw) > limits.max_body_bytes:
        raise body_too_large(limits)
    if not raw.strip():
        raise ApiError(400, "the request needs a JSON body", code="invalid_json")
    try:
        data = json.loads(raw, parse_constant=_refuse_constant)
    except RecursionError:
        raise _too_deep(limits) from None
    except ValueError as exc:  # also bytes that are not UTF-8 (UnicodeDecodeError)
        raise ApiError(400, f"the request body is not valid JSON: {exc}", code="invalid_json") from None
    if not isinstance(data, dict):
        raise ApiError(400, "the request body must be a JSON object", code="invalid_json")
    _check_json(data, limits)
    try:
        return ChatCompletionRequest.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc.errors()) from None


def body_too_large(limits: RequestLimits) -> ApiError:
    return ApiError(413, f"the request body is larger than this server's limit of "
                         f"{limits.max_body_text} (wsd serve --max-body-mb)", code="request_too_large")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _too_deep(limits: RequestLimits) -> ApiError:
    return ApiError(400, f"the request body is nested too deeply (at most {limits.max_json_depth} "
                         f"levels of arrays and objects)", code="invalid_json")


def _check_json(data: Any, limits: RequestLimits) -> None:
    """Depth and text of every value, without recursion (a deep body must not exhaust
    the stack here either). A value's place is kept as a (parent, key) chain and only
    spelled out for the error."""
    stack: list[tuple[Any, int, tuple | None]] = [(data, 1, None)]
    while stack:
        value, depth, place = stack.pop()
        if isinstance(value, dict):
            if depth > limits.max_json_depth:
                raise _too_deep(limits)
            for key, item in value.items():
                _check_text(key, (place, key), "a key")
                stack.append((item, depth + 1, (place, key)))
        elif isinstance(value, list):
            if depth > limits.max_json_depth:
                raise _too_deep(limits)
            stack.extend((item, depth + 1, (place, i)) for i, item in enumerate(value))
        elif isinstance(value, str):
            _check_text(value, place, "text")


def _check_text(text: str, place: tuple | None, what: str) -> None:
    """Refuse a lone UTF-16 surrogate (`"\\ud800"` is valid JSON but not Unicode text: it
    cannot be tokenized, stored or sent back)."""
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        param = _place_name(place)
        raise ApiError(400, f"{param or 'the request'}: {what} contains {ascii(text[exc.start])}, a lone "
                            f"UTF-16 surrogate, which is not valid Unicode", param or None) from None


def _place_name(place: tuple | None) -> str:
    """(((None, "messages"), 0), "content") -> "messages[0].content"."""
    parts: list[Any] = []
    while place is not None:
        place, key = place
        parts.append(key)
    out = ""
    for key in reversed(parts):
        if isinstance(key, int):
            out += f"[{key}]"
        else:
            out += f".{key}" if out else key
    return out


def parse_request(body: ChatCompletionRequest, defaults: DecodingSettings, model_name: str,
                  limits: RequestLimits = DEFAULT_LIMITS) -> ServeRequest:
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
            changes[name] = _checked(SETTINGS_BY_NAME[name], value, field, limits)
    for key, value in wsd.items():
        name = SETTING_NAMES.get(key)
        if name is None:
            raise ApiError(400, f"unknown setting wsd.{key} (known: "
                                f"{', '.join([s.name for s in SETTINGS] + list(WSD_OPTIONS_SCHEMA))})",
                           f"wsd.{key}", "unknown_setting")
        changes[name] = _checked(SETTINGS_BY_NAME[name], value, f"wsd.{key}", limits)
    try:
        settings = defaults.with_changes(**changes)
    except ConfigError as exc:  # each value was valid alone; this is a combination
        raise from_wsd_error(exc, "wsd") from None

    turns = _messages(body, limits)
    # The conversation's own system message wins over the server's default prompt; a
    # `wsd.system` in the request wins over both.
    has_system = any(m.role == "system" for m in turns)
    system = settings.system if ("system" in changes or not has_system) else None
    server_system = system is not None and "system" not in changes
    try:
        messages = normalize(turns, system)
    except WsdError as exc:
        raise from_wsd_error(exc, "messages") from None
    effective_system = messages[0].content if messages[0].role == "system" else None
    settings = settings.with_changes(system=effective_system)

    return ServeRequest(
        messages=messages, settings=settings, stream=bool(body.stream),
        include_usage=bool(body.stream_options and body.stream_options.include_usage),
        stops=_stops(body.stop, limits), logprobs=bool(body.logprobs), want_trace=want_trace,
        server_system=server_system)


def _checked(spec: SettingSpec, value: Any, param: str, limits: RequestLimits) -> Any:
    try:
        value = spec.check(value)
    except ConfigError as exc:
        # The message names the setting as the CLI does (`max-tokens`); name the field.
        raise ApiError(400, exc.one_line().replace(spec.key, param, 1), param) from None
    if value is None or isinstance(value, (str, bool)):
        return value
    if spec.name in OPENAI_MAXIMUMS:
        maximum, why = OPENAI_MAXIMUMS[spec.name]
        if value > maximum:
            raise ApiError(400, f"{param} must be at most {shown_value(maximum)} ({why}), "
                                f"got {shown_value(value)}", param)
    elif spec.kind is int and value > limits.max_tokens:
        # Token counts (and the window, chunk and repetition counts, which make no sense
        # above them): this server's bound on one answer's work.
        raise ApiError(400, f"{param} must be at most {limits.max_tokens} on this server "
                            f"(wsd serve --max-tokens-limit), got {shown_value(value)}", param)
    return value


def _messages(body: ChatCompletionRequest, limits: RequestLimits) -> list[Message]:
    if not body.messages:
        raise ApiError(400, "messages must not be empty: send at least one user message", "messages")
    if len(body.messages) > limits.max_messages:
        raise ApiError(400, f"messages holds {len(body.messages)} messages; this server takes at most "
                            f"{limits.max_messages}", "messages")
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


def _stops(stop: str | list[str] | None, limits: RequestLimits) -> tuple[str, ...]:
    if stop is None:
        return ()
    stops = [stop] if isinstance(stop, str) else list(stop)
    if len(stops) > limits.max_stop_strings:
        raise ApiError(400, f"stop takes at most {limits.max_stop_strings} strings", "stop")
    if any(s == "" for s in stops):
        raise ApiError(400, "stop strings must not be empty", "stop")
    if any(len(s) > limits.max_stop_chars for s in stops):
        raise ApiError(400, f"stop strings may be at most {limits.max_stop_chars} characters long", "stop")
    return tuple(stops)
