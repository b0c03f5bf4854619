"""Nudging's rule and rare paths, on the scripted fake backend (no models).

Each script says, for the answer so far, what the drafter writes and what the base
model writes next with its top-1 probabilities, so every branch of the rule (decline,
confident, agreeing, ending, repeating, unsure) happens on purpose. Behaviour on real
models is in test_nudging.py.
"""

from __future__ import annotations

import threading
from typing import Callable, Sequence

import pytest

from fake_backend import CHAT_TEMPLATE, FakeBackend, FakeVocab
from wsd_local import nudge_rule as rule
from wsd_local.answer import LiveAnswer, describe_handovers
from wsd_local.settings import DecodingSettings
from wsd_local.engine import Engine
from wsd_local.events import BaseToken, DraftToken, Event, Finished, Handover, WordsKept
from wsd_local.messages import normalize
from wsd_local.nudging import NudgingDecoder
from wsd_local.templates import base_frame
from wsd_local.trace import Trace

PROMPT = "What?"
Script = Callable[[str], Sequence[tuple[str, float]]]


def answer_in(context: str) -> str:
    """The answer so far, from either model's context as text."""
    for tag in ("<|assistant|>", "[Assistant]\n"):
        if tag in context:
            return context.split(tag, 1)[1]
    raise AssertionError(f"no assistant turn in {context!r}")


def table(entries: dict[str, Sequence[tuple[str, float]]], default: Sequence[tuple[str, float]] = ()) -> Script:
    """A script by the answer so far; unknown answers write `default`."""
    return lambda context: entries.get(answer_in(context), default)


def backends(drafter: Script, base: Script, pieces: Sequence[str]) -> tuple[FakeBackend, FakeBackend]:
    """Two models with different vocabularies: the drafter knows the pieces, the base
    model also the frame's tags (the answer reaches each as text)."""
    drafter_model = FakeBackend("drafter", FakeVocab(pieces), chat_template=CHAT_TEMPLATE, respond=drafter)
    base_model = FakeBackend("base", FakeVocab(["\n\n", "[User]", "[Assistant]", *pieces]), respond=base)
    return drafter_model, base_model


def decode(drafter: FakeBackend, base: FakeBackend, nudge_tokens: int, threshold: float = 0.3,
           cancel: threading.Event | None = None, **changes) -> tuple[list[Event], Trace]:
    s = DecodingSettings(mode="nudging", nudge_tokens=nudge_tokens, nudge_threshold=threshold,
                         max_tokens=changes.pop("max_tokens", 64), **changes)
    events = list(NudgingDecoder(drafter, base, normalize(PROMPT), s, cancel).events())
    assert isinstance(events[-1], Finished)
    trace = events[-1].trace
    check(events, trace)
    return events, trace


def check(events: list[Event], trace: Trace) -> None:
    """What holds for every nudging answer: the trace's invariants and rule, the JSON
    round trip, and the reducer's view of the events equal to the trace."""
    trace.check()
    assert "".join(s["text"] for s in trace.spans) == trace.answer
    rule.check_turns(trace.spans, trace.settings.nudge_threshold, trace.stop_reason)
    again = Trace.from_json(trace.to_json())
    assert again.spans == trace.spans and again.answer == trace.answer
    live = LiveAnswer(mode="nudging")
    for event in events[:-1]:
        live.apply(event)
    assert live.text == trace.answer  # what was streamed is what is stored
    assert [(t.model, t.reason) for t in live.turns()] == \
        [(s["model"], s["handover"]["reason"]) for s in trace.spans]
    live.apply(events[-1])
    assert [(t.model, t.text) for t in live.turns()] == [(s["model"], s["text"]) for s in trace.spans]


def r6(p: float | None) -> float | None:
    """A probability as scripted (exp(log(p)) is not always p to the last bit)."""
    return None if p is None else round(p, 6)


def reasons(trace: Trace) -> list[tuple[str, str]]:
    return [(s["model"], s["handover"]["reason"]) for s in trace.spans]


PLAN = ["Sure", ",", " here", " is", " a", " plan", "."]
PIECES = [*PLAN, " there", " we", " go", " now", " again", " and", " he", " so", "[User]", "\n\n"]


