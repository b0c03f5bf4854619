"""The relay from decoder events to what a client is sent, on the real demo pair
(in-process, no HTTP): in every mode the deltas add up to exactly the answer, each
attributed to the model that wrote it, with one switch mark between them."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest
from answer_shapes import candidates, continuation_stop, first_answer, kept_stop, stop_string
from chat_traces import make_trace

from wsd_local.settings import DecodingSettings
from wsd_local.events import Finished
from wsd_local import nudge_rule
from wsd_local.server.relay import (AnswerRelay, HandoverMark, SwitchMark, TextDelta, _before_turn_tag,
                                    cut_trace)

PROMPTS = ["How do I make my neighbour's dog stop barking?", "What is 17 plus 25?"]


def relay_answer(engine, prompt: str, settings: DecodingSettings, stops=(), logprobs=True):
    """Run the engine through a relay the way the server's worker does."""
    relay = AnswerRelay(settings.mode, stops, logprobs)
    cancel = threading.Event()
    outs = []
    for event in engine.generate(prompt, settings, cancel):
        if isinstance(event, Finished):
            trace, last = relay.finish(event.trace)
            return relay, trace, outs + last
        outs.extend(relay.feed(event))
        if relay.stopped_by_client:
            cancel.set()
    raise AssertionError("no Finished event")


def merged(outs) -> list[dict]:
    """Text deltas merged by model, as spans."""
    spans: list[dict] = []
    for out in outs:
        if isinstance(out, TextDelta):
            if spans and spans[-1]["model"] == out.model:
                spans[-1]["text"] += out.text
            else:
                spans.append({"model": out.model, "text": out.text})
    return spans


CASES = [(PROMPTS[0], mode) for mode in ("wsd", "paper", "base", "draft")] + [(PROMPTS[1], "wsd")]
#: γ 0.5 switches early on the first prompt: both spans, a discarded draft.
SMALL = DecodingSettings(threshold=0.5, max_tokens=28, draft_max_tokens=48)
_runs: dict[tuple[str, str], tuple] = {}


def relayed(engine, prompt: str, mode: str) -> tuple:
    """One relayed answer per prompt and mode for this module (greedy: always the same)."""
    if (prompt, mode) not in _runs:
        _runs[prompt, mode] = relay_answer(engine, prompt, SMALL.with_changes(mode=mode))
    return _runs[prompt, mode]


@pytest.mark.models
@pytest.mark.parametrize("prompt, mode", CASES, ids=["wsd", "paper", "base", "draft", "wsd-whole-draft"])
def test_deltas_are_the_answer_by_model(demo_engine, prompt: str, mode: str) -> None:
    relay, trace, outs = relayed(demo_engine, prompt, mode)
    assert trace.answer and relay.sent == trace.answer
    assert merged(outs) == trace.spans
    marks = [i for i, out in enumerate(outs) if isinstance(out, SwitchMark)]
    if mode in ("wsd", "paper"):
        assert len(marks) == 1
        mark = outs[marks[0]]
        assert (mark.index, mark.kept, mark.discarded) == (trace.switch_index, trace.kept_draft,
                                                           trace.discarded_draft)
        models = [out.model for out in outs if isinstance(out, TextDelta)]
        before = [o.model for o in outs[: marks[0]] if isinstance(o, TextDelta)]
        assert set(before) <= {"drafter"} and models[len(before):] == ["base"] * (len(models) - len(before))
    else:
        assert marks == []
    tokens = [t for out in outs if isinstance(out, TextDelta) for t in out.logprobs]
    assert "".join(t.token for t in tokens) == trace.answer
    assert all(t.logprob <= 0 for t in tokens)


def merged_turns(outs) -> list[dict]:
    """Nudging: text deltas gathered into turns at the hand-over marks."""
    turns: list[dict] = []
    for out in outs:
        if isinstance(out, HandoverMark):
            turns.append({"model": out.to_model, "text": "", "reason": out.reason,
                          "base_top_prob": out.base_top_prob})
        elif isinstance(out, TextDelta):
            assert turns and out.model == turns[-1]["model"], "text outside its model's turn"
            turns[-1]["text"] += out.text
    return turns


@pytest.mark.models
def test_nudging_deltas_are_the_turns_with_their_hand_overs(demo_engine) -> None:
    def later_stop(trace) -> str | None:
        """A stop string in a turn after the first (where it first occurs)."""
        first = len(trace.spans[0]["text"]) if trace.spans else 0
        return stop_string(trace.answer, first + 1, len(trace.answer))

    # A prompt whose answer has two hand-overs and text after the first turn, chosen at
    # run time: the hand-overs fall elsewhere on other CPUs.
    chosen = first_answer(lambda prompt, _: relayed(demo_engine, prompt, "nudging")[1],
                          lambda t: t.counts["handovers"] >= 2 and later_stop(t) is not None,
                          "two hand-overs and a later turn to cut", candidates(thresholds=[SMALL.threshold]))
    relay, trace, outs = relayed(demo_engine, chosen.prompt, "nudging")
    assert trace.mode == "nudging" and relay.sent == trace.answer and trace.counts["handovers"] >= 2
    assert not any(isinstance(out, SwitchMark) for out in outs)
    assert merged_turns(outs) == [{"model": s["model"], "text": s["text"], "reason": s["handover"]["reason"],
                                   "base_top_prob": s["handover"]["base_top_prob"]} for s in trace.spans]
    tokens = [t for out in outs if isinstance(out, TextDelta) for t in out.logprobs]
    assert "".join(t.token for t in tokens) == trace.answer and all(t.logprob <= 0 for t in tokens)
    # A client's stop string in a later turn cuts the answer there, turns kept.
    stop = later_stop(trace)
    expected = trace.answer[: trace.answer.index(stop)]
    relay, cut, outs = relay_answer(demo_engine, chosen.prompt, SMALL.with_changes(mode="nudging"), stops=[stop])
    assert relay.stopped_by_client and cut.answer == expected == "".join(
        o.text for o in outs if isinstance(o, TextDelta))
    cut.check()
    assert [(t["model"], t["text"]) for t in merged_turns(outs) if t["text"]] == [
        (s["model"], s["text"]) for s in cut.spans if s["text"]]
    assert "".join(r.text for r in cut.continuation_tokens) == "".join(
        s["text"] for s in cut.spans if s["model"] == "base")
    nudge_rule.check_turns(cut.spans[:-1], cut.settings.nudge_threshold, "cancelled")


