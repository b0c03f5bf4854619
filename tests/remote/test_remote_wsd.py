"""WSD with the drafter here and the base model on vLLM: both modes, both vocabulary
paths, online vs paper, exact text, cancel."""

from __future__ import annotations

import threading

import pytest
from answer_shapes import assert_same_answer, candidates, first_answer
from conftest import options

from wsd_local.backend.llama import LlamaBackend
from wsd_local.backend.remote import RemoteBackend
from wsd_local.backend.remote_spec import parse_remote_spec
from wsd_local.bench.prompts import BENCH_PROMPTS
from wsd_local.settings import DecodingSettings, RuntimeSettings
from wsd_local.events import BaseToken, DraftScored, Finished, SwitchFound
from wsd_local.models import demo

SETTINGS = DecodingSettings(max_tokens=96, draft_max_tokens=96)


def _check_answer(trace) -> None:
    trace.check()  # answer == kept + continuation; spans cover the answer
    assert "".join(s["text"] for s in trace.spans) == trace.answer
    if trace.switch_index is not None:  # an answer stopped before the switch has none
        assert "".join(t.text for t in trace.draft_tokens[: trace.switch_index + 1]) == trace.kept_draft
    assert "".join(t.text for t in trace.continuation_tokens) == trace.continuation


@pytest.mark.parametrize("mode", ["paper", "wsd"])
def test_shared_vocabulary_path(shared_engine, mode: str) -> None:
    """Demo drafter here, its own model on vLLM: draft ids are handed over as they are."""
    assert shared_engine.base.shares_vocabulary
    assert shared_engine.base.vocab_fingerprint == shared_engine.drafter.vocab_fingerprint
    # A prompt where the base model takes over and writes, chosen at run time (the switch
    # falls elsewhere on other CPUs).
    trace = first_answer(lambda prompt, threshold: shared_engine.run(
        prompt, SETTINGS.with_changes(mode=mode, threshold=threshold)),
        lambda t: t.switch_fired and bool(t.continuation), "a switch and a continuation").trace
    _check_answer(trace)
    assert trace.counts["shared_vocabulary"] == 1
    assert trace.models["base"].engine == "vLLM" and trace.models["base"].remote
    assert trace.backend == "CPU + vLLM"
    # Any normal end: the repetition stop may end an answer of the demo models too.
    assert trace.stop_reason in ("max_tokens", "eos", "stop_string", "repetition")


@pytest.mark.parametrize("mode", ["paper", "wsd"])
def test_cross_tokenizer_path(cross_engine, mode: str) -> None:
    """Demo drafter here, the tiny model (its own tokenizer) on vLLM: the draft text is
    re-tokenized by the server."""
    assert not cross_engine.base.shares_vocabulary
    trace = cross_engine.run("Hi", DecodingSettings(mode=mode, max_tokens=120, draft_max_tokens=12))
    _check_answer(trace)
    assert trace.counts["shared_vocabulary"] == 0
    assert trace.draft_tokens and trace.continuation_tokens
    assert trace.counts["draft_tokens_scored"] > trace.counts["draft_tokens"]  # smaller vocabulary


@pytest.mark.parametrize("prompt", BENCH_PROMPTS[:3])
def test_online_and_paper_agree_on_the_switch(shared_engine, prompt: str) -> None:
    paper = shared_engine.run(prompt, SETTINGS.with_changes(mode="paper"))
    online = shared_engine.run(prompt, SETTINGS.with_changes(mode="wsd"))
    # The same draft tokens and switch, and answer, unless a flagged near tie decides.
    assert_same_answer(online, paper, prompt)
    common = min(len(paper.draft_tokens), len(online.draft_tokens))
    # One request (paper) or one per chunk (online): the server scores the same positions alike.
    assert max(abs(a.logprob - b.logprob) for a, b in
               zip(paper.draft_tokens[:common], online.draft_tokens[:common])) < 1e-3


