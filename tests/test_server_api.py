"""`wsd serve` end to end: a real server process on loopback (the demo pair through
llama.cpp), driven by the official `openai` client and, for the wire format, httpx.

The answers are compared with `wsd generate --json` for the same settings (greedy)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import httpx
import openai
import pytest
from openai import OpenAI
from answer_shapes import Chosen, continuation_stop, first_answer
from server_process import SERVE_API_KEY

from wsd_local.answer import describe_switch
from wsd_local.settings import SETTINGS
from wsd_local.store import Store
from wsd_local.trace import Trace

pytestmark = pytest.mark.models

PROMPT = "How do I make my neighbour's dog stop barking?"
MAX_TOKENS = 32
#: The requests' settings; the answer tests ask with a prompt and threshold chosen at run
#: time (`chosen`), the others with these.
WSD = {"threshold": 0.5, "draft_max_tokens": 64}


def generate_json(prompt: str, threshold: float, config: Path) -> Trace:
    """`wsd generate --json` with the settings the requests below send (and, like the
    server, no config file)."""
    cmd = [sys.executable, "-m", "wsd_local.cli", "generate", prompt, "--json", "--threshold", str(threshold),
           "--draft-max-tokens", "64", "--max-tokens", str(MAX_TOKENS), "--ctx", "2048",
           "--n-gpu-layers", "0", "--no-log"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "WSD_CONFIG": str(config)})
    assert result.returncode == 0, result.stderr
    return Trace.from_json(result.stdout)


def _full_shape(trace: Trace) -> bool:
    """A drafter span, a discarded draft, and a base continuation that runs to the token
    limit with room for a stop string."""
    return (trace.switch_fired and bool(trace.kept_draft) and bool(trace.discarded_draft)
            and trace.stop_reason == "max_tokens" and continuation_stop(trace) is not None)


@pytest.fixture(scope="module")
def chosen(wsd_server) -> Chosen:
    """The prompt and threshold the answer tests ask with, and `wsd generate --json`'s
    answer for them: the first candidate (γ 0.5 first: an early switch) whose answer
    has every part the tests look at, on this machine's arithmetic."""
    config = wsd_server.data_dir / "config.toml"
    return first_answer(lambda prompt, threshold: generate_json(prompt, threshold, config), _full_shape,
                        "a switch, a discarded draft and a continuation to the token limit")


@pytest.fixture(scope="module")
def reference(chosen: Chosen) -> Trace:
    return chosen.trace


@pytest.fixture(scope="module")
def client(wsd_server) -> OpenAI:
    return OpenAI(base_url=wsd_server.url + "/v1", api_key=SERVE_API_KEY, max_retries=0, timeout=180)


@pytest.fixture(scope="module")
def model_id(client: OpenAI) -> str:
    return client.models.list().data[0].id


@pytest.fixture(scope="module")
def raw(wsd_server):
    with wsd_server.client(SERVE_API_KEY) as http:
        yield http


def ask(client: OpenAI, model_id: str, *, wsd: dict | None = None, case: Chosen | None = None, **kwargs):
    """A chat completion with the module's settings; `case`: the chosen prompt and threshold."""
    prompt, wsd = (PROMPT, wsd or {}) if case is None else (case.prompt, {"threshold": case.threshold, **(wsd or {})})
    return client.chat.completions.create(
        model=model_id, messages=[{"role": "user", "content": prompt}],
        max_tokens=kwargs.pop("max_tokens", MAX_TOKENS), extra_body={"wsd": {**WSD, **wsd}},
        **kwargs)


def stored_answer(wsd_server, chat_id: int):
    with Store(wsd_server.data_dir / "chats.sqlite3") as store:
        return store.get_chat(chat_id), store.messages(chat_id)


def test_models_lists_the_pair(client: OpenAI, model_id: str) -> None:
    assert model_id == "wsd:smollm2-135m+gemma3-270m"
    card = client.models.retrieve(model_id)
    assert card.id == model_id and card.owned_by == "wsd-local"
    assert set(card.model_extra["wsd"]["models"]) == {"drafter", "base"}
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-4")


