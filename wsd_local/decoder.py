"""The controller: draft, check, switch, continue, as a stream of typed events.

Modes:
- `wsd` (online): the drafter writes `chunk_tokens` at a time; after each chunk the
  base model scores the newly stable draft tokens (its KV cache keeps the rest); once a
  window reaches the threshold, drafting stops and the base model continues from its
  cache. The rule is causal, so with greedy decoding this finds the same switch as
  `paper` mode while drafting past it only until the switch token is stable, then to
  the end of that chunk (docs/DESIGN.md, "Online stability").
- `paper`: the reference pipeline: draft everything, score it in one pass, switch,
  continue.
- `base` / `draft`: one model alone (plain frame / chat template), for comparison.

A weak-to-strong answer is draft -> check -> switch -> continue (`_weak_to_strong`);
the base model's side of the check (re-tokenization, frame overlap, scores, the switch
detector) is `check.DraftChecker`.
"""

from __future__ import annotations

import codecs
import threading
import time
from dataclasses import dataclass, field
from typing import Iterator, Sequence

from .backend.protocol import Backend, served
from .check import DraftChecker, shared_vocabulary, token_cover
from .settings import DecodingSettings
from .events import BaseToken, DraftToken, Event, Finished, PhaseChanged, SwitchFound
from .handoff import cleans_spaces, handed_text, settled_length
from .messages import Message
from .modes import BASE, DRAFTER, mode_named
from .repetition import RepetitionGuard
from .switch import TOKEN_NEAR_TIE, near_ties
from .templates import STOP_STRINGS, base_frame, render_chat
from .textstream import TextStream, assign_piece_texts, earliest_stop, partial_stop_len
from .trace import TokenRecord, Trace


@dataclass
class _Timer:
    seconds: dict[str, float] = field(default_factory=dict)

    def add(self, phase: str, since: float) -> float:
        now = time.perf_counter()
        self.seconds[phase] = self.seconds.get(phase, 0.0) + (now - since)
        return now


def drafter_prompt(drafter: Backend, messages: Sequence[Message]) -> list[int]:
    """The drafter's prompt tokens: the conversation in its chat template (applied by
    its server for a drafter on a server)."""
    server = served(drafter)
    if server is not None:
        return server.chat_prompt(messages)
    bos = drafter.special_token_text("bos")
    text = render_chat(drafter.chat_template, messages, bos, drafter.special_token_text("eos"))
    # Templates that write the BOS text themselves must not get a second one.
    add_bos = not (bos and text.startswith(bos))
    return drafter.tokenize(text, add_bos=add_bos, special=True)


class _Draft:
    """What the drafter has written: token ids and whole-character text."""

    def __init__(self) -> None:
        self.ids: list[int] = []
        self.ends: list[int] = []  # text length after each token
        self.stream = TextStream()

    def add(self, token_bytes: bytes, token_id: int) -> str:
        self.ids.append(token_id)
        new = self.stream.push(token_bytes)
        self.ends.append(len(self.stream.text))
        return new

    @classmethod
    def from_text(cls, text: str) -> "_Draft":
        """A stored draft (a re-run): its text, without the drafter's tokens."""
        draft = cls()
        draft.stream.text = text
        draft.stream.shown = len(text)
        return draft

    @property
    def text(self) -> str:
        return self.stream.text

    def finish(self) -> str:
        return self.stream.finish()

    def tokens_past(self, n_chars: int) -> int:
        """Drafter tokens written after the one that completes the first n_chars."""
        for i, end in enumerate(self.ends):
            if end >= n_chars:
                return len(self.ids) - (i + 1) if n_chars > 0 else len(self.ids)
        return 0


