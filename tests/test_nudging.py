"""Nudging on the demo pair (real llama.cpp): the answer, its hand-overs and the
numbers behind them, and stopping in either model's turn.

The rule is recomputed from the trace (`nudge_rule.check_turns`), and every number the
trace records is recomputed with the base model itself: its top-1 probability at each
word boundary it was asked at, and at each token of its turns (batch-invariant
evaluation makes both exact, docs/DESIGN.md).
"""

from __future__ import annotations

import math
import threading

import pytest
from answer_shapes import candidates, first_answer

from wsd_local import nudge_rule as rule
from wsd_local.answer import LiveAnswer, describe_handovers, turns_of
from wsd_local.settings import DecodingSettings
from wsd_local.events import BaseToken, DraftToken, Event, Finished, Handover, WordsKept
from wsd_local.messages import normalize
from wsd_local.templates import base_frame
from wsd_local.trace import Trace

SETTINGS = DecodingSettings(mode="nudging", max_tokens=48)


def run(engine, settings=SETTINGS, cancel: threading.Event | None = None, on_event=None,
        prompt: str | None = None) -> tuple[list[Event], Trace]:
    """Answer `prompt` (by default the module's chosen prompt) and return the events."""
    prompt = prompt or chosen_prompt(engine)
    events = []
    for event in engine.generate(prompt, settings, cancel):
        events.append(event)
        if on_event is not None:
            on_event(event)
    assert isinstance(events[-1], Finished)
    return events, events[-1].trace


_CHOSEN: dict[str, str] = {}


def chosen_prompt(engine) -> str:
    """The prompt of the module's answer (the `answer` fixture chooses it)."""
    if "prompt" not in _CHOSEN:
        _answer_with_reads(engine)
    return _CHOSEN["prompt"]


#: Per model: the tokens of every context it was asked to continue (what re-reading
#: the whole text at each turn would evaluate) and the tokens it actually prefilled.
READS: dict[str, dict[str, int]] = {}


def _counted_run(engine, prompt: str) -> tuple[list[Event], Trace]:
    """One answer from empty caches, counting what each model is asked to read (READS)."""
    backends = (engine.drafter, engine.base)
    for b in backends:
        b.reset()  # what this answer reads, not what an earlier one left cached
    asked: dict[str, list[int]] = {b.identity.role: [] for b in backends}
    before = {b.identity.role: b.prefilled_tokens for b in backends}
    for b in backends:
        def counted(context, *args, _generate=b.generate, _asked=asked[b.identity.role], **kwargs):
            _asked.append(len(context))
            return _generate(context, *args, **kwargs)
        b.generate = counted  # an instance attribute over the method, removed below
    try:
        result = run(engine, prompt=prompt)
    finally:
        for b in backends:
            del b.generate
    for b in backends:
        role = b.identity.role
        READS[role] = {"calls": len(asked[role]), "contexts": sum(asked[role]),
                       "prefilled": b.prefilled_tokens - before[role]}
    return result


def _answer_with_reads(engine) -> tuple[list[Event], Trace]:
    """The first prompt whose nudged answer has 4+ turns (2+ hand-overs) within the
    token limit, chosen at run time: where the base model is unsure depends on the
    CPU's arithmetic. READS holds what that answer read."""
    answers: dict[str, tuple[list[Event], Trace]] = {}

    def answer_to(prompt: str, _threshold: float) -> Trace:
        answers[prompt] = _counted_run(engine, prompt)
        return answers[prompt][1]

    _CHOSEN["prompt"] = first_answer(answer_to, lambda t: t.counts["turns"] >= 4 and t.counts["handovers"] >= 2,
                                     "4 turns", candidates(thresholds=[SETTINGS.threshold])).prompt
    return answers[_CHOSEN["prompt"]]


@pytest.fixture(scope="module")
def answer(demo_engine):
    return _answer_with_reads(demo_engine)


def test_turns_concatenate_to_the_answer_and_follow_the_rule(answer):
    events, trace = answer
    trace.check()
    assert "".join(s["text"] for s in trace.spans) == trace.answer
    rule.check_turns(trace.spans, trace.settings.nudge_threshold, trace.stop_reason)
    turns = turns_of(trace)
    assert {t.model for t in turns} == {"drafter", "base"}
    assert trace.counts["handovers"] == sum(t.handover for t in turns) >= 2
    assert trace.counts["kept_draft_tokens"] + trace.counts["base_tokens"] <= SETTINGS.max_tokens
    assert "hand-over" in describe_handovers(trace)
    # What was streamed is what is stored, turn by turn.
    live = LiveAnswer(mode="nudging")
    for event in events[:-1]:
        live.apply(event)
    assert live.text == trace.answer
    assert [(t.model, t.text, t.reason) for t in live.turns()] == [(t.model, t.text, t.reason) for t in turns]
    kept = "".join(e.text for e in events if isinstance(e, WordsKept))
    based = "".join(e.text for e in events if isinstance(e, BaseToken))
    assert len(kept) + len(based) == len(trace.answer)
    again = Trace.from_json(trace.to_json())
    assert again.spans == trace.spans and again.settings.mode == "nudging"


