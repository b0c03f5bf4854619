"""The controller: draft, check, switch, continue, as a stream of typed events.

Modes:
- `wsd` (online): the drafter writes `chunk_tokens` at a time; after each chunk the
  base model scores the newly stable draft tokens (its KV cache keeps the rest); once a
  window reaches the threshold, drafting stops and the base model continues from its
  cache. The rule is causal, so with greedy decoding this finds the same switch as
- `paper`: the reference pipeline: draft everything, score it in one pass, switch,
  continue.
- `base` / `draft`: one model alone (plain frame / chat template), for comparison.
"""

from __future__ import annotations

import codecs
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Iterator, Sequence

from .backend.protocol import Backend
from .config import DecodingSettings
from .events import (BaseToken, DraftRescored, DraftScored, DraftToken, Event, Finished,
                     PhaseChanged, SwitchFound)
from .messages import Message
from .switch import TOKEN_NEAR_TIE, SwitchDetector, near_ties
from .templates import STOP_STRINGS, base_frame, render_chat
from .textstream import TextStream, token_pieces
from .trace import TokenRecord, Trace

#: Online mode leaves the last base tokens of a partial draft unscored: more draft text
#: can still change them (e.g. " the" may become " there").
UNSTABLE_TAIL_TOKENS = 2


@dataclass
class _Timer:
    seconds: dict[str, float] = field(default_factory=dict)

    def add(self, phase: str, since: float) -> float:
        now = time.perf_counter()
        self.seconds[phase] = self.seconds.get(phase, 0.0) + (now - since)
        return now