def test_answer_equals_wsd_generate(client, model_id, chosen: Chosen, reference: Trace, wsd_server) -> None:
    response = ask(client, model_id, case=chosen, logprobs=True)
    choice = response.choices[0]
    assert choice.message.content == reference.answer
    assert choice.finish_reason == "length"  # reference.stop_reason == "max_tokens"
    extras = response.model_extra["wsd"]
    assert extras["spans"] == reference.spans
    assert "".join(s["text"] for s in extras["spans"]) == choice.message.content
    switch = extras["switch"]
    assert (switch["index"], switch["fired"]) == (reference.switch_index, True)
    assert (switch["kept"], switch["discarded"]) == (reference.kept_draft, reference.discarded_draft)
    assert switch["description"] == describe_switch(reference)
    assert extras["stop_reason"] == "max_tokens" and extras["settings"]["threshold"] == chosen.threshold
    assert "trace" not in extras
    c = reference.counts
    assert response.usage.prompt_tokens == c["prompt_tokens_base"]
    assert response.usage.completion_tokens == c["kept_draft_tokens"] + c["base_tokens"]
    # Log-probabilities: tokens cover the answer; draft tokens carry the base model's check.
    entries = choice.logprobs.content
    assert "".join(e.token for e in entries) == choice.message.content
    assert all(e.logprob <= 0 and e.bytes == list(e.token.encode()) for e in entries)
    drafted = [t for t in reference.draft_tokens[: reference.switch_index + 1] if t.text]
    for entry, token in zip(entries, drafted):
        assert entry.token == token.text and math.isclose(entry.logprob, token.logprob, abs_tol=1e-6)

    chat, messages = stored_answer(wsd_server, extras["chat_id"])
    assert chat.source == "serve" and chat.settings["threshold"] == chosen.threshold
    assert [(m.role, m.status) for m in messages] == [("user", "complete"), ("assistant", "complete")]
    assert messages[0].content == chosen.prompt and messages[1].content == reference.answer
    assert messages[1].trace.answer == reference.answer and messages[1].trace.spans == reference.spans


