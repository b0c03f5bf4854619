"""The check: the draft in the base model's tokens, their scores, and the switch point.

The base model reads the plain frame plus the draft, right-stripped and tokenized by
its own tokenizer (the paper's check). `DraftChecker` holds that side of an answer:

- Stability: online steps score only base tokens that end at a safe boundary of the
  draft text (`stability.py`): no token of the base vocabulary can span it, so longer
  text never re-splits what lies before it, and every scored token is a token of the
  final tokenization (paper mode's). Where that cannot be checked (a vocabulary we do
  not have, a tokenizer whose tokens do not spell the text back), the last
  `UNSTABLE_TAIL_TOKENS` stay unscored instead, and when already scored tokens change
  anyway (" never" + "the" + "less" -> " nevertheless"), scores from the first changed
  token on are void (`DraftRescored`) and the next `score` call re-evaluates them.
- Frame overlap: the draft's first characters may merge with the frame's last token.
  Draft tokens then follow a shorter prefix of the prompt (`prompt_shared`), and the
  first one repeats `frame_overlap` bytes of the frame, which its text leaves out.
- Shared vocabulary with `handoff = "ids"`: the drafter's ids are the draft tokens (no
  re-tokenization, nothing unstable).
"""

from __future__ import annotations

import codecs
import math
from dataclasses import dataclass
from typing import Iterator, Sequence

from .backend.protocol import Backend
from .errors import ConfigError
from .events import DraftRescored, DraftScored, Event, PhaseChanged
from .stability import TokenCover, stable_count
from .switch import SwitchDetector
from .textstream import token_pieces
from .trace import TokenRecord, Trace

#: Without a safe-boundary check, online mode leaves the last base tokens of a partial
#: draft unscored: more draft text can still change them (e.g. " the" may become " there").
UNSTABLE_TAIL_TOKENS = 2


def shared_vocabulary(drafter: Backend, base: Backend) -> bool:
    """Token ids mean the same text in both models (checked once per pair of models)."""
    return drafter.n_vocab == base.n_vocab and drafter.vocab_fingerprint == base.vocab_fingerprint


_COVERS: dict[str, TokenCover] = {}


def token_cover(base: Backend) -> TokenCover | None:
    """The base vocabulary's token bytes for the safe-boundary check (built once per
    vocabulary), or None when the backend cannot list them."""
    pieces = base.vocabulary()
    if not pieces:
        return None
    key = base.vocab_fingerprint
    if key not in _COVERS:
        _COVERS[key] = TokenCover(pieces)
    return _COVERS[key]


@dataclass
class KeptDraft:
    """Draft tokens 0..k, and where the base model continues from."""
    ids: list[int]  # base tokens
    text: str  # whole characters: the drafter's span of the answer
    decoder: codecs.IncrementalDecoder  # holds a character split at the switch point
    context: list[int]  # prompt + kept tokens: the check left them in the base model's cache


