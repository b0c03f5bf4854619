"""Reading a chat-completions request: settings layers, names, the system prompt."""

from __future__ import annotations

import pytest

from wsd_local.config import DecodingSettings
from wsd_local.server.errors import ApiError
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


def test_json_whatever_the_content_type_and_clear_errors() -> None:
    assert read_body(b'{"messages": []}').messages == []
    for raw, message in ((b"", "needs a JSON body"), (b"[1]", "must be a JSON object"),
                         (b"\xff", "not valid JSON")):
        with pytest.raises(ApiError, match=message):
            read_body(raw)