class Decoder:
    """One answer in a weak-to-strong or single-model mode (`modes.mode.AnswerDecoder`).
    Create, then iterate `events()`; the last event is `Finished`."""

    def __init__(self, drafter: Backend | None, base: Backend | None,
                 messages: Sequence[Message], settings: DecodingSettings,
                 cancel: threading.Event | None = None, backend_name: str = "",
                 replay: Trace | None = None, forced_switch: int | None = None) -> None:
        self.drafter, self.base = drafter, base
        # Replay: reuse a stored answer's draft and scores; switch at `forced_switch`,
        # or where the settings' rule finds it.
        self.replay, self.forced_switch = replay, forced_switch
        self.messages = list(messages)
        self.settings = settings.resolved()  # `auto` values made concrete, as recorded
        self.cancel = cancel or threading.Event()
        self.timer = _Timer()
        self.drafter_stop = ""
        self.ids_handoff = False  # the drafter's ids are the draft tokens (handoff ids, one vocabulary)
        self.cleans_spaces = False  # the drafter's decoding rewrites spaces (text hand-over)
        self._drafted = 0  # drafter tokens of a replayed answer, stored and new
        self._resumed = False  # a replayed draft the drafter wrote on
        models = {m.identity.role: m.identity for m in (drafter, base) if m is not None}
        self.trace = Trace(settings=self.settings, messages=[m.to_dict() for m in messages],
                           models=models, backend=backend_name, forced_switch=forced_switch)

    # -- entry ---------------------------------------------------------------------
    def events(self) -> Iterator[Event]:
        start = time.perf_counter()
        mode = mode_named(self.settings.mode)
        if mode.alone == BASE:
            yield from self._base_only()
        elif mode.alone == DRAFTER:
            yield from self._draft_only()
        else:
            yield from self._weak_to_strong(online=mode.online)
        self.timer.seconds["total_s"] = time.perf_counter() - start
        self.trace.timings = {k: round(v, 6) for k, v in self.timer.seconds.items()}
        self.trace.check()
        yield PhaseChanged("done")
        yield Finished(self.trace)

    # -- one model alone -------------------------------------------------------------
    def _base_only(self) -> Iterator[Event]:
        assert self.base is not None
        prompt = self.base.tokenize(base_frame(self.messages), add_bos=True)
        self.trace.counts["prompt_tokens_base"] = len(prompt)
        yield PhaseChanged("continuing")
        yield from self._continue(prompt, kept_text="", decoder=None, budget=self.settings.max_tokens)

    def _draft_only(self) -> Iterator[Event]:
        assert self.drafter is not None
        prompt = drafter_prompt(self.drafter, self.messages)
        self.trace.counts["prompt_tokens_drafter"] = len(prompt)
        draft = _Draft()
        yield PhaseChanged("drafting")
        guard = RepetitionGuard(self.settings.repetition_stop)
        yield from self._run_drafter(draft, prompt, self.settings.max_tokens, guard=guard)
        text = draft.text
        self._finish_answer(kept_text=text, continuation="", spans_model="drafter")
        self.trace.draft_text = text
        self.trace.stop_reason = "cancelled" if self.cancel.is_set() else self.drafter_stop
        self.trace.counts["draft_tokens"] = len(draft.ids)

    # -- weak-to-strong: draft -> check -> switch -> continue --------------------------
    def _weak_to_strong(self, online: bool) -> Iterator[Event]:
        assert self.drafter is not None and self.base is not None
        s = self.settings
        prompt = drafter_prompt(self.drafter, self.messages)
        shared = shared_vocabulary(self.drafter, self.base)
        self.ids_handoff = shared and s.handoff == "ids"
        if not self.ids_handoff:
            self.cleans_spaces = cleans_spaces(self.drafter)
        check = DraftChecker(self.base, base_frame(self.messages), s.window, s.threshold,
                             self.ids_handoff, None if self.ids_handoff else token_cover(self.base),
                             skip_repeats=s.switch_skip_repeats)
        self.base.check_fits(len(check.prompt) + 1)
        self.trace.counts.update(prompt_tokens_drafter=len(prompt),
                                 prompt_tokens_base=len(check.prompt),
                                 shared_vocabulary=int(shared))

        # Draft (online mode checks it as it grows), or take a stored answer's draft.
        if self.replay is not None:
            draft, complete = yield from self._replayed_draft(check, prompt)
        else:
            draft = _Draft()
            yield PhaseChanged("drafting")
            # The draft is part of the answer: it never gets more than the answer's budget.
            yield from self._run_drafter(draft, prompt, min(s.draft_max_tokens, s.max_tokens),
                                         check if online else None, done=lambda: check.fired,
                                         guard=self._draft_guard(""))
            complete = not check.fired  # online mode stops the drafter at the switch
        self.trace.draft_text = self._handed(draft)
        self.trace.counts["draft_tokens"] = len(draft.ids) if self.replay is None else self._drafted
        if self.drafter_stop == "repetition":  # the draft looped (see _draft_guard)
            self.trace.counts["draft_repetition_stop"] = 1

        # Check: paper mode's only step, online mode's last one (the draft is complete).
        if complete and not self.cancel.is_set() and not check.fired and self._needs_final_check:
            yield from self._check_step(check, draft, final=True)
        if self.cancel.is_set():
            return self._stopped_while_drafting(draft, check)
        self.trace.draft_complete = complete

        # Switch.
        k, fired = check.switch_point(self.forced_switch)
        kept = check.keep(k)
        self.trace.switch_index = k
        self.trace.switch_fired = fired
        self.trace.draft_tokens = check.records
        self.trace.near_ties = near_ties(check.detector.probs, s.window, s.threshold, upto=k)
        if s.switch_skip_repeats:  # windows up to k that reached γ in a repeated span
            self.trace.counts["repeat_windows_skipped"] = sum(j <= k for j in check.detector.skipped)
        offset = len(draft.text) - len(draft.text.lstrip()) if not self.ids_handoff else 0
        self.trace.counts.update(draft_tokens_scored=len(check.records), kept_draft_tokens=k + 1,
                                 draft_tokens_past_switch=draft.tokens_past(offset + len(kept.text)))
        score = check.detector.scores[k] if k >= 0 else 0.0

        # The answer ends at the first stop string anywhere, the kept draft included
        # (as the reference cuts its final text): a stop inside the kept draft ends it there.
        cut = earliest_stop(kept.text, STOP_STRINGS)
        if cut is not None:
            self._cut_kept_pieces(k, cut)
            yield self._switch_event(k, fired, score, kept.text[:cut])
            self.trace.stop_reason = "stop_string"
            self.trace.counts.update(base_tokens=0, base_tokens_generated=0)
            self._finish_answer(kept.text[:cut], "", spans_model=None)
            return

        # Continue, from the prefix the check left in the base model's cache. A kept
        # draft that ends like the start of a stop string ("...[Us") may be cut by the
        # continuation ("er]"): the switch is announced once that is decided, so the
        # kept text every view shows is final.
        continuation = self._continue(kept.context, kept.text, kept.decoder, budget=s.max_tokens - (k + 1))
        held = partial_stop_len(kept.text, STOP_STRINGS) > 0
        if not held:
            yield self._switch_event(k, fired, score, kept.text)
            yield PhaseChanged("continuing")
        for event in continuation:
            if held and isinstance(event, BaseToken):
                held = False
                yield self._switch_event(k, fired, score, kept.text)
                yield PhaseChanged("continuing")
            yield event
        if held:
            if len(self.trace.kept_draft) < len(kept.text):
                self._cut_kept_pieces(k, len(self.trace.kept_draft))
            yield self._switch_event(k, fired, score, self.trace.kept_draft)

    def _draft_guard(self, written: str) -> RepetitionGuard | None:
        """With --switch-skip-repeats a loop of the drafter's cannot hand over (its
        windows are skipped), so the repetition stop ends the draft there instead of
        letting the loop run to the budget; the base model continues from it."""
        s = self.settings
        if not (s.switch_skip_repeats and s.repetition_stop):
            return None
        guard = RepetitionGuard(s.repetition_stop)
        guard.prime(written)
        return guard

    @property
    def _needs_final_check(self) -> bool:
        """A replayed draft was scored when it was written; anything else is checked."""
        return self.replay is None or self._resumed

    def _switch_event(self, k: int, fired: bool, score: float, kept_text: str) -> SwitchFound:
        draft_text = self.trace.draft_text
        discarded = draft_text[len(kept_text):] if draft_text.startswith(kept_text) else ""
        return SwitchFound(index=k, fired=fired, window_score=score, kept_text=kept_text,
                           discarded_text=discarded)

    def _cut_kept_pieces(self, k: int, length: int) -> None:
        """The kept draft ends at `length` characters (a stop string): the pieces of draft
        tokens 0..k keep exactly that text, as `kept_draft` does."""
        used, carrying = 0, 0  # carrying: tokens up to the last one with answer text
        for i, record in enumerate(self.trace.draft_tokens[: k + 1]):
            record.text = record.text[: max(0, length - used)]
            used += len(record.text)
            if record.text:
                carrying = i + 1
        self.trace.counts["kept_draft_tokens"] = carrying

    def _handed(self, draft: _Draft) -> str:
        """The draft as the base model reads it (see handoff.py)."""
        if self.ids_handoff or self.drafter is None or (not draft.ids and draft.text):
            return draft.text
        return handed_text(self.drafter, draft.ids)

    def _replayed_draft(self, check: DraftChecker, drafter_prompt: list[int]):
        """A stored answer's draft and scores (a re-run). When the switch asked for lies
        past the tokens an online answer scored (its drafter stopped at its own switch),
        the drafter writes on from the stored draft, and the check goes on scoring, until
        that switch is known."""
        stored = self.replay
        assert stored is not None and self.drafter is not None
        s = self.settings
        yield from check.replay(stored, self.forced_switch)
        self._drafted = stored.counts.get("draft_tokens", 0)
        self._resumed = False
        forced = self.forced_switch
        needed = (not check.fired) if forced is None else forced >= len(check.records)
        if stored.draft_complete or not needed:
            return _Draft.from_text(stored.draft_text), stored.draft_complete
        ids = ([r.id for r in stored.draft_tokens] if self.ids_handoff
               else self.drafter.tokenize(stored.draft_text, add_bos=False))
        draft = _Draft()
        for token in ids:  # the stored draft as the drafter's tokens, to write on from
            draft.add(self.drafter.token_bytes(token), token)
        draft.stream.shown = len(draft.stream.text)
        self._resumed = True
        yield DraftToken(stored.draft_text, -1, 0.0)  # views hold the stored draft first
        yield PhaseChanged("drafting")
        limit = min(s.draft_max_tokens, s.max_tokens) - len(ids)
        if forced is None:
            done = lambda: check.fired  # noqa: E731
        else:
            done = lambda: len(check.records) > forced  # noqa: E731
        # The drafter wrote `ids` one token at a time: it reads them again that way, and
        # writes on exactly as it would have (paper mode's draft, on any CPU's kernels).
        yield from self._run_drafter(draft, drafter_prompt + ids, max(limit, 0), check, done=done,
                                     guard=self._draft_guard(stored.draft_text), generated=len(ids))
        self._drafted += len(draft.ids) - len(ids)
        return draft, not done()

    def _run_drafter(self, draft: _Draft, prompt: list[int], limit: int,
                     check: DraftChecker | None = None, done=None,
                     guard: RepetitionGuard | None = None, generated: int = 0) -> Iterator[Event]:
        """Let the drafter write; with a checker (online mode), check after every
        `chunk_tokens` tokens and stop as soon as `done()` (the switch is found). A
        repetition guard (the drafter alone) ends it when it loops. The last `generated`
        tokens of `prompt` are the drafter's own (a stored draft it writes on from)."""
        assert self.drafter is not None
        s = self.settings
        since = time.perf_counter()
        stream = self.drafter.generate(prompt, limit, temperature=s.temperature, top_p=s.top_p,
                                       seed=s.seed, cancel=self.cancel, generated=generated)
        repeated = False
        try:
            for tok in stream:
                token_bytes = self.drafter.token_bytes(tok.id)
                new = draft.add(token_bytes, tok.id)
                yield DraftToken(new, tok.id, tok.logprob)
                if guard is not None and guard.push(token_bytes):
                    repeated = True
                    break
                if check is not None and len(draft.ids) % s.chunk_tokens == 0:
                    since = self.timer.add("draft_s", since)
                    yield from self._check_step(check, draft, final=False)
                    since = time.perf_counter()
                    if done is not None and done():
                        break
        finally:
            stream.close()
        self.drafter_stop = "repetition" if repeated else self.drafter.stop_reason
        tail = draft.finish()
        if tail:
            yield DraftToken(tail, -1, 0.0)
        self.timer.add("draft_s", since)

    def _check_step(self, check: DraftChecker, draft: _Draft, final: bool) -> Iterator[Event]:
        since = time.perf_counter()
        text = self._handed(draft)
        settled = None if final or self.ids_handoff else settled_length(text, self.cleans_spaces)
        yield from check.step(text, draft.ids, final, settled)
        self.timer.add("score_s", since)

    def _continue(self, context: list[int], kept_text: str,
                  decoder: codecs.IncrementalDecoder | None, budget: int) -> Iterator[Event]:
        """The base model writes the rest of the answer from `context` (cache reused):
        greedy, as the paper's, unless `sample_base` (or the base model answers alone)."""
        assert self.base is not None
        s = self.settings
        since = time.perf_counter()
        stream = TextStream(stops=STOP_STRINGS, prefix=kept_text)
        if decoder is not None:
            stream._decoder = decoder  # carries a character split at the switch point
        records: list[TokenRecord] = []
        ties: list[int] = []
        guard = RepetitionGuard(s.repetition_stop)
        guard.prime(kept_text)  # the base model repeating the kept draft is a loop too
        greedy = s.base_greedy
        gen = self.base.generate(context, max(budget, 0), temperature=0.0 if greedy else s.temperature,
                                 top_p=s.top_p, seed=s.seed + 1, cancel=self.cancel)
        repeated = False
        try:
            for tok in gen:
                token_bytes = self.base.token_bytes(tok.id)
                new = stream.push(token_bytes)
                records.append(TokenRecord(tok.id, "", tok.logprob))
                if greedy and tok.top_margin < TOKEN_NEAR_TIE:
                    ties.append(len(records) - 1)
                if new:
                    yield BaseToken(new, tok.id, tok.logprob)
                if stream.stopped:
                    break
                if guard.push(token_bytes):
                    repeated = True
                    break
        finally:
            gen.close()
        tail = stream.finish()
        if tail:
            yield BaseToken(tail, -1, 0.0)
        self.timer.add("continue_s", since)
        if stream.stopped:
            stop = "stop_string"
        elif repeated:
            stop = "repetition"
        else:
            stop = self.base.stop_reason if budget > 0 else "max_tokens"
        if stream.prefix_cut is not None:
            kept_text = kept_text[: stream.prefix_cut]
        continuation = stream.final_text
        self.trace.counts["base_tokens_generated"] = len(records)
        self._set_piece_texts(records, continuation)
        self.trace.counts["base_tokens"] = len(records)
        self.trace.continuation_tokens = records
        self.trace.continuation_near_ties = [i for i in ties if i < len(records)]
        self.trace.stop_reason = "cancelled" if self.cancel.is_set() else stop
        self._finish_answer(kept_text, continuation, spans_model=None)

    def _set_piece_texts(self, records: list[TokenRecord], continuation: str) -> None:
        """Per-token pieces for the heatmap; tokens past a stop string are dropped."""
        assert self.base is not None
        del records[assign_piece_texts(records, continuation, self.base.token_bytes):]

    def _stopped_while_drafting(self, draft: _Draft, check: DraftChecker) -> None:
        """Esc before the switch: the answer is the draft so far, all the drafter's."""
        self.trace.draft_tokens = check.records
        self.trace.draft_complete = False
        self.trace.stop_reason = "cancelled"
        self._finish_answer(self.trace.draft_text, "", spans_model="drafter")

    def _finish_answer(self, kept_text: str, continuation: str, spans_model: str | None) -> None:
        t = self.trace
        t.kept_draft, t.continuation = kept_text, continuation
        t.answer = kept_text + continuation
        t.switch_char = len(kept_text)
        if spans_model == "drafter":
            t.spans = [{"model": "drafter", "text": kept_text}] if kept_text else []
        else:
            t.spans = [{"model": m, "text": x} for m, x in
                       (("drafter", kept_text), ("base", continuation)) if x]