class DraftChecker:
    """Scores the draft with the base model as it grows, and finds the switch."""

    def __init__(self, base: Backend, frame: str, window: int, threshold: float,
                 shared_vocab: bool, cover: TokenCover | None = None,
                 skip_repeats: bool = False) -> None:
        self.base = base
        self.frame = frame
        self.prompt = base.tokenize(frame, add_bos=True)
        self.shared_vocab = shared_vocab  # the draft tokens are the drafter's ids
        self.cover = cover  # None: no safe-boundary check (the tail rule instead)
        self.detector = SwitchDetector(window, threshold, skip_repeats)
        self.records: list[TokenRecord] = []  # the scored draft tokens, in base tokens
        self.prompt_shared = len(self.prompt)  # prompt tokens the draft tokens follow
        self.frame_overlap = 0  # frame bytes the first draft token repeats

    @property
    def fired(self) -> bool:
        return self.detector.fired

    @property
    def scored_ids(self) -> list[int]:
        return [r.id for r in self.records]

    def base_tokens(self, draft_text: str) -> list[int]:
        """The draft in base tokens: the frame plus the draft, right-stripped, tokenized
        by the base model (the paper's check), minus the frame's own tokens."""
        full = self.base.tokenize((self.frame + draft_text).rstrip(), add_bos=True)
        self.prompt_shared = _common_prefix(full, self.prompt)
        if self.prompt_shared == len(self.prompt) and len(full) > self.prompt_shared:
            self.frame_overlap = 0
        else:
            # The draft's first characters merged with the frame's last token: score from
            # the shared prefix and skip the frame bytes the first draft token repeats.
            self.frame_overlap = (len(self.frame.encode())
                                  - len(self.base.detokenize(full[: self.prompt_shared])))
        return full[self.prompt_shared:]

    def step(self, draft_text: str, draft_ids: Sequence[int], final: bool,
             settled: int | None = None) -> Iterator[Event]:
        """Score the draft tokens that are new and stable since the last step; `final`
        when the draft is complete (then every token is stable). `settled`: characters
        of `draft_text` that more draft can no longer change (default: all)."""
        if self.shared_vocab:
            candidate = list(draft_ids)
            stable = len(candidate)
        else:
            if not draft_text.strip():
                return  # nothing to score yet; rstrip() would also eat the frame's newline
            candidate = self.base_tokens(draft_text)
            stable = len(candidate) if final else self._stable(candidate, draft_text, settled)
        same = _common_prefix(self.scored_ids, candidate[:stable])
        if same < len(self.records):
            self.detector.truncate(same)
            del self.records[same:]
            yield DraftRescored(same)
        if stable <= same:
            return
        yield PhaseChanged("checking")
        logprobs = self.base.score(self.prompt[: self.prompt_shared] + candidate[:stable],
                                   start=self.prompt_shared + same)
        pieces = self._pieces(candidate[:stable])
        for j, lp in enumerate(logprobs, start=same):
            prob = math.exp(lp)
            was_fired = self.detector.fired
            g = self.detector.push(prob, pieces[j])
            self.records.append(TokenRecord(candidate[j], pieces[j], lp))
            yield DraftScored(j, pieces[j], prob, g, is_switch=self.detector.fired and not was_fired)
        if not final:
            yield PhaseChanged("drafting")

    def _stable(self, candidate: list[int], draft_text: str, settled: int | None) -> int:
        """How many leading candidate tokens more draft text cannot change."""
        if self.cover is not None:
            shared = self.prompt[: self.prompt_shared]
            spelled = self.base.detokenize(shared + candidate)
            if spelled == (self.frame + draft_text).rstrip().encode():
                known = (self.frame + draft_text[:settled]).encode()
                ends, end = [], len(self.base.detokenize(shared))
                for token in candidate:
                    end += len(self.base.token_bytes(token))
                    ends.append(end)
                lowest = _common_prefix(self.scored_ids, candidate)
                return stable_count(self.cover, known, ends, lowest)
        # No guarantee: leave a tail unscored and rescore if the scored part changes.
        return max(0, len(candidate) - UNSTABLE_TAIL_TOKENS)

    def _pieces(self, tokens: Sequence[int]) -> list[str]:
        """Text pieces of the draft tokens (see TokenRecord): a token that ends inside
        a character gets an empty piece, also as the last token of a step or of the
        draft (a character the draft leaves incomplete is no text)."""
        pieces = token_pieces([self.base.token_bytes(t) for t in tokens])
        if self.prompt_shared < len(self.prompt) and pieces:
            pieces[0] = pieces[0][self.frame_overlap:]  # the frame's bytes (ASCII: its tag)
        return pieces

    def replay(self, stored: Trace, forced_switch: int | None) -> Iterator[Event]:
        """Take the draft tokens and scores of a stored answer instead of scoring. The
        switch is `forced_switch`, or else where this checker's rule finds it."""
        ids = [r.id for r in stored.draft_tokens]
        # An online answer's draft was scored up to the switch only: compare that prefix.
        # (Re-tokenizing also sets the frame overlap the continuation needs.)
        if (not self.shared_vocab and stored.draft_text.strip()
                and self.base_tokens(stored.draft_text)[: len(ids)] != ids):
            raise ConfigError("this answer's draft was scored by another base model",
                              "load the base model it was made with to re-run it")
        # Pieces from the ids: a stored answer's pieces may be cut at a stop string.
        pieces = self._pieces(ids)
        for j, rec in enumerate(stored.draft_tokens):
            prob = math.exp(rec.logprob)
            was_fired = self.detector.fired
            g = self.detector.push(prob, pieces[j])
            self.records.append(TokenRecord(rec.id, pieces[j], rec.logprob))
            found = j == forced_switch if forced_switch is not None else self.detector.fired and not was_fired
            yield DraftScored(j, pieces[j], prob, g, is_switch=found)

    def switch_point(self, forced: int | None = None) -> tuple[int, bool]:
        """k, and whether a window reached the threshold there. Without a switch the
        whole draft is kept (k = -1 for an empty draft); `forced` (a re-run) overrides
        the rule, within the draft."""
        found = self.detector.switch_at
        if forced is not None:
            k = max(-1, min(forced, len(self.records) - 1))
            return k, found == k
        if found is not None:
            return found, True
        return len(self.records) - 1, False

    def keep(self, k: int) -> KeptDraft:
        """Draft tokens 0..k, their text, and the base model's context to continue."""
        ids = self.scored_ids[: k + 1]
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        text = decoder.decode(self.base.detokenize(ids)[self.frame_overlap:])
        # Nothing kept: the whole frame, also when the first draft token would have
        # carried its last bytes.
        prefix = self.prompt[: self.prompt_shared] if ids else self.prompt
        return KeptDraft(ids, text, decoder, prefix + ids)


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i
