"""The request parser on any input: a parsed request or a one-line 4xx `ApiError`,
never another exception (which the server would answer with a 500).

Property-based (hypothesis): bodies built from arbitrary JSON values (huge integers,
non-finite floats, lone surrogates, deep nesting), shaped like requests often enough
to reach the settings, messages and stop checks; and raw bytes. Bounded runs: each
property tries a fixed number of examples with no per-example deadline (the machine
may be busy), a few seconds in all."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wsd_local.settings import SETTINGS, DecodingSettings
from wsd_local.server.errors import MAX_MESSAGE_CHARS, ApiError
from wsd_local.server.limits import RequestLimits
from wsd_local.server.request import ServeRequest, parse_request, read_body

MODEL = "wsd:a+b"
DEFAULTS = DecodingSettings(max_tokens=64, draft_max_tokens=64, system="Server prompt.")
LIMITS = RequestLimits(max_body_bytes=64 * 1024, max_tokens=256, max_messages=8, max_stop_strings=4,
                       max_stop_chars=16, max_json_depth=12)
BOUNDED = settings(max_examples=150, deadline=None, database=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# Text with what breaks naive code: lone surrogates (valid JSON escapes, invalid Unicode),
# control characters, non-ASCII.
text = st.one_of(st.text(max_size=20),
                 st.text(alphabet=st.sampled_from(["\ud800", "\udfff", "a", "\x00", "\x1b", "é", "\u2028"]),
                         max_size=8))
numbers = st.one_of(st.integers(), st.integers(min_value=10**300, max_value=10**420),
                    st.floats(allow_nan=True, allow_infinity=True))
scalars = st.one_of(st.none(), st.booleans(), numbers, text)
json_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(text, inner, max_size=4)), max_leaves=20)

def near(low: int, high: int) -> st.SearchStrategy:
    """Integers at and around both ends of a range, and inside it."""
    return st.one_of(st.integers(low - 2, low + 2), st.integers(high - 2, high + 2), st.integers(low, high))


# Requests a client could send: the right types, values at and around every bound.
words = st.text(max_size=20)
setting_values = {
    spec.name: (st.sampled_from(list(spec.choices)) if spec.choices
                else words if spec.kind is str
                else st.booleans() if spec.kind is bool
                else near(int(spec.minimum or 0), LIMITS.max_tokens) if spec.kind is int
                else st.floats(-0.5, 2.5))
    for spec in SETTINGS}
wsd_object = st.one_of(*(st.fixed_dictionaries({}, optional={name: values})
                         for name, values in setting_values.items()), st.just({"trace": True}))
turn = st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant"] * 3 + ["system", "developer", "tool"]),
                              "content": st.one_of(words, st.lists(st.fixed_dictionaries(
                                  {"type": st.sampled_from(["text", "text", "image_url"]), "text": words}),
                                  max_size=3))})
conversation = st.builds(lambda turns, last: [*turns, {"role": "user", "content": last}],
                         st.lists(turn, max_size=4), st.text(min_size=1, max_size=20))
plausible_request = st.fixed_dictionaries(
    {"messages": conversation},
    optional={"model": st.just(MODEL), "max_tokens": near(1, LIMITS.max_tokens),
              "temperature": st.floats(-0.1, 2.1), "top_p": st.floats(-0.1, 1.1),
              "seed": st.one_of(st.integers(-1, 10), st.integers(2**63 - 2, 2**64)),
              "stop": st.one_of(words, st.lists(words, max_size=LIMITS.max_stop_strings + 1)),
              "stream": st.booleans(), "logprobs": st.booleans(), "n": st.sampled_from([1, 1, 1, 0, 2]),
              "stream_options": st.fixed_dictionaries({"include_usage": st.booleans()}),
              "wsd": wsd_object})


@st.composite
def request_like(draw) -> dict:
    """A plausible request, with one field (or a setting) replaced by any JSON value."""
    body = dict(draw(plausible_request))
    if draw(st.booleans()):
        key = draw(st.sampled_from(["messages", "model", "max_tokens", "temperature", "top_p", "seed",
                                    "stop", "stream", "n", "stream_options", "top_logprobs", "tools",
                                    "response_format", "wsd", "wsd.setting", "messages.content"]))
        value = draw(json_values)
        if key == "wsd.setting":
            body["wsd"] = {draw(st.sampled_from(sorted(setting_values))): value}
        elif key == "messages.content":
            body["messages"] = [*body["messages"][:-1], {"role": "user", "content": value}]
        else:
            body[key] = value
    return body


def parse(raw: bytes) -> ServeRequest:
    return parse_request(read_body(raw, LIMITS), DEFAULTS, MODEL, LIMITS)


def outcome(raw: bytes) -> ServeRequest | ApiError:
    try:
        return parse(raw)
    except ApiError as error:
        assert 400 <= error.status < 500, error
        assert error.message and "\n" not in error.message and len(error.message) <= MAX_MESSAGE_CHARS
        error.response()  # what the client gets can always be encoded and sent
        return error


def encode(value) -> bytes:
    """As a client would send it; NaN and Infinity as Python writes them (not JSON)."""
    return json.dumps(value).encode()


@BOUNDED
@given(request_like())
def test_request_shaped_bodies_parse_or_get_a_4xx(body) -> None:
    result = outcome(encode(body))
    if isinstance(result, ServeRequest):  # what was accepted is within the limits
        s = result.settings
        assert 1 <= s.max_tokens <= LIMITS.max_tokens and s.draft_max_tokens <= LIMITS.max_tokens
        assert 0 <= s.temperature <= 2 and 0 < s.top_p <= 1
        assert len(result.stops) <= LIMITS.max_stop_strings
        assert all(0 < len(stop) <= LIMITS.max_stop_chars for stop in result.stops)
        assert result.messages and result.messages[-1].role == "user"
        for m in result.messages:
            m.content.encode("utf-8")  # every text can be tokenized and stored


@BOUNDED
@given(json_values)
def test_any_json_value_parses_or_gets_a_4xx(value) -> None:
    outcome(encode(value))
    outcome(encode({"messages": [{"role": "user", "content": "Hi"}], "extra": value}))


@BOUNDED
@given(st.binary(max_size=200))
def test_any_bytes_parse_or_get_a_4xx(raw: bytes) -> None:
    outcome(raw)
    outcome(b'{"messages": [{"role": "user", "content": "' + raw + b'"}]}')


@pytest.mark.parametrize("depth", [LIMITS.max_json_depth + 1, 3000, 100_000])
def test_deep_nesting_is_a_400_at_any_depth(depth: int) -> None:
    for opener, closer in ((b"[", b"]"), (b'{"a":', b"}")):
        raw = b'{"messages": [{"role": "user", "content": "Hi"}], "x": ' + opener * depth + b"0" + closer * depth + b"}"
        if len(raw) > LIMITS.max_body_bytes:
            raw_limits = RequestLimits(max_json_depth=LIMITS.max_json_depth)
            with pytest.raises(ApiError, match="nested too deeply") as caught:
                read_body(raw, raw_limits)
        else:
            with pytest.raises(ApiError, match="nested too deeply") as caught:
                parse(raw)
        assert caught.value.status == 400