def _drafter_prompt(drafter: Backend, messages: Sequence[Message]) -> list[int]:
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
    """One answer. Create, then iterate `events()`; the last event is `Finished`."""

    def __init__(self, drafter: Backend | None, base: Backend | None,
                 messages: Sequence[Message], settings: DecodingSettings,
                 cancel: threading.Event | None = None, backend_name: str = "",
                 replay: Trace | None = None, forced_switch: int | None = None) -> None:
        self.drafter, self.base = drafter, base
        # Replay: reuse a stored answer's draft and scores, switch at `forced_switch`.
        self.replay, self.forced_switch = replay, forced_switch
        self.messages = list(messages)
        self.settings = settings
        self.cancel = cancel or threading.Event()
        self.timer = _Timer()
        models = {m.identity.role: m.identity for m in (drafter, base) if m is not None}
        self.trace = Trace(settings=settings, messages=[m.to_dict() for m in messages],
                           models=models, backend=backend_name, forced_switch=forced_switch)

    # -- entry ---------------------------------------------------------------------
    def events(self) -> Iterator[Event]:
        start = time.perf_counter()
        mode = self.settings.mode
        if mode == "base":
            yield from self._base_only()
        elif mode == "draft":
            yield from self._draft_only()
        else:
            yield from self._weak_to_strong(online=(mode == "wsd"))
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
        prompt = _drafter_prompt(self.drafter, self.messages)
        self.trace.counts["prompt_tokens_drafter"] = len(prompt)
        draft = _Draft()
        yield PhaseChanged("drafting")
        yield from self._run_drafter(draft, prompt, self.settings.max_tokens, online_scoring=None)
        text = draft.text
        self._finish_answer(kept_text=text, continuation="", spans_model="drafter")
        self.trace.draft_text = text
        self.trace.stop_reason = "cancelled" if self.cancel.is_set() else self.drafter_stop
        self.trace.counts["draft_tokens"] = len(draft.ids)

    # -- weak-to-strong ---------------------------------------------------------------
    def _weak_to_strong(self, online: bool) -> Iterator[Event]:
        assert self.drafter is not None and self.base is not None
        s = self.settings
        drafter_prompt = _drafter_prompt(self.drafter, self.messages)
        self.frame = base_frame(self.messages)
        self.base_prompt = self.base.tokenize(self.frame, add_bos=True)
        self.base.check_fits(len(self.base_prompt) + 1)
        self.trace.counts.update(prompt_tokens_drafter=len(drafter_prompt),
                                 prompt_tokens_base=len(self.base_prompt))
        self.detector = SwitchDetector(s.window, s.threshold)
        # Same vocabulary: the drafter's token ids are the base model's draft tokens
        # (no re-tokenization, nothing unstable); checked once per pair of models.
        self.shared_vocab = (self.drafter.n_vocab == self.base.n_vocab
                             and self.drafter.vocab_fingerprint == self.base.vocab_fingerprint)
        self.trace.counts["shared_vocabulary"] = int(self.shared_vocab)
        self.scored: list[int] = []  # base ids of the draft scored so far
        self.prompt_shared, self.frame_overlap = len(self.base_prompt), 0
        self.draft_records: list[TokenRecord] = []
        draft = _Draft()

        if self.replay is not None:
            yield from self._replay_draft(draft)
        else:
            yield PhaseChanged("drafting")
            # The draft is part of the answer: it never gets more than the answer's budget.
            yield from self._run_drafter(draft, drafter_prompt, min(s.draft_max_tokens, s.max_tokens),
                                         online_scoring=s.chunk_tokens if online else None)
        self.trace.draft_text = draft.text
        self.trace.counts["draft_tokens"] = len(draft.ids)
        if self.cancel.is_set():
            return self._stopped_while_drafting(draft)
        if not self.detector.fired:
            # Paper mode's only check, or online mode's last one: the draft is complete.
            yield from self._score_step(draft, final=True)
            if self.cancel.is_set():
                return self._stopped_while_drafting(draft)

        switch_at = self.detector.switch_at
        fired = switch_at is not None
        k = switch_at if switch_at is not None else len(self.scored) - 1
        if self.forced_switch is not None:
            k = max(-1, min(self.forced_switch, len(self.scored) - 1))
            fired = switch_at == k
        kept_ids = self.scored[: k + 1]
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        kept_text = decoder.decode(self.base.detokenize(kept_ids)[self.frame_overlap:])
        self.trace.switch_index = k
        self.trace.switch_fired = fired
        self.trace.draft_tokens = self.draft_records
        self.trace.near_ties = near_ties(self.detector.probs, s.window, s.threshold, upto=k)
        discarded = draft.text[len(kept_text):] if draft.text.startswith(kept_text) else ""
        self.trace.counts.update(draft_tokens_scored=len(self.scored), kept_draft_tokens=k + 1,
                                 draft_tokens_past_switch=draft.tokens_past(len(kept_text)))
        score = self.detector.scores[k] if k >= 0 else 0.0
        yield SwitchFound(index=k, fired=fired, window_score=score,
                          kept_text=kept_text, discarded_text=discarded)

        yield PhaseChanged("continuing")
        context = self.base_prompt[: self.prompt_shared] + kept_ids
        yield from self._continue(context, kept_text, decoder, budget=s.max_tokens - (k + 1))

    def _run_drafter(self, draft: _Draft, prompt: list[int], limit: int,
                     online_scoring: int | None) -> Iterator[Event]:
        """Let the drafter write; in online mode, score after every chunk and stop as
        soon as the switch is found."""
        assert self.drafter is not None
        s = self.settings
        since = time.perf_counter()
        stream = self.drafter.generate(prompt, limit, temperature=s.temperature, top_p=s.top_p,
                                       seed=s.seed, cancel=self.cancel)
        try:
            for tok in stream:
                new = draft.add(self.drafter.token_bytes(tok.id), tok.id)
                yield DraftToken(new, tok.id, tok.logprob)
                if online_scoring and len(draft.ids) % online_scoring == 0:
                    since = self.timer.add("draft_s", since)
                    yield from self._score_step(draft, final=False)
                    since = time.perf_counter()
                    if self.detector.fired:
                        break
        finally:
            stream.close()
        self.drafter_stop = self.drafter.stop_reason
        tail = draft.finish()
        if tail:
            yield DraftToken(tail, -1, 0.0)
        self.timer.add("draft_s", since)

    def _replay_draft(self, draft: _Draft) -> Iterator[Event]:
        """Take the draft and its scores from a stored trace instead of running models."""
        assert self.replay is not None and self.base is not None
        draft.stream.text = self.replay.draft_text
        stored = [r.id for r in self.replay.draft_tokens]
        # An online answer's draft was scored up to the switch only: compare that prefix.
        if (not self.shared_vocab and self.replay.draft_text.strip()
                and self._retokenize(self.replay.draft_text)[: len(stored)] != stored):
            from .errors import ConfigError
            raise ConfigError("this answer's draft was scored by another base model",
                              "load the base model it was made with to re-run it")
        for j, rec in enumerate(self.replay.draft_tokens):
            g = self.detector.push(math.exp(rec.logprob))
            self.scored.append(rec.id)
            self.draft_records.append(TokenRecord(rec.id, rec.text, rec.logprob))
            yield DraftScored(j, rec.text, math.exp(rec.logprob), g, is_switch=j == self.forced_switch)
        self.trace.counts["draft_tokens"] = self.replay.counts.get("draft_tokens", 0)

    def _retokenize(self, draft_text: str) -> list[int]:
        """The draft in base tokens: the frame plus the draft, right-stripped, tokenized
        by the base model (the paper's check), minus the frame's own tokens."""
        assert self.base is not None
        full = self.base.tokenize((self.frame + draft_text).rstrip(), add_bos=True)
        shared = _common_prefix(full, self.base_prompt)
        if shared == len(self.base_prompt) and len(full) > shared:
            self.prompt_shared, self.frame_overlap = shared, 0
        else:
            # The draft's first characters merged with the frame's last token: score from
            # the shared prefix and skip the frame bytes the first draft token repeats.
            self.prompt_shared = shared
            self.frame_overlap = len(self.frame.encode()) - len(self.base.detokenize(full[:shared]))
        return full[self.prompt_shared:]

    def _score_step(self, draft: _Draft, final: bool) -> Iterator[Event]:
        """Score the draft tokens that are new and stable since the last step."""
        assert self.base is not None
        since = time.perf_counter()
        draft_text = draft.text
        if self.shared_vocab:
            candidate = list(draft.ids)
            stable = len(candidate)
        else:
            if not draft_text.strip():
                return  # nothing to score yet; rstrip() would also eat the frame's newline
            candidate = self._retokenize(draft_text)
            stable = len(candidate) if final else max(0, len(candidate) - UNSTABLE_TAIL_TOKENS)
        same = _common_prefix(self.scored, candidate[:stable])
        if same < len(self.scored):
            self.detector.truncate(same)
            del self.scored[same:]
            del self.draft_records[same:]
            yield DraftRescored(same)
        if stable > same:
            yield PhaseChanged("checking")
            logprobs = self.base.score(self.base_prompt[: self.prompt_shared] + candidate[:stable],
                                       start=self.prompt_shared + same)
            pieces = token_pieces([self.base.token_bytes(t) for t in candidate[:stable]])
            if self.prompt_shared < len(self.base_prompt) and pieces:
                pieces[0] = pieces[0][self.frame_overlap:]
            for j, lp in enumerate(logprobs, start=same):
                prob = math.exp(lp)
                was_fired = self.detector.fired
                g = self.detector.push(prob)
                self.scored.append(candidate[j])
                self.draft_records.append(TokenRecord(candidate[j], pieces[j], lp))
                yield DraftScored(j, pieces[j], prob, g, is_switch=self.detector.fired and not was_fired)
            if not final:
                yield PhaseChanged("drafting")
        self.timer.add("score_s", since)

    def _continue(self, context: list[int], kept_text: str,
                  decoder: codecs.IncrementalDecoder | None, budget: int) -> Iterator[Event]:
        """The base model writes the rest of the answer from `context` (cache reused)."""
        assert self.base is not None
        s = self.settings
        since = time.perf_counter()
        stream = TextStream(stops=STOP_STRINGS, prefix=kept_text)
        if decoder is not None:
            stream._decoder = decoder  # carries a character split at the switch point
        records: list[TokenRecord] = []
        ties: list[int] = []
        gen = self.base.generate(context, max(budget, 0), temperature=s.temperature, top_p=s.top_p,
                                 seed=s.seed + 1, cancel=self.cancel)
        try:
            for tok in gen:
                new = stream.push(self.base.token_bytes(tok.id))
                records.append(TokenRecord(tok.id, "", tok.logprob))
                if s.greedy and tok.top_margin < TOKEN_NEAR_TIE:
                    ties.append(len(records) - 1)
                if new:
                    yield BaseToken(new, tok.id, tok.logprob)
                if stream.stopped:
                    break
        finally:
            gen.close()
        tail = stream.finish()
        if tail:
            yield BaseToken(tail, -1, 0.0)
        self.timer.add("continue_s", since)
        if stream.stopped:
            stop = "stop_string"
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
        pieces = token_pieces([self.base.token_bytes(r.id) for r in records])
        used = 0
        kept: list[TokenRecord] = []
        for rec, piece in zip(records, pieces):
            if used >= len(continuation) and piece:
                break
            rec.text = continuation[used: used + len(piece)]
            used += len(rec.text)
            kept.append(rec)
        records[:] = kept

    def _stopped_while_drafting(self, draft: _Draft) -> None:
        """Esc before the switch: the answer is the draft so far, all the drafter's."""
        self.trace.draft_tokens = self.draft_records
        self.trace.stop_reason = "cancelled"
        self._finish_answer(draft.text, "", spans_model="drafter")

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


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i