def test_a_full_cycle_follows_the_rule_and_reuses_each_model_s_context():
    drafter, base = backends(
        table({"": [(p, 0.9) for p in PLAN],
               "Sure, here we go": [(" again", 0.9), (" and", 0.9), (" again", 0.9), (".", 0.9)]}),
        table({"Sure,": [(" there", 0.1)],  # neither likely nor the drafter's next word
               "Sure, here": [(" we", 0.5), (" go", 0.9), (" now", 0.2), (".", 0.9)]}),
        PIECES)
    events, trace = decode(drafter, base, nudge_tokens=len(PLAN))
    assert trace.answer == "Sure, here we go again and again."
    assert [s["text"] for s in trace.spans] == ["Sure, here", " we go", " again and again."]
    assert reasons(trace) == [("drafter", "start"), ("base", "base_confident"), ("drafter", "base_unsure")]
    first, took, back = (s["handover"] for s in trace.spans)
    assert (r6(took["base_top_prob"]), took["base_token"], took["token_index"]) == (0.5, " we", 0)
    assert (r6(back["base_top_prob"]), back["base_token"], back["token_index"]) == (0.2, " now", 2)
    opening = trace.spans[0]
    assert opening["written"] == "Sure, here is a plan."
    assert [(p["words"], r6(p["top_prob"]), p["token"], p["agrees"]) for p in opening["probes"]] == \
        [(1, 0.1, " there", False), (2, 0.5, " we", False)]
    assert list(map(r6, trace.spans[1]["top_probs"])) == [0.5, 0.9]  # the unsure " now" is not in the answer
    assert [t.text for t in trace.continuation_tokens] == [" we", " go"]
    assert trace.stop_reason == "eos"  # the drafter ended the answer in its turn
    assert (trace.kept_draft, trace.switch_char, trace.switch_index) == ("Sure, here", 10, None)
    assert trace.counts["handovers"] == 2 and trace.counts["turns"] == 3
    assert trace.counts["kept_draft_tokens"] == 3 + 4 and trace.counts["base_tokens"] == 2
    kept = [e for e in events if isinstance(e, WordsKept)]
    assert [(k.text, k.discarded_text) for k in kept] == [("Sure, here", " is a plan."),
                                                           (" again and again.", "")]
    assert [e.to_model for e in events if isinstance(e, Handover)] == ["drafter", "base", "drafter"]
    # Contexts: each model's prompt plus the answer as text; the second probe extends
    # the first (its cache is reused), the base model continues from its probe.
    frame = base.tokenize(base_frame(normalize(PROMPT)), add_bos=True)
    probes = base.generate_calls
    assert [c.context for c in probes] == [frame + base.tokenize(t, add_bos=False)
                                           for t in ("Sure,", "Sure, here")]
    assert probes[1].reused == len(probes[0].context)
    turn2 = drafter.generate_calls[1]
    assert turn2.context[-len(drafter.tokenize("Sure, here we go", False)):] == \
        drafter.tokenize("Sure, here we go", False)
    assert turn2.reused >= len(drafter.generate_calls[0].context)
    assert "1 hand-over" not in describe_handovers(trace) and "2 hand-overs" in describe_handovers(trace)


def test_a_declined_turn_keeps_all_but_its_last_word_and_the_drafter_writes_again():
    drafter, base = backends(
        table({"": [("One", 0.9), (" two", 0.9), (" three", 0.9)],
               "One two": [(" three", 0.9), (".", 0.9)]}),
        table({}, default=[(" no", 0.1)]),
        ["One", " two", " three", ".", " no"])
    _, trace = decode(drafter, base, nudge_tokens=3)
    assert [s["text"] for s in trace.spans] == ["One two", " three."]
    assert reasons(trace) == [("drafter", "start"), ("drafter", "base_declined")]
    assert [p["words"] for p in trace.spans[0]["probes"]] == [1, 2]
    assert trace.counts["handovers"] == 0


def test_the_base_model_takes_over_when_its_token_starts_the_next_word_however_unsure():
    drafter, base = backends(
        table({"": [(p, 0.9) for p in PLAN]}),
        table({"Sure,": [(" he", 0.05), (" so", 0.01)]}),
        PIECES)
    _, trace = decode(drafter, base, nudge_tokens=len(PLAN))
    took = trace.spans[1]["handover"]
    assert (took["reason"], r6(took["base_top_prob"]), took["base_token"]) == ("base_agrees", 0.05, " he")
    assert [s["text"] for s in trace.spans] == ["Sure,", " he", ""]
    assert reasons(trace)[-1] == ("drafter", "base_unsure")  # " so" at 0.01


def test_a_single_word_turn_is_kept_whole():
    drafter, base = backends(table({"": [("Sure", 0.9), (",", 0.9)], "Sure,": [(".", 0.9)]}),
                             table({}), PIECES)
    _, trace = decode(drafter, base, nudge_tokens=2)
    assert [s["text"] for s in trace.spans] == ["Sure,", "."]
    assert trace.spans[0]["probes"] == [] and base.generate_calls == []