def test_every_recorded_probability_is_the_base_model_s_own(demo_engine, answer):
    """Each word-boundary question and each base turn, asked again from the answer's
    text: the same top-1 token and probability, to the last bit."""
    _, trace = answer
    base = demo_engine.base
    frame = base.tokenize(base_frame(normalize(chosen_prompt(demo_engine))), add_bos=True)
    spans = trace.spans
    start = 0
    asked = followed = 0
    for i, span in enumerate(spans):
        if span["model"] == "drafter":
            prefix, words = rule.split_words(span["written"])
            for probe in span["probes"]:
                text = trace.answer[:start] + rule.words_text(prefix, words, probe["words"])
                gen = base.generate(frame + base.tokenize(text, add_bos=False), 1)
                tok = next(gen, None)
                gen.close()
                if probe.get("ended"):
                    assert tok is None
                else:
                    assert math.exp(tok.best_logprob) == probe["top_prob"]
                    assert base.token_bytes(tok.id).decode("utf-8", "replace") == probe["token"]
                asked += 1
        else:
            context = frame + base.tokenize(trace.answer[:start], add_bos=False)
            nxt = spans[i + 1]["handover"] if i + 1 < len(spans) else None
            unsure = nxt is not None and nxt["reason"] == "base_unsure"
            gen = base.generate(context, len(span["top_probs"]) + int(unsure))
            tops = [math.exp(t.best_logprob) for t in gen]
            assert tops[: len(span["top_probs"])] == span["top_probs"]
            if unsure:
                assert tops[-1] == nxt["base_top_prob"] < trace.settings.nudge_threshold
            followed += 1
        start += len(span["text"])
    assert asked and followed


def test_wsd_generate_prints_each_turn_with_a_mark_at_each_hand_over(answer):
    from io import StringIO

    from wsd_local.cli.render import SWITCH_MARK, TO_DRAFTER_MARK, AnswerPrinter

    events, trace = answer
    out = StringIO()
    printer = AnswerPrinter(out=out, err=StringIO(), color=False, progress=False)
    for event in events:
        printer.handle(event)
    expected = ""
    for span in trace.spans:
        if span["handover"]["reason"] not in ("start", "base_declined"):
            expected += SWITCH_MARK if span["model"] == "base" else TO_DRAFTER_MARK
        expected += span["text"]
    printed, summary = out.getvalue().rsplit("\n", 2)[:2]
    assert printed == expected and "hand-over" in summary


def test_each_model_reuses_its_cache_across_turns(answer):
    """Every turn continues from the answer as text, yet neither model re-reads it:
    each reuses the prefix it holds and evaluates only what was written since (in
    padded 16-token blocks, docs/DESIGN.md), well under half of re-reading every context."""
    _, trace = answer
    assert trace.counts["turns"] >= 4
    for role, reads in READS.items():
        assert reads["calls"] >= 2, role
        assert reads["prefilled"] < reads["contexts"] / 2, (role, reads)


@pytest.mark.parametrize("who", ["drafter", "base"])
def test_cancel_in_either_model_s_turn_keeps_what_was_written(demo_engine, who):
    cancel = threading.Event()
    seen = {"drafter turns": 0}

    def stop(event: Event) -> None:
        if isinstance(event, Handover) and event.to_model == "drafter":
            seen["drafter turns"] += 1
        if who == "base" and isinstance(event, BaseToken):
            cancel.set()
        if who == "drafter" and isinstance(event, DraftToken) and seen["drafter turns"] == 2:
            cancel.set()

    events, trace = run(demo_engine, SETTINGS.with_changes(max_tokens=200), cancel, stop)
    assert trace.stop_reason == "cancelled"
    trace.check()
    rule.check_turns(trace.spans, trace.settings.nudge_threshold, trace.stop_reason)
    last = trace.spans[-1]
    assert last["model"] == who
    live = LiveAnswer(mode="nudging")
    for event in events:
        live.apply(event)
    assert live.stopped and live.text == trace.answer
    if who == "drafter":  # stopped while the drafter wrote: what it wrote is kept
        assert last["text"] == last["written"] and last["probes"] == []