def test_continuation_bytes_are_exact_when_tokens_split_characters(smollm2) -> None:
    """Without the local twin's vocabulary (no adoption), every generated token's bytes
    come from the stream: compared with llama.cpp's vocabulary of the same model."""
    remote = RemoteBackend(parse_remote_spec(smollm2.url), "base", options(smollm2))
    local = LlamaBackend(demo.drafter_path(), "drafter", RuntimeSettings(n_ctx=512, n_gpu_layers=0))
    try:
        context = remote.tokenize("Emoji: 😀 😃 😄 😁 😆 😅 🤣 😂 🙂 🙃 😉 😊 東京 大阪 京都 名古屋 札幌", add_bos=True)
        ids, pieces = [], []
        for token in remote.generate(context, 40):
            ids.append(token.id)
            pieces.append(remote.token_bytes(token.id))
        truth = [local.token_bytes(t) for t in ids]
        assert pieces == truth
        assert any(p.decode("utf-8", errors="replace").count("\ufffd") for p in truth), \
            "expected tokens that end inside a character"
    finally:
        remote.close()
        local.close()


def test_cancel_mid_continuation_keeps_what_was_written(shared_engine) -> None:
    # A prompt whose base continuation runs past 5 tokens (then Esc), chosen at run time.
    settings = SETTINGS.with_changes(mode="paper", max_tokens=400)
    chosen = first_answer(lambda p, threshold: shared_engine.run(p, settings.with_changes(
        threshold=threshold, max_tokens=SETTINGS.max_tokens)), lambda t: t.counts["base_tokens"] > 5,
        "a continuation of 6 tokens", candidates(BENCH_PROMPTS[1:] + BENCH_PROMPTS[:1]))
    prompt, settings = chosen.prompt, settings.with_changes(threshold=chosen.threshold)
    cancel = threading.Event()
    base_tokens = 0
    trace = None
    for event in shared_engine.generate(prompt, settings, cancel):
        if isinstance(event, BaseToken):
            base_tokens += 1
            if base_tokens == 5:
                cancel.set()
        elif isinstance(event, Finished):
            trace = event.trace
    assert trace is not None and trace.stop_reason == "cancelled"
    _check_answer(trace)
    assert trace.continuation  # the tokens before Esc are kept
    assert len(trace.continuation_tokens) < 40  # it stopped at once, far before 400 tokens
    # The stream was closed: the next answer on the same server works.
    again = shared_engine.run("Hi", SETTINGS.with_changes(mode="paper", max_tokens=24))
    _check_answer(again)


def test_cancel_while_checking_keeps_the_draft(shared_engine) -> None:
    cancel = threading.Event()
    trace = None
    for event in shared_engine.generate(BENCH_PROMPTS[2], SETTINGS.with_changes(mode="wsd"), cancel):
        if isinstance(event, DraftScored):
            cancel.set()
        elif isinstance(event, SwitchFound):
            pytest.fail("no switch after Esc")
        elif isinstance(event, Finished):
            trace = event.trace
    assert trace is not None and trace.stop_reason == "cancelled"
    _check_answer(trace)
    assert trace.answer and trace.spans[0]["model"] == "drafter"


@pytest.mark.parametrize("engine_name", ["shared_engine", "cross_engine"])
def test_nudging_with_the_base_model_on_vllm(request, engine_name: str) -> None:
    """Nudging with the base model on the server: the turns concatenate to the answer
    and every hand-over follows the rule, recomputed from the trace (the base model's
    top-1 probabilities come from the stream's top log-probabilities)."""
    from wsd_local import nudge_rule as rule

    engine = request.getfixturevalue(engine_name)
    settings = DecodingSettings(mode="nudging", max_tokens=48)
    trace = engine.run(BENCH_PROMPTS[0], settings)
    trace.check()
    assert "".join(s["text"] for s in trace.spans) == trace.answer
    rule.check_turns(trace.spans, settings.nudge_threshold, trace.stop_reason)
    assert {s["model"] for s in trace.spans} <= {"drafter", "base"}
    assert trace.models["base"].engine == "vLLM"
    assert trace.counts["kept_draft_tokens"] + trace.counts["base_tokens"] <= settings.max_tokens
