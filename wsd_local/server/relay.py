"""From the decoder's events to what a client is sent, and when.

The answer's state is `LiveAnswer`'s (the one reducer); the relay decides which part
of it is final enough to send:

- draft text goes out as the base model confirms it (`LiveAnswer.confirmed`), never
  text past the switch point that the answer will not keep;
- the base model ends its turn when it writes a turn tag (`[User]`, ...), and a tag
  that begins in the last characters of the kept draft cuts them off: those characters
  wait until the base model has written past them;
- the client's own `stop` strings cut the answer at their first occurrence; text that
  could be the start of one waits until it is clearly not.

Every text delta says which model wrote it; the switch is one mark between the
drafter's text and the base model's. A nudging answer has a hand-over mark before each
turn (who takes it and why: the base model's top-1 probability that decided it), and
the drafter's words go out once the base model has checked them (`WordsKept`). With `logprobs`, each delta carries the
log-probability of the tokens it completes: draft tokens with the base model's check
(`p_j`, the number the switch rule uses), base tokens with the base model's own. A
piece of text released in one event counts as one entry with the log-probability of
the last token that contributed to it. (Nudging: the drafter's words carry the drafter's
own log-probabilities, the base model's tokens its own.)
"""

from __future__ import annotations

import copy
import logging
import math
from dataclasses import dataclass
from typing import Sequence, Union

from ..answer import BASE, DRAFTER, LiveAnswer, window_score_at
from ..events import (BaseToken, DraftRescored, DraftScored, DraftToken, Event, Finished, Handover,
                      SwitchFound, WordsKept)
from ..modes import mode_named
from ..templates import STOP_STRINGS
from ..textstream import earliest_stop, partial_stop_len
from ..trace import TokenRecord, Trace

log = logging.getLogger("wsd_local.server")

#: OpenAI's log-probability for a token too unlikely to represent.
VERY_UNLIKELY = -9999.0
_LONGEST_TURN_TAG = max(len(s) for s in STOP_STRINGS)


@dataclass(frozen=True)
class TokenLogprob:
    token: str
    logprob: float


@dataclass(frozen=True)
class TextDelta:
    model: str  # "drafter" | "base"
    text: str
    logprobs: tuple[TokenLogprob, ...] = ()


@dataclass(frozen=True)
class SwitchMark:
    """The hand-over: draft tokens 0..index (base tokens) are kept."""
    index: int
    fired: bool  # a window reached the threshold (else the whole draft was kept)
    window_score: float
    kept: str
    discarded: str

    def to_dict(self) -> dict:
        return {"index": self.index, "fired": self.fired, "window_score": self.window_score,
                "kept": self.kept, "discarded": self.discarded}

    @classmethod
    def from_trace(cls, trace: Trace) -> "SwitchMark":
        k = trace.switch_index if trace.switch_index is not None else -1
        return cls(k, trace.switch_fired, window_score_at(trace, k), trace.kept_draft, trace.discarded_draft)

    @classmethod
    def of(cls, answer: LiveAnswer) -> "SwitchMark | None":
        """The switch of the answer so far (the trace's, once finished), if known."""
        trace = answer.trace
        if trace is not None:
            return cls.from_trace(trace) if trace.switch_index is not None else None
        found = answer.switch
        if found is None:
            return None
        return cls(found.index, found.fired, found.window_score, found.kept_text, found.discarded_text)


@dataclass(frozen=True)
class HandoverMark:
    """Nudging: a turn begins here (`nudge_rule.HANDOVER_REASONS`)."""
    index: int  # characters of the answer before it
    to_model: str
    reason: str
    base_top_prob: float | None
    base_token: str

    def to_dict(self) -> dict:
        return {"index": self.index, "to_model": self.to_model, "reason": self.reason,
                "base_top_prob": self.base_top_prob, "base_token": self.base_token}


Out = Union[TextDelta, SwitchMark, HandoverMark]


@dataclass
class _Token:
    start: int  # character offset in the answer
    text: str
    logprob: float | None  # None: known only from the trace at the end

    @property
    def end(self) -> int:
        return self.start + len(self.text)