@pytest.mark.models
def test_client_stop_cuts_the_answer_and_the_trace(demo_engine) -> None:
    """A stop string inside the kept draft, and one inside the continuation (each at its
    first occurrence in this machine's answer, chosen with the prompt at run time)."""
    def run(prompt: str, threshold: float):
        return relay_answer(demo_engine, prompt, SMALL.with_changes(mode="wsd", threshold=threshold))[1]

    chosen = first_answer(run, lambda t: t.switch_fired and bool(kept_stop(t) and continuation_stop(t)),
                          "a switch with room for a stop string on either side of it")
    settings = SMALL.with_changes(mode="wsd", threshold=chosen.threshold)
    full = chosen.trace
    for stop in (kept_stop(full), continuation_stop(full)):
        expected = full.answer[: full.answer.index(stop)]
        relay, trace, outs = relay_answer(demo_engine, chosen.prompt, settings, stops=[stop, "zzz"])
        assert relay.stopped_by_client
        assert "".join(o.text for o in outs if isinstance(o, TextDelta)) == expected == trace.answer
        trace.check()
        assert trace.stop_reason == "stop_string"
        assert merged(outs) == trace.spans


def test_cut_trace_keeps_the_invariants() -> None:
    trace = make_trace(kept="Hello there,", continuation=" general Kenobi. You are a bold one.")
    inside_draft = cut_trace(trace, 5)
    assert inside_draft.answer == inside_draft.kept_draft == "Hello"
    assert inside_draft.spans == [{"model": "drafter", "text": "Hello"}]
    assert inside_draft.continuation_tokens == [] and inside_draft.counts["base_tokens"] == 0
    inside_continuation = cut_trace(trace, len("Hello there, general"))
    assert inside_continuation.continuation == " general"
    assert "".join(t.text for t in inside_continuation.continuation_tokens) == " general"
    assert inside_continuation.kept_draft == trace.kept_draft
    for cut in (inside_draft, inside_continuation):
        cut.check()
        assert cut.stop_reason == "stop_string" and cut.draft_text == trace.draft_text
    assert trace.answer == "Hello there, general Kenobi. You are a bold one."  # the original is untouched


@pytest.mark.parametrize("text, safe", [
    ("Hello.", "Hello."),
    ("Hello.\n", "Hello."),  # the base model may go on with "\n[User]"
    ("Hello.\n\n[Us", "Hello."),
    ("Hello.[User]", "Hello."),
    ("Hello. [Note]", "Hello. [Note]"),
])
def test_draft_tail_a_turn_tag_could_cut_waits(text: str, safe: str) -> None:
    assert _before_turn_tag(text) == safe


def test_a_bug_is_a_500_with_one_line_and_the_traceback_in_the_log(tmp_path: Path) -> None:
    """A fake engine that raises (an error path: no model is needed to break)."""
    from fastapi.testclient import TestClient

    from wsd_local.server.app import ServerConfig, create_app
    from wsd_local.server.logs import LOGGERS, configure_logging

    class BrokenEngine:
        backend_name = "CPU"
        identities: dict = {}

        def generate(self, messages, settings, cancel):
            raise ZeroDivisionError("a bug deep in the engine")

    saved = {name: (logging.getLogger(name).handlers[:], logging.getLogger(name).level,
                    logging.getLogger(name).propagate) for name in LOGGERS}
    try:
        log_file = configure_logging(tmp_path / "server.log")
        app = create_app(BrokenEngine(), ServerConfig(model_name="broken", defaults=DecodingSettings()))
        with TestClient(app) as http:
            for stream in (False, True):
                response = http.post("/v1/chat/completions", json={
                    "messages": [{"role": "user", "content": "Hi"}], "stream": stream})
                assert response.status_code == 500
                error = response.json()["error"]
                assert error["type"] == "server_error" and "\n" not in error["message"]
                assert "ZeroDivisionError" not in error["message"]
    finally:
        for name, (handlers, level, propagate) in saved.items():
            logger = logging.getLogger(name)
            for handler in logger.handlers:
                if handler not in handlers:
                    handler.close()
            logger.handlers, logger.propagate = handlers, propagate
            logger.setLevel(level)
    logged = log_file.read_text()
    assert "Traceback" in logged and "ZeroDivisionError: a bug deep in the engine" in logged
