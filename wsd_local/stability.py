"""Which base tokens of a growing draft can no longer change: safe boundaries.

Online mode scores the draft while the drafter is still writing, so it must only score
base tokens that the final tokenization of the whole draft (paper mode's) will contain
too. More text can re-split the end of a tokenization, and not only its last token or
two: a long word, a run of CJK characters without spaces or a base64 string can be
re-split dozens of tokens back (measured on the demo models: docs/DESIGN.md).

A position b of the text is a *safe boundary* when no token of the base vocabulary can
cover the bytes on both sides of it, whatever text follows: no token starts at some
i < b with the bytes text[i:b+1], and continues consistently with the text we know.
Then every tokenizer that splits text into vocabulary tokens by merges (BPE, with or
without a pre-tokenizer; SentencePiece BPE) or by a best segmentation (unigram) splits
there, and the two sides are tokenized independently: a merge across b would make a
token that covers b, and none exists. So the tokens before a safe boundary are the
same in the tokenization of every longer text: they can be scored for good.

The check needs the vocabulary's exact token bytes and a tokenizer whose tokens spell
the text back byte for byte; `DraftChecker` verifies the latter on every step and
otherwise falls back to leaving the last tokens unscored (no guarantee).
"""

from __future__ import annotations

import bisect
from typing import Iterable, Sequence


class TokenCover:
    """The byte strings of a vocabulary, searchable by prefix."""

    def __init__(self, pieces: Iterable[bytes]) -> None:
        self._sorted = sorted({p for p in pieces if p})
        self._set = set(self._sorted)
        self.longest = max((len(p) for p in self._sorted), default=0)

    def _has_prefix(self, data: bytes) -> bool:
        i = bisect.bisect_left(self._sorted, data)
        return i < len(self._sorted) and self._sorted[i].startswith(data)

    def can_cover(self, text: bytes, b: int) -> bool:
        """Whether a token could span position `b` (bytes b-1 and b) of `text` or of
        any text that starts with `text`. Needs 0 < b < len(text): the byte at b is
        known."""
        assert 0 < b < len(text)
        for i in range(max(0, b - self.longest + 1), b):
            j = b + 1  # a token from i across b starts with text[i:b+1]
            while self._has_prefix(text[i:j]):
                if text[i:j] in self._set or j == len(text):
                    # a token ends past b inside the known text, or the known text
                    # runs out while still the start of some token
                    return True
                if j - i >= self.longest:
                    break
                j += 1
        return False


def stable_count(cover: TokenCover, known: bytes, ends: Sequence[int], lowest: int) -> int:
    """How many leading tokens end at or before a safe boundary of `known`.

    `ends[i]` is the byte offset in `known` where token i ends; tokens below `lowest`
    are already known to be stable (the search stops there)."""
    for i in range(len(ends) - 1, lowest - 1, -1):
        b = ends[i]
        if 0 < b < len(known) and not cover.can_cover(known, b):
            return i + 1
    return lowest


__all__ = ["TokenCover", "stable_count"]