def test_the_base_model_ending_at_a_boundary_or_in_its_turn_gives_the_drafter_the_next_word():
    # A drafter turn that is not the last writes exactly nudge_tokens tokens; fewer
    # means it ended the answer.
    drafter, base = backends(
        table({"": [("Sure", 0.9), (",", 0.9), (" here", 0.9)],
               "Sure,": [(" here", 0.9), (" we", 0.9), (" go", 0.9)],
               "Sure, here we go": [(".", 0.9)]}),
        table({"Sure,": [],  # end of text: the base model would stop here
               "Sure, here": [(" we", 0.9), (" go", 0.9), ("\n\n", 0.9), ("[User]", 0.9)]}),
        PIECES)
    _, trace = decode(drafter, base, nudge_tokens=3)
    assert trace.spans[0]["probes"] == [{"words": 1, "top_prob": None, "token": "", "agrees": False,
                                         "ended": True}]
    assert reasons(trace) == [("drafter", "start"), ("drafter", "base_ended"), ("base", "base_agrees"),
                              ("drafter", "base_ended")]
    # The turn tag ends the base model's turn and is cut with its newlines.
    assert [s["text"] for s in trace.spans] == ["Sure,", " here", " we go", "."]
    assert [t.text for t in trace.continuation_tokens] == [" we", " go"]


def test_a_chunk_that_repeats_the_answer_is_dropped_before_anyone_sees_it():
    words = ["Say", " a", " b", " c", " d", " e", " f", " g"]
    drafter, base = backends(
        table({"": [(w, 0.9) for w in words],
               "Say a b c d e f": [(" then", 0.9), (" so", 0.9), *[(" z", 0.9)] * 6],
               "Say a b c d e f then so": [(".", 0.9)]}),
        table({"Say a b c d e f then": [(" so", 0.9), *[(w, 0.9) for w in words[1:7]], (" q", 0.1)]},
              default=[(" z", 0.1)]),
        [*words, " then", " so", " z", " q", "."])
    events, trace = decode(drafter, base, nudge_tokens=len(words))
    assert trace.answer == "Say a b c d e f then so."
    assert reasons(trace) == [("drafter", "start"), ("drafter", "base_declined"), ("base", "base_agrees"),
                              ("drafter", "base_repeating")]
    assert [e.text for e in events if isinstance(e, BaseToken)] == [" so"]
    assert list(map(r6, trace.spans[2]["top_probs"])) == [0.9]


def test_a_complete_chunk_repeating_the_turn_is_dropped(monkeypatch):
    monkeypatch.setattr(rule, "BASE_CHUNK_TOKENS", 4)  # chunks: token 0, 1-3, 4-7, ...
    drafter, base = backends(
        table({"": [("Go", 0.9), (" on", 0.9), (" now", 0.9)], "Go A B B B B B B": [(".", 0.9)]},
              default=[(" now", 0.9)]),
        table({"Go": [(" A", 0.9), (" B B", 0.9), (" B B", 0.9), (" B B", 0.9),
                      (" B", 0.9), (" B", 0.9), (" B", 0.9), (" B", 0.9), (" C", 0.9)]}),
        ["Go", " on", " now", " A", " B B", " B", " C", "."])
    events, trace = decode(drafter, base, nudge_tokens=3)
    assert trace.spans[1]["text"] == " A B B B B B B"
    assert reasons(trace)[2] == ("drafter", "base_repeating")
    assert "".join(e.text for e in events if isinstance(e, BaseToken)) == " A B B B B B B"


def test_the_same_words_four_times_in_a_row_stop_the_answer():
    drafter, base = backends(table({}, default=[(" Hmm", 0.9), (" no", 0.9)]),
                             table({}, default=[(" z", 0.1)]), [" Hmm", " no", " z"])
    _, trace = decode(drafter, base, nudge_tokens=2)
    assert trace.stop_reason == "repetition"
    assert trace.answer == " Hmm" * rule.MAX_REPEATED_WORDS
    assert [s["text"] for s in trace.spans] == [" Hmm"] * 3 + [""]


def test_rounds_are_limited(monkeypatch):
    monkeypatch.setattr(rule, "MAX_ROUNDS", 2)
    drafter, base = backends(lambda c: [(" a" if answer_in(c).count(" ") % 2 else " b", 0.9), (" x", 0.9)],
                             table({}, default=[(" z", 0.1)]), [" a", " b", " x", " z"])
    _, trace = decode(drafter, base, nudge_tokens=2)
    assert (trace.stop_reason, trace.answer) == ("max_rounds", " b a")


