"""Reading a chat-completions request: settings layers, names, the system prompt."""

from __future__ import annotations

import pytest

from wsd_local.settings import DecodingSettings
from wsd_local.server.errors import MAX_MESSAGE_CHARS, ApiError
from wsd_local.server.limits import RequestLimits
from wsd_local.server.request import parse_request, read_body
from wsd_local.server.schemas import ChatCompletionRequest

MODEL = "wsd:a+b"
DEFAULTS = DecodingSettings(threshold=0.7, max_tokens=100, system="Server prompt.")
USER = [{"role": "user", "content": "Hi"}]


def parse(defaults: DecodingSettings = DEFAULTS, **body):
    return parse_request(ChatCompletionRequest.model_validate({"messages": USER, **body}), defaults, MODEL)


def test_layers_server_defaults_then_openai_fields_then_wsd() -> None:
    assert parse().settings.max_tokens == 100 and parse().settings.threshold == 0.7
    assert parse(max_tokens=10).settings.max_tokens == 10
    assert parse(max_tokens=10, max_completion_tokens=7).settings.max_tokens == 7
    settings = parse(max_tokens=10, temperature=0.5, top_p=0.9, seed=3,
                     wsd={"max_tokens": 5, "draft-max-tokens": 8, "mode": "paper"}).settings
    assert (settings.max_tokens, settings.draft_max_tokens, settings.mode) == (5, 8, "paper")
    assert (settings.temperature, settings.top_p, settings.seed, settings.threshold) == (0.5, 0.9, 3, 0.7)


def test_the_system_prompt_rule() -> None:
    server_prompt = parse()
    assert server_prompt.messages[0].content == "Server prompt."
    assert server_prompt.settings.system == "Server prompt."
    own = parse(messages=[{"role": "developer", "content": "Mine."}, *USER])
    assert own.messages[0].content == "Mine." and own.settings.system == "Mine."
    forced = parse(messages=[{"role": "system", "content": "Mine."}, *USER], wsd={"system": "Forced."})
    assert [m.content for m in forced.messages] == ["Forced.", "Hi"]
    assert parse(DecodingSettings()).messages[0].role == "user"  # no prompt anywhere


def test_options_and_lenient_shapes() -> None:
    plan = parse(stream=None, logprobs=None, stop="END", model=MODEL, user="me", frequency_penalty=0,
                 messages=[{"role": "user", "content": [{"type": "text", "text": "a"},
                                                       {"type": "text", "text": "b"}]}],
                 stream_options={"include_usage": True}, wsd={"trace": True})
    assert (plan.stream, plan.logprobs, plan.stops, plan.want_trace) == (False, False, ("END",), True)
    assert plan.include_usage and plan.messages[-1].content == "a\nb"


@pytest.mark.parametrize("body, param", [
    ({"presence_penalty": 0.5}, "presence_penalty"),
    ({"response_format": {"type": "json_object"}}, "response_format"),
    ({"stop": ["s"] * 17}, "stop"),
    ({"wsd": {"window": 1.5}}, "wsd.window"),
    ({"seed": -1}, "seed"),
    ({"top_p": 0}, "top_p"),
])
def test_refusals_name_the_field(body: dict, param: str) -> None:
    with pytest.raises(ApiError) as caught:
        parse(**body)
    assert caught.value.status == 400 and caught.value.param == param


def test_bodies_that_are_not_a_request_get_clear_errors() -> None:
    assert read_body(b'{"messages": []}').messages == []
    for raw, message in ((b"", "needs a JSON body"), (b"[1]", "must be a JSON object"),
                         (b"\xff", "not valid JSON")):
        with pytest.raises(ApiError, match=message):
            read_body(raw)