class AnswerRelay:
    """Feed every event but the last with `feed`, then the trace with `finish`."""

    def __init__(self, mode: str, stops: Sequence[str] = (), logprobs: bool = False) -> None:
        self.answer = LiveAnswer(mode=mode)
        self.mode = mode_named(mode)
        self.stops = tuple(s for s in stops if s)
        self.want_logprobs = logprobs
        self.sent = ""  # the text the client has been sent
        self.stopped_by_client = False  # one of the client's stop strings was reached
        self._tokens: list[_Token] = []  # the answer's tokens in order (draft, then base)
        self._lp_next = 0  # next entry of _tokens to send a log-probability for
        self._lp_char = 0  # characters of the answer whose log-probabilities were sent
        self._last_drafter_logprob = 0.0
        self._switch_sent = False
        self._mismatch_logged = False
        self._turn_marks = 0  # nudging: turns whose hand-over mark went out
        self._drafted: list[tuple[str, float]] = []  # nudging: this turn's drafter tokens

    # -- input -------------------------------------------------------------------------
    def feed(self, event: Event) -> list[Out]:
        if isinstance(event, Finished):
            raise ValueError("give the last event's trace to finish()")
        if self.stopped_by_client:
            return []  # the engine is being stopped; nothing more goes out
        self.answer.apply(event)
        self._track_tokens(event)
        return self._release(final=False)

    def finish(self, trace: Trace) -> tuple[Trace, list[Out]]:
        """The last deltas, and the trace of the answer the client got: cut at the
        client's stop string when one was reached."""
        outs: list[Out] = []
        if not self.stopped_by_client:
            self.answer.finish(trace)
            last = trace.continuation_tokens[-1].logprob if trace.continuation_tokens else 0.0
            for token in self._tokens:
                if token.logprob is None:
                    token.logprob = last
            outs = self._release(final=True)
        if self.stopped_by_client:
            trace = cut_trace(trace, len(self.sent))
        elif trace.answer != self.sent:
            self._log_mismatch(trace.answer)
        return trace, outs

    # -- what may go out ---------------------------------------------------------------
    def _visible(self, final: bool) -> str:
        """The answer as far as it is certain now."""
        a = self.answer
        if final:
            return a.text
        if self.mode.hands_over:  # the turns so far, less a turn tag the next turn could cut
            return _before_turn_tag(a.text)
        if self.mode.alone == DRAFTER:
            return a.draft
        if self.mode.alone == BASE:
            return a.continuation
        if a.continuation:
            return a.kept + a.continuation
        return _before_turn_tag(a.kept if a.switched else a.confirmed)

    def _drafter_chars(self, final: bool) -> float:
        """Characters of the answer written by the drafter (infinite until known)."""
        a = self.answer
        if final:
            assert a.trace is not None
            return a.trace.switch_char
        if self.mode.alone == BASE:
            return 0
        if self.mode.alone == DRAFTER or not a.switched:
            return math.inf
        return len(a.kept)

    def _release(self, final: bool) -> list[Out]:
        visible = self._visible(final)
        done = len(self.sent)
        if not visible.startswith(self.sent):
            if final:
                self._log_mismatch(visible)
            return []
        limit = len(visible)
        if self.stops:
            longest = max(len(s) for s in self.stops)
            hit = earliest_stop(visible, self.stops, max(0, done - longest + 1))
            if hit is not None:
                limit, self.stopped_by_client = max(hit, done), True
            elif not final:
                limit -= partial_stop_len(visible, self.stops)
        outs: list[Out] = []
        if self.mode.hands_over:
            outs = self._turn_deltas(visible, done, limit, final)
            self.sent = visible[:max(limit, len(self.sent))]
            return outs
        boundary = self._drafter_chars(final)
        drafter_end = int(min(limit, boundary))
        if drafter_end > done:
            outs.append(self._delta(DRAFTER, visible, done, drafter_end, final))
            done = drafter_end
        switch = None if self._switch_sent else SwitchMark.of(self.answer)
        if switch is not None and done >= boundary:
            outs.append(switch)
            self._switch_sent = True
        if limit > done:
            outs.append(self._delta(BASE, visible, done, limit, final))
        self.sent = visible[:max(limit, len(self.sent))]
        return outs

    def _turn_deltas(self, visible: str, done: int, limit: int, final: bool) -> list[Out]:
        """Nudging: each turn's hand-over mark, then its text in its model's name."""
        outs: list[Out] = []
        for i, turn in enumerate(self.answer.turns()):
            if turn.start > limit:
                break
            if i >= self._turn_marks:
                outs.append(HandoverMark(turn.start, turn.model, turn.reason, turn.base_top_prob,
                                         turn.base_token))
                self._turn_marks = i + 1
            lo, hi = max(done, turn.start), min(limit, turn.start + len(turn.text))
            if hi > lo:
                outs.append(self._delta(turn.model, visible, lo, hi, final))
        return outs

    def _delta(self, model: str, text: str, start: int, end: int, final: bool) -> TextDelta:
        logprobs = self._take_logprobs(end, final or self.stopped_by_client) if self.want_logprobs else ()
        return TextDelta(model, text[start:end], logprobs)

    # -- log-probabilities ---------------------------------------------------------------
    def _track_tokens(self, event: Event) -> None:
        a, tokens = self.answer, self._tokens
        if self.mode.hands_over:
            self._track_turn_tokens(event)
        elif isinstance(event, DraftScored):
            del tokens[event.index:]
            start = tokens[-1].end if tokens else 0
            logprob = math.log(event.prob) if event.prob > 0 else VERY_UNLIKELY
            tokens.append(_Token(start, event.text, logprob))
        elif isinstance(event, DraftRescored):
            del tokens[event.index:]
        elif isinstance(event, SwitchFound):
            del tokens[event.index + 1:]
        elif isinstance(event, BaseToken):
            # -1: text held back and flushed at the end; its last token is in the trace.
            logprob = event.logprob if event.token_id >= 0 else None
            end = len(a.kept) + len(a.continuation)
            tokens.append(_Token(end - len(event.text), event.text, logprob))
        elif isinstance(event, DraftToken) and self.mode.alone == DRAFTER:
            if event.token_id >= 0:
                self._last_drafter_logprob = event.logprob
            if event.text:
                tokens.append(_Token(len(a.draft) - len(event.text), event.text,
                                     event.logprob if event.token_id >= 0 else self._last_drafter_logprob))
        self._lp_next = min(self._lp_next, len(tokens))

    def _track_turn_tokens(self, event: Event) -> None:
        """Nudging: the drafter's kept words with its tokens' log-probabilities, the
        base model's tokens with its own."""
        end = len(self.answer.text)
        if isinstance(event, Handover):
            self._drafted = []
        elif isinstance(event, DraftToken):
            last = self._drafted[-1][1] if self._drafted else 0.0
            self._drafted.append((event.text, event.logprob if event.token_id >= 0 else last))
        elif isinstance(event, WordsKept):
            start, left = end - len(event.text), len(event.text)
            for text, logprob in self._drafted:
                if left <= 0:
                    break
                piece = text[:left]
                if piece:
                    self._tokens.append(_Token(start, piece, logprob))
                start, left = start + len(piece), left - len(piece)
            self._drafted = []
        elif isinstance(event, BaseToken):
            logprob = event.logprob if event.token_id >= 0 else None
            self._tokens.append(_Token(end - len(event.text), event.text, logprob))

    def _take_logprobs(self, limit: int, final: bool) -> tuple[TokenLogprob, ...]:
        """Entries for the tokens that end within the first `limit` characters (at the
        end: every token that starts there, cut to it)."""
        out: list[TokenLogprob] = []
        tokens = self._tokens
        while self._lp_next < len(tokens):
            token = tokens[self._lp_next]
            if token.start < self._lp_char or not token.text:
                self._lp_next += 1  # re-scored text already covered, or a partial character
                continue
            if token.end > limit or token.logprob is None:
                if not final or token.start >= limit:
                    break
            text = token.text[: limit - token.start]
            logprob = token.logprob if token.logprob is not None else 0.0
            out.append(TokenLogprob(text, logprob))
            self._lp_char = token.start + len(text)
            self._lp_next += 1
        return tuple(out)

    def _log_mismatch(self, final_text: str) -> None:
        # Online re-tokenization can, very rarely, move a token boundary across text
        # already sent; the trace (stored, and in the last chunk's spans) is authoritative.
        if not self._mismatch_logged:
            self._mismatch_logged = True
            log.warning("streamed text differs from the final answer after %d characters",
                        len(_common_prefix(self.sent, final_text)))


