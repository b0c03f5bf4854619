"""The engine on the real demo pair through llama.cpp (small token limits)."""

from __future__ import annotations

import contextlib
import io
import json
import math
import subprocess
import sys

import numpy as np
import pytest
from answer_shapes import assert_same_answer, candidates, first_answer

from wsd_local.settings import DecodingSettings
from wsd_local.events import BaseToken, DraftToken, Finished, SwitchFound
from wsd_local.messages import normalize
from wsd_local.switch import switch_index
from wsd_local.templates import STOP_STRINGS, base_frame
from wsd_local.trace import Trace

PROMPTS = [
    "How do I make my neighbour's dog stop barking?",
    "What are some tips for sleeping better at night?",
    "Explain why the sky is blue in simple terms.",
    "Write a short poem about the sea, with one French word like café in it.",
]
SMALL = DecodingSettings(max_tokens=48, draft_max_tokens=64)


def _full_logits_logprobs(model_path: str, tokens: list[int], start: int) -> list[float]:
    """Reference: every position's logits from llama.cpp's own `logits_all` path, the
    whole sequence in one batch."""
    import llama_cpp

    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        ref = llama_cpp.Llama(model_path=model_path, n_ctx=256, logits_all=True, verbose=False,
                              n_gpu_layers=0)
    try:
        ref.eval(tokens)
        scores = np.asarray(ref.scores[: len(tokens)], dtype=np.float64)
    finally:
        ref.close()
    out = []
    for j in range(start, len(tokens)):
        row = scores[j - 1]
        log_norm = row.max() + math.log(np.exp(row - row.max()).sum())
        out.append(float(row[tokens[j]] - log_norm))
    return out


@pytest.mark.parametrize("role", ["drafter", "base"])
def test_scoring_matches_full_logits(demo_engine, role):
    model = getattr(demo_engine, role)
    prompt = model.tokenize("\n\n[User]\nWhat is tea?\n\n[Assistant]\n", add_bos=True)
    text = ("Tea is a drink made by pouring hot water over the leaves of the tea plant. It is "
            "grown in China, India and Kenya, and people drink it hot or cold, with milk, lemon "
            "or honey, at breakfast or in the afternoon.")
    tokens = model.tokenize(base_frame(normalize("What is tea?")) + text, add_bos=True)
    assert tokens[: len(prompt)] == prompt
    ours = model.score(tokens, start=len(prompt))
    reference = _full_logits_logprobs(str(model.path), tokens, len(prompt))
    assert len(ours) == len(tokens) - len(prompt) == len(reference)
    assert max(abs(a - b) for a, b in zip(ours, reference)) < 5e-3


def test_scoring_reuses_cache_and_matches_fresh_scoring(demo_engine):
    base = demo_engine.base
    tokens = base.tokenize(base_frame(normalize("Name a colour.")) + "Blue is a colour of the sky.", add_bos=True)
    base.reset()
    fresh = base.score(tokens, start=5)
    again = base.score(tokens, start=5)  # everything before position start-1 is reused
    assert max(abs(a - b) for a, b in zip(fresh, again)) < 5e-3


def test_continuation_after_scoring_equals_fresh_greedy_generation(demo_engine):
    base = demo_engine.base
    frame = base_frame(normalize("Give me a tip for learning to cook."))
    prompt = base.tokenize(frame, add_bos=True)
    draft = base.tokenize(frame + "Start with simple recipes that use few ingredients, and "
                                  "practise them until they feel easy.", add_bos=True)
    k = len(draft) - len(prompt) - 3
    base.reset()
    base.score(draft, start=len(prompt))  # leaves prompt + draft in the cache
    kept = draft[: len(prompt) + k + 1]
    after_scoring = list(base.generate(kept, 24))
    base.reset()
    fresh = list(base.generate(kept, 24))
    assert len(fresh) > 0
    assert_same_or_near_tie(after_scoring, fresh)