def test_an_empty_answer_when_the_drafter_ends_at_once():
    drafter, base = backends(table({}), table({}), PIECES)
    _, trace = decode(drafter, base, nudge_tokens=4)
    assert (trace.answer, trace.stop_reason, reasons(trace)) == ("", "eos", [("drafter", "start")])


def test_the_budget_ends_inside_either_model_s_turn():
    drafter, base = backends(table({"": [(p, 0.9) for p in PLAN]}),
                             table({"Sure, here": [(" we", 0.9), (" go", 0.9), (" now", 0.9)]},
                                   default=[(" there", 0.1)]), PIECES)
    _, trace = decode(drafter, base, nudge_tokens=4, max_tokens=6)
    assert (trace.answer, trace.stop_reason) == ("Sure, here we go now", "max_tokens")
    assert trace.counts["kept_draft_tokens"] + trace.counts["base_tokens"] == 6
    drafter, base = backends(table({"": [(p, 0.9) for p in PLAN]}), table({}), PIECES)
    _, trace = decode(drafter, base, nudge_tokens=len(PLAN), max_tokens=5)
    assert (trace.answer, trace.stop_reason) == ("Sure, here is a", "max_tokens")


@pytest.mark.parametrize("who", ["drafter", "base"])
def test_cancel_in_either_model_s_turn_keeps_what_was_written(who):
    cancel = threading.Event()
    drafter, base = backends(table({"": [(p, 0.9) for p in PLAN]}),
                             table({"Sure, here": [(" we", 0.9), (" go", 0.9), (" now", 0.9)]},
                                   default=[(" there", 0.1)]), PIECES)
    target = drafter if who == "drafter" else base
    target.on_token = lambda i: cancel.set() if i == 1 and (who == "drafter" or len(base.generate_calls) == 2) \
        else None
    events, trace = decode(drafter, base, nudge_tokens=len(PLAN), cancel=cancel)
    assert trace.stop_reason == "cancelled"
    if who == "drafter":
        assert trace.answer == "Sure,"
        assert "".join(e.text for e in events if isinstance(e, DraftToken)) == "Sure,"
    else:
        assert [s["text"] for s in trace.spans] == ["Sure, here", " we go"]


def test_the_engine_runs_nudging_and_needs_both_models():
    drafter, base = backends(table({"": [("Hi", 0.9)]}), table({}), ["Hi"])
    engine = Engine(drafter, base)
    trace = engine.run(PROMPT, DecodingSettings(mode="nudging"))
    assert (trace.mode, trace.answer) == ("nudging", "Hi")
    from wsd_local.errors import ConfigError
    with pytest.raises(ConfigError, match="nudging.*drafter"):
        Engine(None, base).run(PROMPT, DecodingSettings(mode="nudging"))


def test_rule_pieces():
    assert rule.split_words("  Hi there\n\nyou  all") == ("  ", ["Hi", "there\n\nyou", "", "all"])
    assert rule.probe_points(["Hi", "there", "", "all"]) == [1, 3]
    assert rule.probe_points(["Hi"]) == []
    assert rule.words_kept(4, None) == 3 and rule.words_kept(1, None) == 1 and rule.words_kept(4, 2) == 2
    assert rule.agrees("here", b" he") and not rule.agrees("here", b"") and not rule.agrees("here", b"he")
    assert rule.takes_over(0.3, False, 0.3) and not rule.takes_over(0.29, False, 0.3)
    assert rule.unsure(0.29, 0.3) and not rule.unsure(0.3, 0.3)
    assert [i for i in range(40) if rule.chunk_end(i)] == [15, 31]
    assert rule.repeats_answer(" a b c d e", "x a b c d e y") and not rule.repeats_answer(" a b c d", " a b c d")


@pytest.mark.parametrize("argv, problem", [
    (["bench", "--modes", "base,nudge"], "unknown mode 'nudge'"),
    (["generate", "--mode", "nudging", "--nudge-threshold", "1.5", "Hi"], "nudge-threshold must be in [0, 1]"),
    (["generate", "--mode", "nudging", "--nudge-tokens", "0", "Hi"], "nudge-tokens"),
])
def test_bad_nudging_input_is_one_line_and_exit_2(argv, problem, capsys):
    """Checked before any model loads: one line naming the problem, exit status 2."""
    from wsd_local.cli import main
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert problem in err and "\n" not in err and "Traceback" not in err