def _before_turn_tag(text: str) -> str:
    """`text` without the tail that a turn tag written next by the base model would cut
    off (see `TextStream`: a stop string that begins in the kept draft cuts it)."""
    hit = earliest_stop(text, STOP_STRINGS, max(0, len(text) - _LONGEST_TURN_TAG))
    if hit is not None:
        return text[:hit]
    return text[: len(text) - partial_stop_len(text, STOP_STRINGS)]


def _common_prefix(a: str, b: str) -> str:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return a[:n]


def cut_trace(trace: Trace, length: int) -> Trace:
    """The trace of the answer cut to its first `length` characters (a client's stop
    string): answer, kept draft, continuation, spans and the base model's tokens end
    there; what the models did (draft, scores, switch) stays as it was."""
    t = copy.copy(trace)
    if mode_named(trace.mode).hands_over:
        return _cut_turns(t, trace, length)
    answer = trace.answer[:length]
    kept = trace.kept_draft[:length]
    continuation = answer[len(kept):]
    t.answer, t.kept_draft, t.continuation, t.switch_char = answer, kept, continuation, len(kept)
    t.spans = [{"model": m, "text": x} for m, x in ((DRAFTER, kept), (BASE, continuation)) if x]
    t.continuation_tokens = _cut_records(trace.continuation_tokens, len(continuation))
    t.continuation_near_ties = [i for i in trace.continuation_near_ties if i < len(t.continuation_tokens)]
    t.counts = dict(trace.counts)
    t.counts["base_tokens"] = len(t.continuation_tokens)
    if len(kept) < len(trace.kept_draft) and mode_named(trace.mode).switches:
        scored = trace.draft_tokens if trace.switch_index is None else trace.draft_tokens[: trace.switch_index + 1]
        t.counts["kept_draft_tokens"] = len(_cut_records(scored, len(kept)))
    t.stop_reason = "stop_string"
    t.check()
    return t


