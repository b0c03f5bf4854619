"""The decoder's rare paths and error paths, on a scripted fake backend (no models).

Each script says what the drafter writes, how the base tokenizer splits text, what the
base model's scores are and what it continues with; the expected switch is computed
from the scripted probabilities with `switch.switch_index`, the reference rule.
Behaviour on real models stays in test_engine.py and test_online.py.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Callable

import pytest

from fake_backend import FakeBackend, FakeVocab, ScoreCall, by_piece
from wsd_local.settings import DecodingSettings
from wsd_local.decoder import Decoder
from wsd_local.errors import ConfigError
from wsd_local.events import (BaseToken, DraftRescored, DraftScored, DraftToken, Event, Finished,
                              PhaseChanged, SwitchFound)
from wsd_local.messages import normalize
from wsd_local.rerun import rerun_from
from wsd_local.switch import switch_index
from wsd_local.templates import STOP_STRINGS, base_frame
from wsd_local.trace import Trace

PROMPT = "What?"
FRAME = base_frame(normalize(PROMPT))  # "\n\n[User]\nWhat?\n\n[Assistant]\n"
FRAME_PIECES = ("\n\n", "[User]", "[Assistant]")
WINDOW, THRESHOLD = 2, 0.8


@dataclass
class Script:
    """One scripted conversation: the drafter's tokens, the base model's extra vocabulary,
    its scores (by token text) and its continuation."""

    draft: list[str | bytes]
    base_pieces: list[str | bytes] = field(default_factory=list)
    probs: dict[str, float] = field(default_factory=dict)
    continuation: list[str | bytes] = field(default_factory=lambda: [" Indeed", " so", "."])

    def backends(self, shared_vocab: bool = False,
                 lists_vocabulary: bool = True) -> tuple[FakeBackend, FakeBackend]:
        """`lists_vocabulary=False`: the base model cannot list its tokens (a server
        without a local twin), so online mode has no safe-boundary check."""
        shared = self.draft if shared_vocab else []
        base_vocab = FakeVocab([*FRAME_PIECES, *self.base_pieces, *self.continuation, *shared])
        drafter_vocab = base_vocab if shared_vocab else FakeVocab(self.draft)
        drafter = FakeBackend("drafter", drafter_vocab, writes=self.draft)
        base = FakeBackend("base", base_vocab, writes=self.continuation, prob=by_piece(self.probs),
                           lists_vocabulary=lists_vocabulary)
        return drafter, base

    def p(self, pieces: list[str]) -> list[float]:
        """The scripted probabilities of these base-token texts."""
        return [self.probs.get(t, 0.5) for t in pieces]


def settings(mode: str, **changes) -> DecodingSettings:
    return DecodingSettings(mode=mode, window=WINDOW, threshold=THRESHOLD, chunk_tokens=1,
                            max_tokens=64, draft_max_tokens=64).with_changes(**changes)


def decode(drafter: FakeBackend, base: FakeBackend, s: DecodingSettings,
           cancel: threading.Event | None = None,
           on_event: Callable[[Event], None] | None = None) -> tuple[list[Event], Trace]:
    events = []
    for event in Decoder(drafter, base, normalize(PROMPT), s, cancel).events():
        events.append(event)
        if on_event is not None:
            on_event(event)
    assert isinstance(events[-1], Finished)
    trace = events[-1].trace
    trace.check()
    return events, trace


def of(events: list[Event], kind: type) -> list:
    return [e for e in events if isinstance(e, kind)]


def piece_texts(trace: Trace) -> list[str]:
    return [t.text for t in trace.draft_tokens]


def live_scores(events: list[Event]) -> list[float]:
    """What a viewer of the event stream holds at the end: DraftScored fills index by
    index, DraftRescored voids everything from its index on."""
    probs: list[float] = []
    for e in events:
        if isinstance(e, DraftRescored):
            assert e.index < len(probs)
            del probs[e.index:]
        elif isinstance(e, DraftScored):
            assert e.index == len(probs), "scores arrive in order, without gaps"
            probs.append(e.prob)
    return probs


def assert_complete_answer(events: list[Event], trace: Trace, base: FakeBackend) -> None:
    """A finished weak-to-strong answer: the rule, the kept pieces, the events and the
    continuation from the checked prefix (the base model's KV cache) all agree."""
    assert trace.switch_index == switch_index(trace.draft_token_probs, WINDOW, THRESHOLD)
    k = trace.switch_index
    assert "".join(piece_texts(trace)[: k + 1]) == trace.kept_draft
    assert live_scores(events)[: k + 1] == trace.draft_token_probs[: k + 1]
    assert [e.index for e in of(events, DraftScored) if e.is_switch] == ([k] if trace.switch_fired else [])
    (found,) = of(events, SwitchFound)
    assert (found.index, found.kept_text) == (k, trace.kept_draft)
    assert "".join(e.text for e in of(events, DraftToken)) == trace.draft_text
    assert "".join(e.text for e in of(events, BaseToken)) == trace.continuation
    assert [s["text"] for s in trace.spans] == [x for x in (trace.kept_draft, trace.continuation) if x]
    (gen,) = base.generate_calls
    kept_ids = [t.id for t in trace.draft_tokens[: k + 1]]
    assert gen.context[len(gen.context) - len(kept_ids):] == kept_ids
    if base.score_calls:
        last = base.score_calls[-1]
        # The continuation starts from the tokens the last check left in the cache.
        assert gen.context == last.tokens[: len(gen.context)]
        assert gen.reused == len(gen.context) - 1


# -- scripts ---------------------------------------------------------------------------
# Re-tokenization reaches back past the unstable tail: " never" + "the" + "l" + "ess"
# becomes " nevertheless" only when "ess" arrives, after " never" has been scored.
RETOKENIZED = Script(
    draft=["Well", ",", " I", " never", "the", "l", "ess", " agree", ".", " Truly", "."],
    base_pieces=["Well", ",", " I", " never", "the", " nevertheless", " agree", ".", " Truly"],
    probs={" never": 0.1, " nevertheless": 0.95, " agree": 0.9},
)
RETOKENIZED_BASE = ["Well", ",", " I", " nevertheless", " agree", ".", " Truly", "."]

# The draft's first word merges with the frame's last token ("\n" + "Sure").
OVERLAP = Script(
    draft=["Sure", ",", " here", " is", " one", "."],
    base_pieces=["\nSure", ",", " here", " is", " one", "."],
    probs={"\nSure": 0.4, ",": 0.8, " here": 0.9, " is": 0.9},
)

# "é" arrives in two drafter tokens; the base model has no "é" either (byte fallback).
SPLIT_CHAR = Script(
    draft=["Caf", b"\xc3", b"\xa9", " au", " lait", "."],
    base_pieces=["Caf", " au", " lait", "."],
    probs={"Caf": 0.5, "\ufffd": 0.5, " au": 0.9, " lait": 0.95},
)

# No merges anywhere; the switch falls in the draft's last tokens.
PLAIN = Script(
    draft=["One", " two", " three", " four", " five", " six", " seven"],
    base_pieces=["One", " two", " three", " four", " five", " six", " seven"],
    probs={" six": 0.9, " seven": 0.95},
)


# -- re-tokenization ---------------------------------------------------------------------
def test_rescoring_after_retokenization_voids_scores_and_switches_on_the_new_tokens():
    # Without the vocabulary (no safe-boundary check), the last 2 tokens wait unscored
    # and the rest is trusted until re-tokenization proves otherwise.
    drafter, base = RETOKENIZED.backends(lists_vocabulary=False)
    events, trace = decode(drafter, base, settings("wsd"))
    # " never" (index 3) was scored while "the", "l" were the unstable tail; "ess" made it
    # " nevertheless" and shrank the stable part to 2 tokens: everything from 2 is void.
    assert [e.index for e in of(events, DraftRescored)] == [2]
    assert [e.index for e in of(events, DraftScored)] == [0, 1, 2, 3, 2, 3, 4]
    assert [e.text for e in of(events, DraftScored)][3] == " never"
    assert piece_texts(trace) == RETOKENIZED_BASE[:5]
    k = switch_index(RETOKENIZED.p(RETOKENIZED_BASE), WINDOW, THRESHOLD)
    assert k == 4  # at " agree"; with the void " never" kept, no window would reach 0.8
    assert switch_index(RETOKENIZED.p(["Well", ",", " I", " never", "the", "l"]), WINDOW, THRESHOLD) == 5
    assert (trace.switch_index, trace.switch_fired) == (k, True)
    assert trace.kept_draft == "Well, I nevertheless agree"
    assert live_scores(events) == pytest.approx(RETOKENIZED.p(RETOKENIZED_BASE[:5]))
    assert_complete_answer(events, trace, base)
    # The rescoring pass started at the first void token and reused the cache before it.
    prompt = len(base.tokenize(FRAME, add_bos=True))
    starts = [c.start - prompt for c in base.score_calls]
    assert starts == [0, 1, 2, 3, 2, 3, 4]
    assert base.score_calls[4].reused == prompt + 1
    # Drafting stopped at the switch: the drafter wrote up to the chunk that found it.
    assert trace.draft_text == "Well, I nevertheless agree. Truly"
    assert trace.counts["draft_tokens_past_switch"] == 2


def test_safe_boundaries_score_each_token_once_and_never_a_token_that_can_still_merge():
    # " never" may still become " nevertheless" while the text ends inside that word:
    # it waits; the tokens before the space ahead of it are scored at once.
    drafter, base = RETOKENIZED.backends()
    events, trace = decode(drafter, base, settings("wsd"))
    assert of(events, DraftRescored) == []
    scored = [j for c in base.score_calls for j in c.positions]
    assert len(scored) == len(set(scored))  # each position scored once
    assert " never" not in [e.text for e in of(events, DraftScored)]
    assert piece_texts(trace) == RETOKENIZED_BASE[:5]
    assert (trace.switch_index, trace.kept_draft) == (4, "Well, I nevertheless agree")
    assert_complete_answer(events, trace, base)


@pytest.mark.parametrize("lists_vocabulary", [True, False])
def test_merge_inside_the_unstable_tail_costs_no_rescoring(lists_vocabulary):
    # " the" + "re" -> " there": " the" is never scored, so nothing is voided.
    script = Script(draft=["So", " the", "re", " it", " is", "."],
                    base_pieces=["So", " the", " there", " it", " is", "."])
    drafter, base = script.backends(lists_vocabulary=lists_vocabulary)
    events, trace = decode(drafter, base, settings("wsd"))
    assert of(events, DraftRescored) == []
    assert piece_texts(trace) == ["So", " there", " it", " is", "."]
    scored = [j for c in base.score_calls for j in c.positions]
    assert len(scored) == len(set(scored)) == len(trace.draft_tokens)  # each token once
    assert_complete_answer(events, trace, base)


# -- frame overlap -----------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["paper", "wsd"])
def test_draft_merging_with_the_frame_scores_from_inside_the_frame(mode):
    drafter, base = OVERLAP.backends()
    prompt = base.tokenize(FRAME, add_bos=True)
    assert base.token_bytes(prompt[-1]) == b"\n"
    events, trace = decode(drafter, base, settings(mode))
    # The first draft token is "\nSure": scoring starts at the frame's last token, and
    # its text skips the newline the frame already has.
    assert trace.draft_tokens[0].id == base.vocab.id("\nSure")
    assert base.score_calls[0].start == len(prompt) - 1
    assert base.score_calls[0].tokens[: len(prompt) - 1] == prompt[:-1]
    assert piece_texts(trace)[:3] == ["Sure", ",", " here"]
    k = switch_index(OVERLAP.p(["\nSure", ",", " here", " is", " one", "."]), WINDOW, THRESHOLD)
    assert trace.switch_index == k == 2
    assert trace.kept_draft == "Sure, here"
    assert trace.answer == "Sure, here Indeed so."
    assert base.generate_calls[0].context == prompt[:-1] + [t.id for t in trace.draft_tokens[:3]]
    assert_complete_answer(events, trace, base)


# -- a character split over tokens ---------------------------------------------------------
@pytest.mark.parametrize("shared_vocab", [False, True])
@pytest.mark.parametrize("mode", ["paper", "wsd"])
def test_character_split_over_tokens_has_one_piece(mode, shared_vocab):
    drafter, base = SPLIT_CHAR.backends(shared_vocab)
    events, trace = decode(drafter, base, settings(mode))
    assert [e.text for e in of(events, DraftToken)][:3] == ["Caf", "", "é"]
    # The first byte's piece is empty and the second carries "é", in every chunking.
    assert piece_texts(trace)[:4] == ["Caf", "", "é", " au"]
    assert [e.text for e in of(events, DraftScored)][:4] == ["Caf", "", "é", " au"]
    probs = SPLIT_CHAR.p(["Caf", "\ufffd", "\ufffd", " au", " lait", "."])
    assert trace.switch_index == switch_index(probs, WINDOW, THRESHOLD) == 4
    assert trace.kept_draft == "Café au lait"
    assert_complete_answer(events, trace, base)


def test_switch_inside_a_character_completes_it_from_the_continuation():
    # The switch falls on the first byte of "é"; the base model writes the second.
    script = Script(draft=["Caf", b"\xc3", b"\xa9", " au", " lait"], base_pieces=["Caf", " au", " lait"],
                    probs={"Caf": 0.9, "\ufffd": 0.9}, continuation=[b"\xa9", " noir"])
    drafter, base = script.backends()
    events, trace = decode(drafter, base, settings("paper"))
    assert trace.switch_index == switch_index(script.p(["Caf", "\ufffd", "\ufffd", " au", " lait"]),
                                              WINDOW, THRESHOLD) == 1
    assert (trace.kept_draft, trace.continuation) == ("Caf", "é noir")
    assert of(events, SwitchFound)[0].discarded_text == "é au lait"
    assert trace.answer == "Café noir"
    assert_complete_answer(events, trace, base)


# -- one vocabulary ----------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["paper", "wsd"])
def test_shared_vocabulary_hands_drafter_ids_over(mode):
    script = Script(draft=["So", " the", "re", " it", " is", "."],
                    base_pieces=["So", " the", "re", " there", " it", " is", "."],
                    probs={"re": 0.9, " it": 0.9})
    drafter, base = script.backends(shared_vocab=True)
    events, trace = decode(drafter, base, settings(mode, chunk_tokens=2))
    assert trace.counts["shared_vocabulary"] == 1
    # The drafter's own split, although the base tokenizer would write " there".
    assert piece_texts(trace)[:3] == ["So", " the", "re"]
    prompt = base.tokenize(FRAME, add_bos=True)
    ids = [drafter.vocab.id(p) for p in script.draft]
    assert all(c.tokens == prompt + ids[: len(c.tokens) - len(prompt)] for c in base.score_calls)
    assert trace.switch_index == switch_index(script.p(["So", " the", "re", " it"]), WINDOW, THRESHOLD) == 3
    if mode == "wsd":  # chunks of 2, all stable: each token scored once, in chunk steps
        assert [len(c.positions) for c in base.score_calls] == [2, 2]
        assert trace.counts["draft_tokens"] == 4
    assert_complete_answer(events, trace, base)


def test_same_pieces_in_another_vocabulary_are_retokenized():
    script = Script(draft=["So", " the", "re", " it"], base_pieces=["So", " the", " there", " it"])
    drafter, base = script.backends(shared_vocab=False)
    _, trace = decode(drafter, base, settings("paper"))
    assert trace.counts["shared_vocabulary"] == 0
    assert piece_texts(trace) == ["So", " there", " it"]


# -- online mode's chunks ------------------------------------------------------------------
def test_eos_mid_chunk_scores_the_tail_once():
    drafter, base = PLAIN.backends()
    events, trace = decode(drafter, base, settings("wsd", chunk_tokens=4))
    prompt = len(base.tokenize(FRAME, add_bos=True))
    # After 4 tokens ("One two three four"), the words before the last space were safe;
    # EOS came 3 tokens into the next chunk, and the final check scored the rest.
    assert [(c.start - prompt, len(c.positions)) for c in base.score_calls] == [(0, 3), (3, 4)]
    assert of(events, DraftRescored) == []
    assert trace.counts["draft_tokens"] == 7
    k = switch_index(PLAIN.p(["One", " two", " three", " four", " five", " six", " seven"]),
                     WINDOW, THRESHOLD)
    assert (trace.switch_index, trace.switch_fired) == (k, True) and k == 6
    assert trace.kept_draft == "One two three four five six seven"
    assert_complete_answer(events, trace, base)


def test_draft_without_a_switch_is_kept_whole():
    script = Script(draft=PLAIN.draft, base_pieces=PLAIN.base_pieces)  # every p = 0.5
    drafter, base = script.backends()
    events, trace = decode(drafter, base, settings("wsd", chunk_tokens=3))
    assert (trace.switch_index, trace.switch_fired) == (6, False)
    assert trace.kept_draft == trace.draft_text
    assert of(events, SwitchFound)[0].discarded_text == ""
    assert_complete_answer(events, trace, base)


# -- empty drafts --------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["paper", "wsd"])
@pytest.mark.parametrize("draft", [[], [" ", "\n"]], ids=["eos-at-once", "whitespace"])
def test_empty_draft_leaves_the_answer_to_the_base_model(mode, draft):
    drafter, base = Script(draft=draft).backends()
    events, trace = decode(drafter, base, settings(mode))
    assert base.score_calls == []
    (found,) = of(events, SwitchFound)
    assert (found.index, found.fired, found.window_score, found.kept_text) == (-1, False, 0.0, "")
    # The draft is handed over stripped, as the reference does: whitespace is no draft.
    assert found.discarded_text == trace.draft_text == ""
    assert (trace.switch_index, trace.kept_draft, trace.draft_tokens) == (-1, "", [])
    assert base.generate_calls[0].context == base.tokenize(FRAME, add_bos=True)
    assert trace.answer == " Indeed so." and trace.spans == [{"model": "base", "text": " Indeed so."}]
    assert trace.counts["kept_draft_tokens"] == 0


# -- stop strings ----------------------------------------------------------------------------
def _views_agree(events: list[Event], trace: Trace) -> None:
    """Every view of the answer says the same: the switch event, the trace's kept draft
    and its token pieces, the reducer fed with the events, and the terminal printer."""
    import io

    from wsd_local.answer import LiveAnswer
    from wsd_local.cli.render import AnswerPrinter

    (found,) = of(events, SwitchFound)
    k = trace.switch_index
    assert found.kept_text == trace.kept_draft == "".join(piece_texts(trace)[: k + 1])
    live, out = LiveAnswer(mode=trace.mode), io.StringIO()
    printer = AnswerPrinter(out=out, err=io.StringIO(), color=False, progress=False)
    for event in events:
        live.apply(event)
        printer.handle(event)
        # What is shown as the drafter's span is never taken back: the confirmed draft
        # is a start of the final kept draft, and the switch's kept text is final.
        assert trace.kept_draft.startswith(live.confirmed)
        if live.switch is not None:
            assert live.kept == trace.kept_draft
    assert live.kept == trace.kept_draft and live.text == trace.answer
    assert out.getvalue().startswith(trace.kept_draft + "⟫" + trace.continuation + "\n")


def test_stop_string_begun_in_the_kept_draft_cuts_it_in_every_view():
    # The draft ends in " [Us" and the base model goes on with "er]": "[User]" is a stop
    # string, so the answer ends before it, inside the drafter's span. The switch is
    # announced once the continuation has decided that, with the kept text cut.
    script = Script(draft=["Sure", ".", " [", "Us"], base_pieces=["Sure", ".", " [", "Us"],
                    continuation=["er]", " Hi"])
    drafter, base = script.backends()
    events, trace = decode(drafter, base, settings("paper"))
    assert (trace.switch_index, trace.switch_fired) == (3, False)
    assert (trace.kept_draft, trace.continuation, trace.answer) == ("Sure. ", "", "Sure. ")
    assert trace.stop_reason == "stop_string"
    assert not any(stop in trace.answer for stop in STOP_STRINGS)
    assert of(events, SwitchFound)[0].discarded_text == "[Us"
    assert trace.counts["kept_draft_tokens"] == 3  # "[Us" carries no answer text now
    _views_agree(events, trace)


def test_kept_draft_that_only_looks_like_a_stop_string_is_kept():
    # " [Us" + "e" + "ful]": no stop string after all; the text held back is released.
    script = Script(draft=["Sure", ".", " [", "Us"], base_pieces=["Sure", ".", " [", "Us"],
                    continuation=["e", "ful]", " tip", "."])
    drafter, base = script.backends()
    events, trace = decode(drafter, base, settings("paper"))
    assert (trace.kept_draft, trace.continuation) == ("Sure. [Us", "eful] tip.")
    assert trace.stop_reason == "eos"
    _views_agree(events, trace)


@pytest.mark.parametrize("mode", ["paper", "wsd"])
def test_stop_string_inside_the_kept_draft_ends_the_answer_there(mode):
    # The reference cuts its final text at the first stop string anywhere, the kept
    # draft included: the base model has nothing to add after it.
    script = Script(draft=["Sure", ".", "\n", "[User]", " Hi", " there", "."],
                    base_pieces=["Sure", ".", "[User]", " Hi", " there", "."],
                    probs={" Hi": 0.9, " there": 0.9})
    drafter, base = script.backends()
    events, trace = decode(drafter, base, settings(mode))
    k = trace.switch_index
    assert k == 5 and trace.switch_fired  # the rule is the rule: the window after the tag
    assert (trace.kept_draft, trace.continuation, trace.answer) == ("Sure.", "", "Sure.")
    assert trace.stop_reason == "stop_string" and base.generate_calls == []
    assert trace.counts["base_tokens"] == 0
    _views_agree(events, trace)


# -- online == paper ---------------------------------------------------------------------
@pytest.mark.parametrize("chunk", [1, 2, 3, 16])
@pytest.mark.parametrize("script,shared_vocab", [
    (RETOKENIZED, False), (OVERLAP, False), (SPLIT_CHAR, False), (SPLIT_CHAR, True),
    (PLAIN, False), (PLAIN, True)],
    ids=["retokenized", "overlap", "split-char", "split-char-shared", "plain", "plain-shared"])
def test_online_equals_paper(script, shared_vocab, chunk):
    online_events, online = decode(*script.backends(shared_vocab), settings("wsd", chunk_tokens=chunk))
    _, paper = decode(*script.backends(shared_vocab), settings("paper"))
    k = paper.switch_index
    assert k is not None and k >= 0
    assert (online.switch_index, online.switch_fired) == (k, paper.switch_fired)
    assert [t.to_list() for t in online.draft_tokens[: k + 1]] == \
        [t.to_list() for t in paper.draft_tokens[: k + 1]]
    for field_name in ("kept_draft", "continuation", "answer", "spans", "stop_reason", "near_ties"):
        assert getattr(online, field_name) == getattr(paper, field_name), field_name
    assert online.counts["draft_tokens"] <= paper.counts["draft_tokens"]
    assert live_scores(online_events)[: k + 1] == paper.draft_token_probs[: k + 1]


# -- replay (re-run from another switch point) ------------------------------------------------
def _rerun(script: Script, trace: Trace, index: int) -> tuple[list[Event], Trace, FakeBackend, FakeBackend]:
    drafter, base = script.backends()
    engine = SimpleNamespace(drafter=drafter, base=base, backend_name="fake")
    events = list(rerun_from(engine, trace, index))  # type: ignore[arg-type]
    assert isinstance(events[-1], Finished)
    rerun = events[-1].trace
    rerun.check()
    return events, rerun, drafter, base


@pytest.mark.parametrize("mode", ["paper", "wsd"])
@pytest.mark.parametrize("offset", [0, -2])
def test_rerun_replays_the_stored_draft_without_drafting_or_scoring(mode, offset):
    _, trace = decode(*RETOKENIZED.backends(), settings(mode))
    k = trace.switch_index
    assert k == 4
    events, rerun, drafter, base = _rerun(RETOKENIZED, trace, k + offset)
    j = k + offset
    assert drafter.generate_calls == [] and base.score_calls == []
    assert of(events, DraftToken) == [] and of(events, DraftRescored) == []
    scored = of(events, DraftScored)
    assert [(e.text, e.prob) for e in scored] == [(t.text, math.exp(t.logprob)) for t in trace.draft_tokens]
    assert [e.index for e in scored if e.is_switch] == [j]
    assert (rerun.switch_index, rerun.switch_fired) == (j, offset == 0)
    assert rerun.draft_tokens == trace.draft_tokens and rerun.draft_text == trace.draft_text
    kept = trace.draft_tokens[: j + 1]
    assert rerun.kept_draft == "".join(t.text for t in kept)
    prompt = base.tokenize(FRAME, add_bos=True)
    assert base.generate_calls[0].context == prompt + [t.id for t in kept]
    assert rerun.answer == rerun.kept_draft + " Indeed so."
    assert rerun.counts["draft_tokens"] == trace.counts["draft_tokens"]
    if offset == 0:
        assert rerun.answer == trace.answer


@pytest.mark.parametrize("index", [1, -1])
def test_rerun_of_a_draft_merged_with_the_frame(index):
    _, trace = decode(*OVERLAP.backends(), settings("paper"))
    events, rerun, _, base = _rerun(OVERLAP, trace, index)
    prompt = base.tokenize(FRAME, add_bos=True)
    context = base.generate_calls[0].context
    if index >= 0:  # "\nSure" carries the frame's newline
        assert context == prompt[:-1] + [t.id for t in trace.draft_tokens[: index + 1]]
        assert rerun.kept_draft == "Sure,"
    else:  # nothing kept: the base model continues the whole frame
        assert context == prompt
        assert rerun.kept_draft == ""
    assert rerun.answer == rerun.kept_draft + " Indeed so."


def test_rerun_with_another_base_tokenizer_is_refused():
    _, trace = decode(*OVERLAP.backends(), settings("paper"))
    # Another tokenizer: other ids, and no "\nSure".
    other = Script(draft=OVERLAP.draft, base_pieces=["Sure", " one", " is", " here"])
    with pytest.raises(ConfigError, match="scored by another base model"):
        _rerun(other, trace, 1)


# -- cancelling ----------------------------------------------------------------------------
def _cancel_when(predicate: Callable[[Event], bool], cancel: threading.Event) -> Callable[[Event], None]:
    def watch(event: Event) -> None:
        if predicate(event):
            cancel.set()
    return watch


@pytest.mark.parametrize("mode", ["paper", "wsd"])
def test_cancel_while_drafting_keeps_the_draft_so_far(mode):
    drafter, base = RETOKENIZED.backends()
    cancel = threading.Event()
    drafted: list[Event] = []

    def watch(event: Event) -> None:
        if isinstance(event, DraftToken):
            drafted.append(event)
            if len(drafted) == 3:
                cancel.set()  # Esc after the drafter's third token

    events, trace = decode(drafter, base, settings(mode, chunk_tokens=4), cancel, watch)
    assert trace.stop_reason == "cancelled" and drafter.stop_reason == "cancelled"
    assert trace.answer == trace.draft_text == "Well, I"
    assert trace.spans == [{"model": "drafter", "text": "Well, I"}]
    assert base.score_calls == [] and base.generate_calls == []
    assert of(events, SwitchFound) == [] and trace.switch_index is None


@pytest.mark.parametrize("mode", ["paper", "wsd"])
def test_cancel_while_checking_keeps_the_draft_and_its_scores(mode):
    drafter, base = PLAIN.backends()
    cancel = threading.Event()

    def esc(call: ScoreCall) -> None:
        cancel.set()  # Esc pressed while the base model scores

    base.on_score = esc
    events, trace = decode(drafter, base, settings(mode, chunk_tokens=4), cancel)
    assert trace.stop_reason == "cancelled"
    assert len(base.score_calls) == 1 and base.generate_calls == []
    # Paper mode checks the whole draft; online mode the stable part of the first chunk
    # (the words before its last space), and the drafter stops at its next token.
    written = 7 if mode == "paper" else 4
    assert trace.counts["draft_tokens"] == written
    assert trace.answer == trace.draft_text == "".join(PLAIN.draft[:written])
    assert trace.spans == [{"model": "drafter", "text": trace.answer}]
    assert len(trace.draft_tokens) == len(base.score_calls[0].positions) == (7 if mode == "paper" else 3)
    assert of(events, SwitchFound) == []


@pytest.mark.parametrize("mode", ["paper", "wsd"])
def test_cancel_while_continuing_keeps_what_was_written(mode):
    drafter, base = OVERLAP.backends()
    cancel = threading.Event()
    events, trace = decode(drafter, base, settings(mode), cancel,
                           _cancel_when(lambda e: isinstance(e, BaseToken), cancel))
    assert trace.stop_reason == "cancelled" and base.stop_reason == "cancelled"
    assert (trace.switch_index, trace.kept_draft) == (2, "Sure, here")
    assert trace.continuation == " Indeed"
    assert trace.answer == "Sure, here Indeed"
    assert [s["model"] for s in trace.spans] == ["drafter", "base"]
    assert [t.text for t in trace.continuation_tokens] == [" Indeed"]
    assert of(events, PhaseChanged)[-1] == PhaseChanged("done")
