"""Nudging: the base model writes, the drafter writes a few words wherever it is unsure.

One answer is a sequence of turns (docs/NUDGING.md has the algorithm and its source):

1. The drafter writes up to `nudge_tokens` tokens from its chat template plus the answer
   so far (`DraftToken` events: a proposal, not yet part of the answer).
2. Split at spaces, its first word is kept; before each later word the base model is
   asked for its next token (phase "checking"). At the first boundary where that token
   is likely enough (top-1 probability >= `nudge_threshold`) or starts the drafter's
   next word, the words so far are kept (`WordsKept`) and the base model takes over
   (`Handover`), continuing from that very probe. If no boundary qualifies, every word
   but the last is kept and the drafter writes again.
3. The base model writes while its top-1 probability stays >= the threshold; the first
   token below it is dropped and the drafter writes the next words (`Handover`). Its
   turn also ends at end of text or a turn tag (the drafter decides whether the answer
   goes on) and where it repeats itself (the reference's two chunk checks).

The answer ends when the drafter ends its turn with end of text, at `max_tokens`
(drafter tokens kept + base tokens), at the context size, after MAX_ROUNDS drafter turns,
or when the drafter keeps the same words MAX_REPEATED_WORDS + 1 times in a row.

Both models see the answer as text (so their tokenizers may differ): each turn's context
is the model's own prompt (`decoder.drafter_prompt`, `templates.base_frame`) plus the
answer so far tokenized by that model. Each backend reuses the longest prefix it holds
in its KV cache, so a turn evaluates only what the other model wrote since (and the
model's own one-token steps, which batch-invariant evaluation recomputes padded).
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Generator, Iterator, Sequence

from . import nudge_rule as rule
from .backend.protocol import Backend, GeneratedToken
from .settings import DecodingSettings
from .decoder import drafter_prompt
from .events import (BaseToken, DraftToken, Event, Finished, Handover, PhaseChanged,
                     WordsKept)
from .messages import Message
from .templates import STOP_STRINGS, base_frame
from .textstream import TextStream, assign_piece_texts
from .trace import TokenRecord, Trace


@dataclass
class TurnInProgress:
    """One span of the answer: who wrote it, why the turn began, what happened in it."""

    model: str
    reason: str
    base_top_prob: float | None = None
    base_token: str = ""
    token_index: int = 0  # base tokens in the answer before this turn
    text: str = ""  # what enters the answer
    # drafter turns
    written: str = ""  # everything the drafter wrote in this turn
    tokens: int = 0  # drafter tokens written
    kept_tokens: int = 0  # of them, tokens of the kept words
    probes: list[dict[str, Any]] = field(default_factory=list)
    ends: list[int] = field(default_factory=list, repr=False)  # text length after each token
    # base turns
    records: list[TokenRecord] = field(default_factory=list)
    top_probs: list[float] = field(default_factory=list)

    def kept_through(self, n_chars: int) -> int:
        """Drafter tokens of this turn that begin within its first n_chars characters."""
        count, start = 0, 0
        for end in self.ends:
            if start >= n_chars:
                break
            count += 1
            start = end
        return count

    def to_dict(self) -> dict[str, Any]:
        span: dict[str, Any] = {
            "model": self.model, "text": self.text,
            "handover": {"reason": self.reason, "base_top_prob": self.base_top_prob,
                         "base_token": self.base_token, "token_index": self.token_index}}
        if self.model == rule.DRAFTER:
            span.update(written=self.written, tokens=self.tokens, kept_tokens=self.kept_tokens,
                        probes=self.probes)
        else:
            span.update(tokens=len(self.records), top_probs=self.top_probs)
        return span


@dataclass
class _Next:
    """How the next turn begins, or that the answer ends (`stop`)."""
    reason: str = "start"
    base_top_prob: float | None = None
    base_token: str = ""
    stop: str | None = None


@dataclass
class _Checked:
    """The outcome of checking a drafter turn's words: where the base model took over
    (with the probe it takes over from), or that it declined, or that the answer ends."""
    taken_at: int | None = None
    gen: Generator[GeneratedToken, None, None] | None = None
    first: GeneratedToken | None = None
    ended: bool = False  # the base model would end the answer at that boundary
    stop: str | None = None


class NudgingDecoder:
    """One nudging answer. Create, then iterate `events()`; the last event is `Finished`.
    The constructor and protocol of every decoder (`modes.mode.AnswerDecoder`)."""

    def __init__(self, drafter: Backend, base: Backend, messages: Sequence[Message],
                 settings: DecodingSettings, cancel: threading.Event | None = None,
                 backend_name: str = "") -> None:
        self.drafter, self.base = drafter, base
        self.messages = list(messages)
        self.settings = settings
        self.cancel = cancel or threading.Event()
        self.turns: list[TurnInProgress] = []
        self.seconds: dict[str, float] = {}
        self.counts = {"draft_tokens": 0, "probes": 0, "base_tokens_generated": 0}
        models = {m.identity.role: m.identity for m in (drafter, base)}
        self.trace = Trace(settings=settings, messages=[m.to_dict() for m in messages],
                           models=models, backend=backend_name)

    # -- the answer so far -------------------------------------------------------------
    @property
    def answer(self) -> str:
        return "".join(t.text for t in self.turns)

    @property
    def base_records(self) -> list[TokenRecord]:
        return [r for t in self.turns for r in t.records]

    @property
    def used(self) -> int:
        """Answer tokens so far: the drafter's kept tokens plus the base model's."""
        return sum(t.kept_tokens if t.model == rule.DRAFTER else len(t.records) for t in self.turns)

    def _time(self, key: str, since: float) -> None:
        self.seconds[key] = self.seconds.get(key, 0.0) + time.perf_counter() - since

    # -- entry ---------------------------------------------------------------------
    def events(self) -> Iterator[Event]:
        start = time.perf_counter()
        s = self.settings
        self.drafter_prompt = drafter_prompt(self.drafter, self.messages)
        self.base_prompt = self.base.tokenize(base_frame(self.messages), add_bos=True)
        self.drafter.check_fits(len(self.drafter_prompt) + 1)
        self.base.check_fits(len(self.base_prompt) + 1)
        nxt = _Next()
        last_words: str | None = None
        repeats = rounds = 0
        while True:
            if self.cancel.is_set():
                nxt = _Next(stop="cancelled")
            elif self.used >= s.max_tokens:
                nxt = _Next(stop="max_tokens")
            elif rounds >= rule.MAX_ROUNDS:
                nxt = _Next(stop="max_rounds")
            if nxt.stop is not None:
                break
            rounds += 1
            turn = self._begin(rule.DRAFTER, nxt)
            yield self._handover_event(turn)
            nxt = yield from self._drafter_turn(turn, seed=s.seed + 2 * rounds)
            if nxt.stop is not None:
                yield WordsKept(turn.text, "")
                continue
            checked = yield from self._check_words(turn, seed=s.seed + 2 * rounds + 1)
            # The same words kept round after round: the reference's loop guard.
            if turn.text == last_words and checked.stop is None:
                repeats += 1
            else:
                last_words, repeats = turn.text, 0
            if repeats >= rule.MAX_REPEATED_WORDS:
                if checked.gen is not None:
                    checked.gen.close()
                turn.text, turn.kept_tokens = "", 0
                checked.stop = "repetition"
            yield WordsKept(turn.text, turn.written[len(turn.text):])
            if checked.stop is not None:
                nxt = _Next(stop=checked.stop)
            elif checked.taken_at is None:
                nxt = _Next("base_declined")
            elif checked.gen is None or checked.first is None:
                nxt = _Next("base_ended")
            else:
                probe = turn.probes[-1]
                base_turn = self._begin(rule.BASE, _Next(
                    "base_agrees" if probe["agrees"] else "base_confident",
                    probe["top_prob"], probe["token"]))
                yield self._handover_event(base_turn)
                nxt = yield from self._base_turn(base_turn, checked.gen, checked.first)
        self.seconds["total_s"] = time.perf_counter() - start
        self._finish(nxt.stop or "eos")
        yield PhaseChanged("done")
        yield Finished(self.trace)

    def _begin(self, model: str, how: _Next) -> TurnInProgress:
        turn = TurnInProgress(model, how.reason, how.base_top_prob, how.base_token,
                    token_index=len(self.base_records))
        self.turns.append(turn)
        return turn

    def _handover_event(self, turn: TurnInProgress) -> Handover:
        before = len(self.answer) - len(turn.text)
        return Handover(before, turn.model, turn.reason, turn.base_top_prob, turn.base_token,
                        turn.token_index)

    # -- the drafter's turn ----------------------------------------------------------------
    def _drafter_turn(self, turn: TurnInProgress, seed: int) -> Generator[Event, None, _Next]:
        """The drafter writes its turn; a stop when the answer ends in it (then all of
        it is kept), else a `_Next` without a stop: its words are to be checked."""
        s = self.settings
        context = self.drafter_prompt + self.drafter.tokenize(self.answer, add_bos=False)
        if len(context) >= self.drafter.n_ctx:
            return _Next(stop="context_full")
        limit = min(s.nudge_tokens, s.max_tokens - self.used)
        yield PhaseChanged("drafting")
        since = time.perf_counter()
        stream = TextStream()
        gen = self.drafter.generate(context, limit, temperature=s.temperature, top_p=s.top_p,
                                    seed=seed, cancel=self.cancel)
        try:
            for tok in gen:
                new = stream.push(self.drafter.token_bytes(tok.id))
                turn.ends.append(len(stream.text))
                if new:
                    yield DraftToken(new, tok.id, tok.logprob)
        finally:
            gen.close()
        self._time("draft_s", since)
        stop = "cancelled" if self.cancel.is_set() else self.drafter.stop_reason
        turn.tokens = len(turn.ends)
        self.counts["draft_tokens"] += turn.tokens
        ending = stop if stop != "max_tokens" else ("max_tokens" if limit < s.nudge_tokens else None)
        if ending is None:
            turn.written = stream.text  # a character cut at the turn's end is written again
            return _Next()
        if ending == "eos":
            tail = stream.finish()  # bytes of a character cut off at the very end are dropped
            if tail:
                yield DraftToken(tail, -1, 0.0)
        turn.written = turn.text = stream.text
        turn.kept_tokens = turn.tokens
        return _Next(stop=ending)

    # -- checking its words ----------------------------------------------------------------
    def _check_words(self, turn: TurnInProgress, seed: int) -> Generator[Event, None, _Checked]:
        """Ask the base model for its next token at each word boundary of the turn; keep
        the words up to the first boundary where it takes over (its probe continues as
        its turn), else all but the last."""
        s = self.settings
        prefix, words = rule.split_words(turn.written)
        answer_before = self.answer
        points = rule.probe_points(words)
        if points:
            yield PhaseChanged("checking")
        since = time.perf_counter()
        checked = _Checked()
        for n in points:
            kept = rule.words_text(prefix, words, n)
            context = self.base_prompt + self.base.tokenize(answer_before + kept, add_bos=False)
            if len(context) >= self.base.n_ctx:
                checked = _Checked(taken_at=n, stop="context_full")
                break
            budget = s.max_tokens - self.used - turn.kept_through(len(kept))
            gen = self.base.generate(context, budget, temperature=s.temperature, top_p=s.top_p,
                                     seed=seed, cancel=self.cancel)
            tok = next(gen, None)
            self.counts["probes"] += 1
            if tok is None:
                gen.close()
                stop = "cancelled" if self.cancel.is_set() else self.base.stop_reason
                if stop != "eos":
                    checked = _Checked(taken_at=n, stop=stop)
                    break
                # The base model would end the answer here: the drafter decides, next turn.
                turn.probes.append({"words": n, "top_prob": None, "token": "", "agrees": False,
                                    "ended": True})
                checked = _Checked(taken_at=n, ended=True)
                break
            p = math.exp(tok.best_logprob)
            token_bytes = self.base.token_bytes(tok.id)
            agreed = rule.agrees(words[n], token_bytes)
            turn.probes.append({"words": n, "top_prob": p,
                                "token": token_bytes.decode("utf-8", errors="replace"),
                                "agrees": agreed})
            if rule.takes_over(p, agreed, s.nudge_threshold):
                checked = _Checked(taken_at=n, gen=gen, first=tok)
                break
            gen.close()
        self._time("score_s", since)
        turn.text = rule.words_text(prefix, words, rule.words_kept(len(words), checked.taken_at))
        turn.kept_tokens = turn.kept_through(len(turn.text))
        return checked

    # -- the base model's turn ---------------------------------------------------------------
    def _base_turn(self, turn: TurnInProgress, gen: Generator[GeneratedToken, None, None],
                   first: GeneratedToken) -> Generator[Event, None, _Next]:
        """The base model writes from the probe it took over with, token by token, until
        it is unsure, ends, repeats itself or the answer ends."""
        s = self.settings
        yield PhaseChanged("continuing")
        since = time.perf_counter()
        answer_before = self.answer
        stream = TextStream(stops=STOP_STRINGS, prefix=answer_before)
        chunk = _Chunk(start=0)
        nxt: _Next | None = None
        token: GeneratedToken | None = first
        index = 0
        try:
            while token is not None:
                p = math.exp(token.best_logprob)
                if index > 0 and rule.unsure(p, s.nudge_threshold):
                    piece = self.base.token_bytes(token.id).decode("utf-8", errors="replace")
                    nxt = _Next("base_unsure", p, piece)
                    break
                self.counts["base_tokens_generated"] += 1
                turn.records.append(TokenRecord(token.id, "", token.logprob))
                turn.top_probs.append(p)
                chunk.add(stream.push(self.base.token_bytes(token.id)), token)
                if stream.stopped:
                    break
                if chunk.done(index):
                    if index > 0 and self._repeats(chunk, stream.final_text, answer_before, complete=True):
                        nxt = _Next("base_repeating")
                        break
                    yield from chunk.release()
                    chunk = _Chunk(start=stream.shown)
                elif not chunk.may_repeat(stream.text[: stream.shown], answer_before):
                    yield from chunk.release()
                index += 1
                token = next(gen, None)
        finally:
            gen.close()
        self._time("continue_s", since)
        if nxt is None:
            if self.cancel.is_set():
                nxt = _Next(stop="cancelled")
            elif stream.stopped or self.base.stop_reason == "eos":
                nxt = _Next("base_ended")
            else:
                nxt = _Next(stop=self.base.stop_reason)
        text = stream.final_text
        if nxt.reason == "base_repeating" or (
                nxt.stop is None and self._repeats(chunk, text, answer_before,
                                                   complete=nxt.reason == "base_ended")):
            nxt = _Next("base_repeating")
            chunk.drop(turn)
            text = text[: chunk.start]
        else:
            if not stream.stopped:
                chunk.add(stream.finish(), None)  # held-back text (a cut character's bytes are dropped)
                text = stream.final_text
            yield from chunk.release()
        self._close_base_turn(turn, text, stream.prefix_cut)
        return nxt

    def _repeats(self, chunk: "_Chunk", text: str, answer_before: str, complete: bool) -> bool:
        """The reference's checks on a chunk of the base model's turn: a complete chunk
        it already wrote in this turn, or one of several words already in the answer.
        A chunk already shown is never taken back."""
        if chunk.released or chunk.tokens == 0:
            return False
        piece, turn_before = text[chunk.start:], text[: chunk.start]
        return ((complete and rule.repeats_turn(piece, turn_before))
                or rule.repeats_answer(piece, answer_before + turn_before))

    def _close_base_turn(self, turn: TurnInProgress, text: str, prefix_cut: int | None) -> None:
        """The turn's text and its tokens' pieces; a turn tag that began in the words
        before the turn cuts them too."""
        if prefix_cut is not None:
            used = 0
            for earlier in self.turns[:-1]:
                earlier.text = earlier.text[: max(0, prefix_cut - used)]
                used += len(earlier.text)
            text = ""
        kept = assign_piece_texts(turn.records, text, self.base.token_bytes)
        del turn.records[kept:], turn.top_probs[kept:]
        turn.text = text

    # -- the trace -----------------------------------------------------------------------
    def _finish(self, stop: str) -> None:
        t = self.trace
        turns = self.turns
        t.spans = [turn.to_dict() for turn in turns]
        t.answer = self.answer
        # The drafter's opening (before the base model first took over) is the answer's
        # `kept_draft`, as in WSD; who wrote the rest is in the spans.
        opening = ""
        for turn in turns:
            if turn.model != rule.DRAFTER:
                break
            opening += turn.text
        t.kept_draft = t.draft_text = opening
        t.switch_char = len(opening)
        t.continuation = t.answer[len(opening):]
        t.continuation_tokens = self.base_records
        t.stop_reason = stop
        drafter_turns = [x for x in turns if x.model == rule.DRAFTER]
        t.counts = {
            **self.counts,
            "kept_draft_tokens": sum(x.kept_tokens for x in drafter_turns),
            "base_tokens": len(t.continuation_tokens),
            "prompt_tokens_drafter": len(self.drafter_prompt),
            "prompt_tokens_base": len(self.base_prompt),
            "turns": len(turns),
            "handovers": sum(1 for a, b in zip(turns, turns[1:]) if a.model != b.model),
        }
        t.timings = {k: round(v, 6) for k, v in self.seconds.items()}
        t.check()


@dataclass
class _Chunk:
    """Base tokens since the last chunk boundary. Their text is held back while it could
    still turn out to be a repetition (which the checks would drop); once it cannot, it
    goes out token by token. The token the base model took over with is a chunk alone."""

    start: int  # where the chunk begins in the turn's text (characters released before it)
    tokens: int = 0
    pending: list[BaseToken] = field(default_factory=list)
    released: bool = False

    def add(self, text: str, token: GeneratedToken | None) -> None:
        if token is not None:
            self.tokens += 1
            self.pending.append(BaseToken(text, token.id, token.logprob))
        elif text:  # held-back text flushed at the end, not a token
            self.pending.append(BaseToken(text, -1, 0.0))

    def done(self, index: int) -> bool:
        return index == 0 or rule.chunk_end(index)

    def may_repeat(self, turn_text: str, answer_before: str) -> bool:
        """The chunk so far (`turn_text`: the turn's text released so far) occurs in the
        text before it: it could still be a repetition. Once it does not, no longer
        chunk can be one."""
        if self.released:
            return False
        return turn_text[self.start:] in answer_before + turn_text[: self.start]

    def release(self) -> Iterator[BaseToken]:
        self.released = True
        pending, self.pending = self.pending, []
        return (e for e in pending if e.text)

    def drop(self, turn: TurnInProgress) -> None:
        """Forget the chunk: its text was never shown; its tokens leave the turn."""
        del turn.records[len(turn.records) - self.tokens:]
        del turn.top_probs[len(turn.top_probs) - self.tokens:]
        self.pending.clear()


__all__ = ["NudgingDecoder", "TurnInProgress"]