def _cut_turns(t: Trace, trace: Trace, length: int) -> Trace:
    """A nudging trace cut to `length` characters: its turns (with their hand-over
    records) up to there, the base model's tokens of the turns kept."""
    spans, records, used, at = [], [], 0, 0
    for span in trace.spans:
        if used >= length and span["text"]:
            break
        cut = dict(span, text=span["text"][: length - used])
        own = trace.continuation_tokens[at: at + span["tokens"]] if span["model"] == BASE else []
        at += len(own)
        if own:
            own = _cut_records(own, len(cut["text"]))
            cut["tokens"], cut["top_probs"] = len(own), span["top_probs"][: len(own)]
            records += own
        spans.append(cut)
        used += len(cut["text"])
    t.spans, t.answer = spans, trace.answer[:length]
    t.kept_draft = trace.kept_draft[:length]
    t.switch_char = len(t.kept_draft)
    t.continuation = t.answer[t.switch_char:]
    t.continuation_tokens = records
    t.counts = dict(trace.counts, base_tokens=len(records), turns=len(spans),
                    handovers=sum(1 for a, b in zip(spans, spans[1:]) if a["model"] != b["model"]))
    t.stop_reason = "stop_string"
    t.check()
    return t


def _cut_records(records: Sequence[TokenRecord], length: int) -> list[TokenRecord]:
    """The tokens whose text pieces cover the first `length` characters."""
    out: list[TokenRecord] = []
    used = 0
    for record in records:
        if used >= length and record.text:
            break
        piece = record.text[: length - used]
        out.append(TokenRecord(record.id, piece, record.logprob))
        used += len(piece)
    return out


__all__ = ["AnswerRelay", "TextDelta", "SwitchMark", "HandoverMark", "TokenLogprob", "cut_trace", "Out"]
