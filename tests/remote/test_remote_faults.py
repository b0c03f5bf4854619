"""Faults with a real vLLM: wrong names and keys, a prompt over the server's context,
and network faults injected by a proxy in front of it (fault_proxy.py). Every error is
one line; an answer that loses its server keeps what was written."""

from __future__ import annotations

import pytest
from answer_shapes import first_answer
from conftest import options
from fault_proxy import FaultProxy
from vllm_server import free_port

from wsd_local.backend.remote import RemoteBackend
from wsd_local.backend.remote_spec import RemoteOptions, parse_remote_spec
from wsd_local.bench.prompts import BENCH_PROMPTS
from wsd_local.settings import DecodingSettings, RuntimeSettings
from wsd_local.engine import Engine
from wsd_local.errors import PromptError, RemoteError
from wsd_local.events import BaseToken, DraftScored, Finished, SwitchFound
from wsd_local.messages import normalize
from wsd_local.templates import base_frame

SETTINGS = DecodingSettings(max_tokens=96, draft_max_tokens=96)


def _one_line(exc: BaseException) -> str:
    line = exc.one_line()  # type: ignore[attr-defined]
    assert "\n" not in line and "Traceback" not in line
    return line


def test_unreachable_port() -> None:
    with pytest.raises(RemoteError) as info:
        RemoteBackend(parse_remote_spec(f"http://127.0.0.1:{free_port()}/v1"), "base")
    assert "cannot reach the model server at http://127.0.0.1:" in _one_line(info.value)


def test_wrong_model_name_lists_the_served_ones(smollm2) -> None:
    url = smollm2.url.split("#")[0] + "#no-such-model"
    with pytest.raises(RemoteError) as info:
        RemoteBackend(parse_remote_spec(url), "base", options(smollm2))
    line = _one_line(info.value)
    assert "no model named 'no-such-model'" in line and "it serves: smollm2" in line


def test_wrong_or_missing_api_key(smollm2) -> None:
    if smollm2.api_key is None:
        pytest.skip("this vLLM was started without --api-key")
    for key in ("not-the-key", None):
        with pytest.raises(RemoteError) as info:
            RemoteBackend(parse_remote_spec(smollm2.url), "base", RemoteOptions(api_key=key))
        line = _one_line(info.value)
        assert "HTTP 401" in line and "--api-key or WSD_API_KEY" in line
        assert "not-the-key" not in line


def test_the_key_never_reaches_the_trace(shared_engine, smollm2) -> None:
    trace = shared_engine.run("Hi", SETTINGS.with_changes(mode="paper", max_tokens=16))
    text = trace.to_json()
    if smollm2.api_key:
        assert smollm2.api_key not in text
    assert trace.models["base"].path == smollm2.url.split("#")[0]  # the URL, without '#model'


def test_prompt_longer_than_the_remote_context(shared_engine) -> None:
    question = "word " * 2500  # about 2500 tokens; the server's context is 2048
    with pytest.raises(PromptError) as info:
        shared_engine.run(question, SETTINGS)
    line = _one_line(info.value)
    assert "longer than the context of smollm2" in line and "--max-model-len" in line


@pytest.fixture()
def proxied(smollm2):
    """An engine whose base model is reached through a fault-injecting proxy."""
    proxy = FaultProxy(smollm2.port)
    name = smollm2.url.split("#")[1]
    engine = Engine.load(base=f"{proxy.url()}#{name}", runtime=RuntimeSettings(n_ctx=2048, n_gpu_layers=0),
                         remote=options(smollm2, timeout_s=20))
    yield engine, proxy
    engine.close()
    proxy.close()


def test_scoring_is_retried_when_a_request_is_lost(proxied) -> None:
    engine, proxy = proxied
    frame = base_frame(normalize("Hi"))
    tokens = engine.base.tokenize(frame + "Hello there, how are you?", add_bos=True)
    expected = engine.base.score(tokens, 1)
    before = proxy.paths["/v1/completions"]
    proxy.drop_requests(1)
    assert engine.base.score(tokens, 1) == expected
    assert proxy.paths["/v1/completions"] - before == 2  # the lost one and its repeat
    assert engine.base.client.stats.retries >= 1


def test_connection_dropped_mid_continuation_keeps_the_partial_answer(proxied, shared_engine) -> None:
    engine, proxy = proxied
    # A prompt whose continuation outlasts the cut, chosen at run time with the same models
    # (unproxied): where the switch falls and how long the base model writes depend on the CPU.
    settings = SETTINGS.with_changes(mode="paper", max_tokens=300)
    chosen = first_answer(lambda prompt, threshold: shared_engine.run(prompt, settings.with_changes(
        threshold=threshold, max_tokens=SETTINGS.max_tokens)), lambda t: t.counts["base_tokens"] >= 12,
        "a continuation of 12 tokens")
    trace = None
    base_tokens = 0
    for event in engine.generate(chosen.prompt, settings.with_changes(threshold=chosen.threshold)):
        if isinstance(event, SwitchFound):
            proxy.cut_streams_after(6)
        elif isinstance(event, BaseToken):
            base_tokens += 1
        elif isinstance(event, Finished):
            trace = event.trace
    assert trace is not None and trace.stop_reason == "connection_lost"
    assert "continuation stopped" in trace.stop_note and "lost" in trace.stop_note
    trace.check()
    assert trace.kept_draft and trace.continuation and base_tokens >= 1
    assert len(trace.continuation_tokens) < 50
    assert proxy.cut_streams == 1
    # Never retried: exactly one streamed request was made for the continuation.
    proxy.pass_all()


def test_continuation_that_cannot_start_keeps_the_kept_draft(proxied) -> None:
    engine, proxy = proxied
    trace = None
    streams_before = proxy.paths["/v1/completions"]
    for event in engine.generate(BENCH_PROMPTS[0], SETTINGS.with_changes(mode="paper")):
        if isinstance(event, SwitchFound):
            proxy.refuse_all()
        elif isinstance(event, Finished):
            trace = event.trace
    assert trace is not None and trace.stop_reason == "connection_lost"
    trace.check()
    assert trace.answer == trace.kept_draft and trace.kept_draft
    assert proxy.paths["/v1/completions"] - streams_before == 1  # scoring only; the stream never got through


def test_server_lost_while_checking_keeps_the_draft(proxied) -> None:
    engine, proxy = proxied
    trace = None
    for event in engine.generate(BENCH_PROMPTS[1], SETTINGS.with_changes(mode="wsd")):
        if isinstance(event, DraftScored) and event.index == 0:
            proxy.refuse_all()
        elif isinstance(event, Finished):
            trace = event.trace
    assert trace is not None and trace.stop_reason == "connection_lost"
    assert "scoring the draft failed" in trace.stop_note and "model server at" in trace.stop_note
    trace.check()
    assert trace.answer and trace.spans == [{"model": "drafter", "text": trace.answer}]
    # The engine works again once the server is back.
    proxy.pass_all()
    again = engine.run("Hi", SETTINGS.with_changes(mode="paper", max_tokens=16))
    assert again.stop_reason != "connection_lost"