LIMITS = RequestLimits()
HUGE = "1" + "0" * 399  # a 400-digit integer: valid JSON, too large for a float
CRAFTED = [
    ("temperature-99", '"temperature": 99', "temperature", "at most 2"),
    ("wsd-temperature-2.5", '"wsd": {"temperature": 2.5}', "wsd.temperature", "at most 2"),
    ("seed-past-64-bits", f'"seed": {2**64}', "seed", "64-bit"),
    ("threshold-400-digits", f'"wsd": {{"threshold": {HUGE}}}', "wsd.threshold", "400 digits"),
    ("window-400-digits", f'"wsd": {{"window": {HUGE}}}', "wsd.window", "400 digits"),
    ("max-tokens-over-the-limit", f'"max_tokens": {LIMITS.max_tokens + 1}', "max_tokens", "--max-tokens-limit"),
    ("draft-tokens-over-the-limit", f'"wsd": {{"draft_max_tokens": {LIMITS.max_tokens + 1}}}',
     "wsd.draft_max_tokens", "--max-tokens-limit"),
    ("nan", '"temperature": NaN', None, "NaN"),
    ("nested-3000", '"x": ' + "[" * 3000 + "]" * 3000, None, "nested too deeply"),
    ("nested-past-the-limit", '"x": ' + "[" * LIMITS.max_json_depth + "]" * LIMITS.max_json_depth, None,
     "nested too deeply"),
    ("stop-too-long", f'"stop": "{"x" * (LIMITS.max_stop_chars + 1)}"', "stop", "characters"),
    ("too-many-stops", '"stop": [' + ", ".join(['"s"'] * (LIMITS.max_stop_strings + 1)) + "]", "stop", "at most"),
]


@pytest.mark.parametrize("fragment, param, words", [c[1:] for c in CRAFTED], ids=[c[0] for c in CRAFTED])
def test_crafted_values_are_400s_in_one_short_line(fragment: str, param: str | None, words: str) -> None:
    raw = ('{"messages": [{"role": "user", "content": "Hi"}], ' + fragment + "}").encode()
    with pytest.raises(ApiError) as caught:
        parse_request(read_body(raw), DEFAULTS, MODEL)
    error = caught.value
    assert (error.status, error.param) == (400, param) and words in error.message
    assert "\n" not in error.message and len(error.message) <= MAX_MESSAGE_CHARS


def test_lone_surrogates_are_400s_naming_where() -> None:
    for raw, param in ((b'{"messages": [{"role": "user", "content": "\\ud800"}]}', "messages[0].content"),
                       (b'{"messages": [{"role": "user", "content": "Hi"}], "wsd": {"system": "a\\udfffb"}}',
                        "wsd.system"),
                       (b'{"messages": [{"role": "user", "content": "Hi"}], "\\ud800": 1}', "\\ud800")):
        with pytest.raises(ApiError, match="lone UTF-16 surrogate") as caught:
            read_body(raw)
        assert caught.value.status == 400 and caught.value.param == param
        caught.value.response()  # the error itself is valid Unicode (no surrogate in it)


def test_messages_cap_and_the_server_system_prompt_flag() -> None:
    with pytest.raises(ApiError, match="at most 3") as caught:
        parse_request(ChatCompletionRequest.model_validate({"messages": USER * 4}), DEFAULTS, MODEL,
                      RequestLimits(max_messages=3))
    assert caught.value.param == "messages"
    assert parse().server_system is True  # the server's prompt applies: not shown to the client
    assert parse(messages=[{"role": "system", "content": "Mine."}, *USER]).server_system is False
    assert parse(wsd={"system": "Sent."}).server_system is False
    assert parse(DecodingSettings()).server_system is False


def test_body_over_the_limit_is_a_413() -> None:
    raw = b'{"messages": [{"role": "user", "content": "' + b"a" * 100 + b'"}]}'
    with pytest.raises(ApiError, match="larger than") as caught:
        read_body(raw, RequestLimits(max_body_bytes=len(raw) - 1))
    assert caught.value.status == 413
    assert read_body(raw, RequestLimits(max_body_bytes=len(raw))).messages[0].content == "a" * 100
