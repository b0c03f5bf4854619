"""Faults of a drafter on vLLM, as for the base model (test_remote_faults.py): a server
down, a wrong key, a stream dropped mid-draft, a server that answers without
log-probabilities (a proxy renames the request's field, fault_proxy.py). Every error
is one line naming the drafter's server; an answer that loses it keeps the draft so
far, marked by its stop reason and note."""

from __future__ import annotations

import pytest
from conftest import options
from fault_proxy import FaultProxy
from vllm_server import free_port

from wsd_local.backend.remote import RemoteBackend
from wsd_local.backend.remote_spec import RemoteOptions, parse_remote_spec
from wsd_local.bench.prompts import BENCH_PROMPTS
from wsd_local.settings import DecodingSettings, RuntimeSettings
from wsd_local.engine import Engine
from wsd_local.errors import RemoteError, RemoteRefusal
from wsd_local.events import DraftToken, Finished

SETTINGS = DecodingSettings(max_tokens=96, draft_max_tokens=96)
RUNTIME = RuntimeSettings(n_ctx=2048, n_gpu_layers=0)


def _one_line(exc: BaseException) -> str:
    line = exc.one_line()  # type: ignore[attr-defined]
    assert "\n" not in line and "Traceback" not in line
    return line


def test_drafter_server_down_at_start(smollm2) -> None:
    with pytest.raises(RemoteError) as info:
        Engine.load(drafter=f"http://127.0.0.1:{free_port()}/v1", base=smollm2.url, runtime=RUNTIME,
                    remote=options(smollm2))
    assert "cannot reach the drafter's model server at http://127.0.0.1:" in _one_line(info.value)


def test_wrong_or_missing_key_for_the_drafter(smollm2) -> None:
    if smollm2.api_key is None:
        pytest.skip("this vLLM was started without --api-key")
    for key in ("not-the-key", None):
        with pytest.raises(RemoteRefusal) as info:
            RemoteBackend(parse_remote_spec(smollm2.url), "drafter", RemoteOptions(api_key=key))
        line = _one_line(info.value)
        assert "the drafter's model server at" in line and "HTTP 401" in line and "--api-key" in line
        assert "not-the-key" not in line


@pytest.fixture()
def proxied_drafter(smollm2):
    """Drafter reached through a fault-injecting proxy, base model on the same server directly."""
    proxy = FaultProxy(smollm2.port)
    name = smollm2.url.split("#")[1]
    engine = Engine.load(drafter=f"{proxy.url()}#{name}", base=smollm2.url, runtime=RUNTIME,
                         remote=options(smollm2, timeout_s=20))
    yield engine, proxy
    engine.close()
    proxy.close()


@pytest.mark.parametrize("mode", ["paper", "wsd", "draft"])
def test_drafter_dropped_mid_draft_keeps_the_draft(proxied_drafter, mode: str) -> None:
    engine, proxy = proxied_drafter
    trace, drafted = None, 0
    for event in engine.generate(BENCH_PROMPTS[1], SETTINGS.with_changes(mode=mode)):
        if isinstance(event, DraftToken) and event.token_id >= 0:
            drafted += 1
            if drafted == 2:
                proxy.cut_streams_after(4)
        elif isinstance(event, Finished):
            trace = event.trace
    assert trace is not None and trace.stop_reason == "connection_lost"
    assert trace.stop_note.startswith("the draft stopped: connection to the drafter's model server at")
    trace.check()
    assert trace.answer and trace.spans == [{"model": "drafter", "text": trace.answer}]
    assert trace.counts["draft_tokens"] < 20 and proxy.cut_streams == 1
    # The engine answers again once the stream passes.
    proxy.pass_all()
    again = engine.run("Hi", SETTINGS.with_changes(mode="paper", max_tokens=16))
    assert again.stop_reason != "connection_lost" and again.stop_note == ""


def test_drafter_server_without_logprobs_is_refused_at_load(smollm2) -> None:
    proxy = FaultProxy(smollm2.port)
    proxy.without_logprobs()
    name = smollm2.url.split("#")[1]
    try:
        with pytest.raises(RemoteRefusal) as info:
            RemoteBackend(parse_remote_spec(f"{proxy.url()}#{name}"), "drafter", options(smollm2))
        line = _one_line(info.value)
        assert "the drafter's model server at" in line and "log-probabilities" in line and "vllm serve" in line
    finally:
        proxy.close()


def test_drafter_answering_without_logprobs_mid_answer_stops_marked(proxied_drafter) -> None:
    engine, proxy = proxied_drafter
    proxy.without_logprobs()  # after the load's check: as if the server changed under us
    trace = engine.run(BENCH_PROMPTS[0], SETTINGS.with_changes(mode="paper"))
    assert trace.stop_reason == "server_error"
    assert "without log-probabilities" in trace.stop_note and "drafter's model server at" in trace.stop_note
    trace.check()
    assert trace.continuation == "" and not trace.continuation_tokens
    proxy.without_logprobs(False)