def test_stream_equals_wsd_generate(client, model_id, chosen: Chosen, reference: Trace) -> None:
    chunks = list(ask(client, model_id, case=chosen, stream=True, logprobs=True,
                      stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert len({c.id for c in chunks}) == 1 and all(c.object == "chat.completion.chunk" for c in chunks)
    kinds: list[str] = []  # "drafter" / "base" per text delta, "switch" for the mark
    texts = {"drafter": "", "base": ""}
    tokens = ""
    for chunk in chunks[:-2]:
        extra = chunk.model_extra.get("wsd") or {}
        delta = chunk.choices[0].delta
        if delta.content:
            model = delta.model_extra["wsd"]["model"]
            kinds.append(model)
            texts[model] += delta.content
            tokens += "".join(e.token for e in chunk.choices[0].logprobs.content)
        if "switch" in extra:
            kinds.append("switch")
            switch = extra["switch"]
    assert kinds.count("switch") == 1
    assert kinds == sorted(kinds, key=["drafter", "switch", "base"].index)  # drafter, mark, base
    assert texts == {"drafter": reference.kept_draft, "base": reference.continuation}
    assert tokens == reference.answer
    assert (switch["index"], switch["fired"], switch["kept"], switch["discarded"]) == (
        reference.switch_index, True, reference.kept_draft, reference.discarded_draft)

    last, usage = chunks[-2], chunks[-1]
    assert last.choices[0].finish_reason == "length"
    assert last.model_extra["wsd"]["spans"] == reference.spans
    assert set(last.model_extra["wsd"]["timings"]) >= {"draft_s", "score_s", "continue_s", "total_s"}
    assert usage.choices == [] and usage.usage.total_tokens == (
        reference.counts["prompt_tokens_base"] + reference.counts["kept_draft_tokens"]
        + reference.counts["base_tokens"])


def test_wire_format_is_sse_ending_with_done(raw: httpx.Client, model_id: str) -> None:
    body = {"model": model_id, "messages": [{"role": "user", "content": "Name a colour."}],
            "max_tokens": 4, "stream": True, "wsd": {"mode": "draft"}}
    with raw.stream("POST", "/v1/chat/completions", json=body) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [line for line in response.iter_lines() if line and not line.startswith(":")]
    assert all(line.startswith("data: ") for line in events)
    assert events[-1] == "data: [DONE]"
    chunks = [json.loads(line[6:]) for line in events[:-1]]
    assert chunks[-1]["choices"][0]["finish_reason"] in ("stop", "length")
    assert "usage" not in chunks[-1]  # not asked for
    content = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert content == "".join(s["text"] for s in chunks[-1]["wsd"]["spans"])


def test_full_trace_when_asked(client, model_id) -> None:
    response = ask(client, model_id, max_tokens=12, wsd={"trace": True})
    trace = Trace.from_dict(response.model_extra["wsd"]["trace"])
    trace.check()
    assert trace.answer == response.choices[0].message.content
    assert trace.settings.max_tokens == 12 and trace.settings.threshold == 0.5


def test_stop_string_cuts_the_answer(client, model_id, chosen: Chosen, reference: Trace, wsd_server) -> None:
    stop = continuation_stop(reference)  # in the base model's part (test_server_relay also
    # cuts inside the draft); its first occurrence, from this machine's answer
    expected = reference.answer[: reference.answer.index(stop)]
    assert len(expected) > len(reference.kept_draft)
    response = ask(client, model_id, case=chosen, stop=stop)
    assert response.choices[0].message.content == expected
    assert response.choices[0].finish_reason == "stop"
    extras = response.model_extra["wsd"]
    assert extras["client_stop"] is True and extras["stop_reason"] == "stop_string"
    assert "".join(s["text"] for s in extras["spans"]) == expected
    _, messages = stored_answer(wsd_server, extras["chat_id"])
    assert messages[-1].content == expected and messages[-1].status == "complete"
    assert messages[-1].trace.answer == expected

    streamed = ask(client, model_id, case=chosen, stop=[stop, "never occurs"], stream=True)
    chunks = list(streamed)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == expected
    assert chunks[-1].choices[0].finish_reason == "stop"


def _error(response: httpx.Response, status: int, param: str | None = None, code: str | None = None) -> str:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"] and "\n" not in error["message"] and "Traceback" not in error["message"]
    assert error["param"] == param
    if code is not None:
        assert error["code"] == code
    return error["message"]


USER = [{"role": "user", "content": "Hi"}]
BAD_REQUESTS = [
    ("not-json", b"{messages: [", 400, None, "invalid_json"),
    ("missing-messages", {}, 400, "messages", None),
    ("empty-messages", {"messages": []}, 400, "messages", None),
    ("ends-with-assistant", {"messages": [{"role": "assistant", "content": "Hi"}]}, 400, "messages", None),
    ("tool-role", {"messages": [{"role": "tool", "content": "x"}]}, 400, "messages[0].role", None),
    ("image-part", {"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}, 400,
     "messages[0].content", None),
    ("unknown-model", {"model": "gpt-4", "messages": USER}, 404, "model", "model_not_found"),
    ("unknown-wsd-setting", {"messages": USER, "wsd": {"treshold": 0.5}}, 400, "wsd.treshold", "unknown_setting"),
    ("wsd-out-of-range", {"messages": USER, "wsd": {"threshold": 1.5}}, 400, "wsd.threshold", None),
    ("wsd-bad-mode", {"messages": USER, "wsd": {"mode": "fast"}}, 400, "wsd.mode", None),
    ("negative-temperature", {"messages": USER, "temperature": -1}, 400, "temperature", None),
    ("zero-max-tokens", {"messages": USER, "max_tokens": 0}, 400, "max_tokens", None),
    ("two-choices", {"messages": USER, "n": 2}, 400, "n", "unsupported_parameter"),
    ("top-logprobs", {"messages": USER, "logprobs": True, "top_logprobs": 3}, 400, "top_logprobs",
     "unsupported_parameter"),
    ("tools", {"messages": USER, "tools": [{"type": "function", "function": {"name": "f"}}]}, 400,
     "tools", "unsupported_parameter"),
    ("empty-stop", {"messages": USER, "stop": [""]}, 400, "stop", None),
    ("prompt-over-context", {"messages": [{"role": "user", "content": "tell me " * 3000}]}, 400,
     "messages", "context_length_exceeded"),
]


@pytest.mark.parametrize("body, status, param, code", [r[1:] for r in BAD_REQUESTS],
                         ids=[r[0] for r in BAD_REQUESTS])
def test_bad_requests_get_openai_errors(raw: httpx.Client, body, status, param, code) -> None:
    if isinstance(body, bytes):
        response = raw.post("/v1/chat/completions", content=body, headers={"Content-Type": "application/json"})
    else:
        response = raw.post("/v1/chat/completions", json=body)
    _error(response, status, param, code)


def test_wrong_route_and_method(raw: httpx.Client) -> None:
    _error(raw.get("/v1/nothing"), 404, code="not_found")
    _error(raw.get("/v1/chat/completions"), 405, code="method_not_allowed")


def test_client_sees_errors_as_exceptions(client, model_id) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        ask(client, model_id, wsd={"window": 0})
    assert caught.value.param == "wsd.window" and "window" in caught.value.message
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="gpt-4", messages=USER)


def test_api_key_guards_every_route_but_health(wsd_server, model_id) -> None:
    with wsd_server.client() as anonymous, wsd_server.client("wrong") as wrong:
        assert anonymous.get("/health").json()["status"] == "ok"
        for http in (anonymous, wrong):
            for response in (http.get("/v1/models"), http.post("/v1/chat/completions", json={}),
                             http.get("/openapi.json"), http.get("/no/such/route")):
                _error(response, 401, code="invalid_api_key")
                assert response.headers["www-authenticate"] == "Bearer"
    bad = OpenAI(base_url=wsd_server.url + "/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.chat.completions.create(model=model_id, messages=USER)


def test_openapi_documents_the_wsd_object(raw: httpx.Client) -> None:
    spec = raw.get("/openapi.json").json()
    request = spec["components"]["schemas"]["ChatCompletionRequest"]
    wsd = request["properties"]["wsd"]
    assert set(wsd["properties"]) == {s.name for s in SETTINGS} | {"trace"}
    assert wsd["properties"]["threshold"]["maximum"] == 1.0 and wsd["additionalProperties"] is False
    assert "/v1/chat/completions" in spec["paths"]
    assert raw.get("/docs").status_code == 200


def test_nudging_answers_turn_by_turn(client, model_id) -> None:
    """`mode: nudging`: the content is the turns in order, every text delta names the
    model of the turn it falls in, a hand-over mark opens each turn with the base
    model's probability that decided it, and stream and non-stream agree."""
    nudging = {"mode": "nudging"}
    response = ask(client, model_id, max_tokens=24, wsd=nudging, logprobs=True)
    content = response.choices[0].message.content
    extras = response.model_extra["wsd"]
    spans = extras["spans"]
    assert extras["mode"] == "nudging" and extras["switch"] is None
    assert "".join(s["text"] for s in spans) == content and content
    assert extras["handovers"]["count"] == sum(a["model"] != b["model"] for a, b in zip(spans, spans[1:]))
    assert "hand-over" in extras["handovers"]["description"]
    assert "".join(e.token for e in response.choices[0].logprobs.content) == content

    chunks = list(ask(client, model_id, max_tokens=24, wsd=nudging, stream=True))
    marks, owners, text = [], [], ""
    for chunk in chunks[:-1]:
        extra = chunk.model_extra.get("wsd") or {}
        if "handover" in extra:
            marks.append(extra["handover"])
            assert extra["handover"]["index"] == len(text)
        delta = chunk.choices[0].delta
        if delta.content:
            owners.append((len(text), delta.model_extra["wsd"]["model"]))
            text += delta.content
    assert text == content and chunks[-1].model_extra["wsd"]["spans"] == spans
    assert [(m["to_model"], m["reason"], m["base_top_prob"]) for m in marks] == [
        (s["model"], s["handover"]["reason"], s["handover"]["base_top_prob"]) for s in spans]
    starts, at = [], 0
    for s in spans:
        starts.append((at, at + len(s["text"]), s["model"]))
        at += len(s["text"])
    for start, model in owners:
        assert any(a <= start < b and m == model for a, b, m in starts)