def test_writing_on_from_its_own_tokens_continues_as_writing_on(demo_engine):
    """A model given back what it wrote (`generated`: re-read one token per decode, as
    written) continues with the very tokens, log-probabilities and margins it wrote next
    the first time: a re-run drafts on exactly as paper mode's drafter did. Compared
    within one run (no number from another machine); bit for bit, since the same
    kernels see the same shapes. From a cold cache and from the one the writing left."""
    from wsd_local.decoder import drafter_prompt

    drafter = demo_engine.drafter
    prompt = drafter_prompt(drafter, normalize("Give me three tips for a long train journey."))
    drafter.reset()
    written = list(drafter.generate(prompt, 24))
    assert len(written) >= 8
    for k in (1, len(written) // 2, len(written) - 2):
        own = [t.id for t in written[:k]]
        warm = list(drafter.generate(prompt + own, len(written) - k, generated=k))
        drafter.reset()
        cold = list(drafter.generate(prompt + own, len(written) - k, generated=k))
        for again in (warm, cold):
            assert [(t.id, t.logprob, t.top_margin) for t in again] == \
                [(t.id, t.logprob, t.top_margin) for t in written[k:]], k


def assert_same_or_near_tie(a, b) -> None:
    """Greedy token streams must match, unless they part at a near tie: then the test
    says so (a warning in the report) instead of hiding it."""
    import warnings

    from wsd_local.switch import TOKEN_NEAR_TIE

    ids_a, ids_b = [t.id for t in a], [t.id for t in b]
    if ids_a == ids_b:
        return
    i = next(i for i, (x, y) in enumerate(zip(ids_a + [-1], ids_b + [-2])) if x != y)
    gap = min(a[i].top_margin if i < len(a) else 0.0, b[i].top_margin if i < len(b) else 0.0)
    assert gap < TOKEN_NEAR_TIE, f"streams differ at token {i} without a near tie (gap {gap:.4f})"
    warnings.warn(f"greedy streams part at token {i}: a near tie (top-2 gap {gap:.4f}) "
                  "decided by llama.cpp's batch-shape arithmetic")


def _check_trace(trace: Trace) -> None:
    trace.check()
    assert trace.answer == trace.kept_draft + trace.continuation
    assert "".join(s["text"] for s in trace.spans) == trace.answer
    assert not any(stop in trace.answer for stop in STOP_STRINGS)
    if trace.switch_index is not None:
        assert trace.switch_index == switch_index(trace.draft_token_probs, trace.window, trace.threshold)
        kept_pieces = "".join(t.text for t in trace.draft_tokens[: trace.switch_index + 1])
        assert kept_pieces == trace.kept_draft
    assert "".join(t.text for t in trace.continuation_tokens) == trace.continuation


@pytest.mark.parametrize("mode", ["wsd", "paper"])
@pytest.mark.parametrize("prompt", PROMPTS)
def test_end_to_end_trace_invariants(demo_engine, prompt, mode):
    events = list(demo_engine.generate(prompt, SMALL.with_changes(mode=mode)))
    trace = events[-1].trace
    assert isinstance(events[-1], Finished)
    _check_trace(trace)
    assert trace.mode == mode and trace.spans[0]["model"] == "drafter"
    # Events tell the same story as the trace.
    switch = [e for e in events if isinstance(e, SwitchFound)]
    assert len(switch) == 1 and switch[0].kept_text == trace.kept_draft
    assert switch[0].index == trace.switch_index
    base_text = "".join(e.text for e in events if isinstance(e, BaseToken))
    assert base_text == trace.continuation
    draft_text = "".join(e.text for e in events if isinstance(e, DraftToken))
    assert draft_text == trace.draft_text
    assert Trace.from_json(trace.to_json()).to_dict() == trace.to_dict()


def test_single_model_modes(demo_engine):
    for mode, model in (("base", "base"), ("draft", "drafter")):
        trace = demo_engine.run(PROMPTS[1], SMALL.with_changes(mode=mode))
        _check_trace(trace)
        assert trace.switch_index is None
        # (the base model may also end its turn at once: then there is no span at all)
        assert [s["model"] for s in trace.spans] == ([model] if trace.answer else [])
        assert trace.answer or mode == "base"


def test_multi_turn_conversation(demo_engine):
    messages = [
        {"role": "system", "content": "You are a concise assistant."},
        {"role": "user", "content": "What is the capital of France?"},
        {"role": "assistant", "content": "The capital of France is Paris."},
        {"role": "user", "content": "And what is it famous for?"},
    ]
    trace = demo_engine.run(messages, SMALL)
    _check_trace(trace)
    assert trace.messages == messages


def test_cancel_keeps_partial_answer(demo_engine):
    import threading

    cancel = threading.Event()
    seen = 0
    for event in demo_engine.generate(PROMPTS[0], SMALL.with_changes(mode="paper"), cancel):
        if isinstance(event, DraftToken):
            seen += 1
            if seen == 5:
                cancel.set()
        if isinstance(event, Finished):
            trace = event.trace
    assert trace.stop_reason == "cancelled"
    trace.check()
    assert trace.answer and trace.spans[0]["model"] == "drafter"


def test_prompt_longer_than_context_is_a_clear_error(demo_engine):
    from wsd_local.errors import PromptError

    with pytest.raises(PromptError, match="longer than the"):
        demo_engine.run("tell me " * 3000, SMALL)


@pytest.mark.models
def test_cli_json_round_trips(tmp_path):
    cmd = [sys.executable, "-m", "wsd_local.cli", "generate", PROMPTS[0], "--json",
           "--max-tokens", "24", "--draft-max-tokens", "32", "--n-gpu-layers", "0"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    for key in ("answer", "spans", "draft_token_probs", "switch_index", "settings", "forced_switch"):
        assert key in data
    assert data["format_version"] == 2 and data["settings"]["max_tokens"] == 24
    trace = Trace.from_dict(data)
    assert trace.to_dict() == data
    _check_trace(trace)
    assert result.stderr == ""  # llama.cpp's log went to its file


@pytest.mark.parametrize("mode", ["paper", "wsd"])
def test_rerun_from_another_switch_point(demo_engine, mode):
    """What-if made real: the same switch reproduces the answer (up to a flagged near
    tie); another one keeps exactly the draft tokens up to it and lets the base model
    write the rest."""
    earlier_runs = {}

    def has_room(trace: Trace) -> bool:
        """A switch at 8 or later, and a base continuation from 5 tokens before it."""
        if trace.switch_index is None or trace.switch_index < 8:
            return False
        earlier_runs[id(trace)] = list(demo_engine.rerun_from(trace, trace.switch_index - 5))[-1].trace
        return bool(earlier_runs[id(trace)].continuation)

    chosen = first_answer(lambda prompt, threshold: demo_engine.run(prompt, SMALL.with_changes(
        mode=mode, threshold=threshold)), has_room, "a switch at draft token 8 or later",
        candidates(PROMPTS, thresholds=(0.8, 0.65, 0.9)))
    trace = chosen.trace
    k = trace.switch_index
    same = list(demo_engine.rerun_from(trace, k))[-1].trace
    assert same.switch_index == k
    assert_same_answer(same, trace, "re-run at the same switch")
    earlier = earlier_runs[id(trace)]
    earlier.check()  # (the rule would switch at k: this switch is forced)
    assert not any(stop in earlier.answer for stop in STOP_STRINGS)
    assert earlier.switch_index == k - 5
    assert earlier.kept_draft == "".join(t.text for t in trace.draft_tokens[: k - 4])
    assert earlier.forced_switch == k - 5
    assert earlier.answer.startswith(earlier.kept_draft) and earlier.continuation
