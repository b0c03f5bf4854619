"""The auto-switch rule of weak-to-strong decoding, as pure functions.

For draft-token probabilities p_0..p_{n-1} (the base model's probability of each draft
token), window w and threshold gamma:

    g_j = (p_{j-w+1} * ... * p_j) ** (1/w)   for j >= w-1, and 0 for j < w-1
    k   = the first j with g_j >= gamma, else n-1 (the whole draft is kept)

The rule is causal: g_j depends only on p_0..p_j, which `SwitchDetector` uses to find
the switch while the drafter is still writing.

An optional `skip(j)` takes windows out of the rule (`--switch-skip-repeats` skips the
windows that lie in text repeating earlier draft text, `repetition.window_repeats`):
it must read draft tokens 0..j only, so the rule stays causal.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

from .repetition import window_repeats

#: Windows taken out of the rule: skip(j) is true when the window ending at j may not be
#: the switch.
Skip = Callable[[int], bool]

#: Window scores within this distance of the threshold can flip with llama.cpp's
#: batch-shape arithmetic (about 1e-3 in log-probability); traces flag them.
NEAR_TIE = 1e-3
#: Greedy picks whose top-2 logit gap is below this can flip with the batch shape: on
#: the demo pair's 4-bit models, different batch sizes take different matmul kernels and
#: gaps moved by up to 0.08 between a cached and a fresh evaluation of the same tokens.
TOKEN_NEAR_TIE = 0.1


def window_score(probs: Sequence[float], j: int, window: int) -> float:
    """g_j: geometric mean of p_{j-w+1}..p_j, or 0.0 while j < w-1.

    Computed the same way everywhere (detector, trace checks, what-if), so that a rule
    recomputed from stored probabilities gives bit-identical scores.
    """
    if window < 1:
        raise ValueError("window must be >= 1")
    if j < window - 1:
        return 0.0
    # The product form is exact for a window of one and for ties like 0.64 * 1.0.
    return math.prod(probs[j - window + 1 : j + 1]) ** (1.0 / window)


def window_scores(probs: Sequence[float], window: int) -> list[float]:
    """g_j for every position j."""
    return [window_score(probs, j, window) for j in range(len(probs))]


def first_switch(probs: Sequence[float], window: int, threshold: float,
                 skip: Skip | None = None) -> int | None:
    """The first j whose window score reaches the threshold (and is not skipped), or None."""
    for j, g in enumerate(window_scores(probs, window)):
        if j >= window - 1 and g >= threshold and not (skip is not None and skip(j)):
            return j
    return None


def switch_index(probs: Sequence[float], window: int, threshold: float,
                 skip: Skip | None = None) -> int:
    """k as the paper defines it: the first qualifying j, else the last draft token.

    Returns -1 for an empty draft (nothing is kept).
    """
    found = first_switch(probs, window, threshold, skip)
    return found if found is not None else len(probs) - 1


def near_ties(probs: Sequence[float], window: int, threshold: float,
              upto: int | None = None, margin: float = NEAR_TIE) -> list[int]:
    """Positions (up to `upto`, inclusive) whose window score is within `margin` of
    the threshold: a different batch shape could move the switch there."""
    scores = window_scores(probs, window)
    last = len(scores) - 1 if upto is None else min(upto, len(scores) - 1)
    return [j for j in range(window - 1, last + 1) if abs(scores[j] - threshold) <= margin]


@dataclass
class SwitchDetector:
    """Incremental form of the rule: feed probabilities as they are scored.

    `truncate(n)` forgets everything from position n on (the online decoder rolls back
    when re-tokenization changes already scored tokens). With `skip_repeats`, a window
    lying in text that repeats earlier draft text is not the switch (the text pieces of
    the tokens say which, `repetition.window_repeats`).
    """

    window: int
    threshold: float
    skip_repeats: bool = False
    probs: list[float] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    pieces: list[str] = field(default_factory=list)
    switch_at: int | None = None
    skipped: list[int] = field(default_factory=list)  # windows that reached γ but were skipped

    def push(self, prob: float, piece: str = "") -> float:
        """Add p_j (and the token's text piece); returns g_j. Sets `switch_at` the first
        time g_j >= threshold at a window the rule does not skip."""
        self.probs.append(prob)
        self.pieces.append(piece)
        j = len(self.probs) - 1
        g = window_score(self.probs, j, self.window)
        self.scores.append(g)
        if self.switch_at is None and j >= self.window - 1 and g >= self.threshold:
            if self.skip_repeats and window_repeats(self.pieces, j, self.window):
                self.skipped.append(j)
            else:
                self.switch_at = j
        return g

    def truncate(self, n: int) -> None:
        del self.probs[n:]
        del self.scores[n:]
        del self.pieces[n:]
        self.skipped = [j for j in self.skipped if j < n]
        if self.switch_at is not None and self.switch_at >= n:
            self.switch_at = None

    @property
    def fired(self) -> bool:
        return self.switch_at is not None
