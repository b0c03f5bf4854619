"""One flat list of the tokens of an answer, ready to show: the scored draft (kept,
then discarded) followed by the base model's continuation."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from wsd_local.modes import DRAFTER, mode_named
from wsd_local.switch import window_scores
from wsd_local.trace import Trace

TokenKind = Literal["kept", "discarded", "base"]

KIND_LABEL: dict[str, str] = {
    "kept": "drafter, kept",
    "discarded": "drafter, discarded",
    "base": "base model",
}


@dataclass(frozen=True)
class TokenView:
    index: int  # position in the flat list
    kind: TokenKind
    text: str
    prob: float
    draft_index: int | None = None  # j, for draft tokens (the window-score axis)
    base_index: int | None = None  # position in the continuation


def token_views(trace: Trace) -> list[TokenView]:
    """Draft tokens 0..n-1 then continuation tokens. Without a switch (base-only and
    drafter-only answers) every scored draft token is part of the answer: "kept"."""
    views: list[TokenView] = []
    k = trace.switch_index
    for j, tok in enumerate(trace.draft_tokens):
        kind: TokenKind = "kept" if k is None or j <= k else "discarded"
        views.append(TokenView(len(views), kind, tok.text, _prob(tok.logprob), draft_index=j))
    # a drafter-only answer has no base span, whatever a (hand-made) trace may carry
    continuation = [] if mode_named(trace.mode).alone == DRAFTER else trace.continuation_tokens
    for i, tok in enumerate(continuation):
        views.append(TokenView(len(views), "base", tok.text, _prob(tok.logprob), base_index=i))
    return views


def _prob(logprob: float) -> float:
    try:
        return math.exp(logprob)
    except OverflowError:  # a corrupt positive logprob; show it as certain
        return 1.0


@dataclass(frozen=True)
class WhatIf:
    """Where the switch falls for a threshold and window, from stored probabilities
    (`Trace.what_if`), with the window scores to draw."""
    threshold: float
    window: int
    index: int | None  # k' (None when the answer has no switch point, or it is unknown)
    fired: bool  # a window reached the threshold (else the whole draft is kept)
    scores: tuple[float, ...]  # g_j with this window
    # n when the switch lies past the n scored tokens of an online answer (unknown)
    unknown_past: int | None = None

    @property
    def known(self) -> bool:
        return self.unknown_past is None


def compute_what_if(trace: Trace, threshold: float, window: int) -> WhatIf:
    scores = tuple(window_scores(trace.draft_token_probs, window))
    found = trace.what_if(threshold, window)
    return WhatIf(threshold, window, found.index, found.fired, scores, found.unknown_past)


def describe_token(view: TokenView, what_if: WhatIf, actual_switch: int | None) -> str:
    """The details line for a selected token."""
    where = (f"draft token {view.draft_index}" if view.draft_index is not None
             else f"base token {view.base_index}")
    parts = [where, repr(view.text), KIND_LABEL[view.kind]]  # repr: whitespace visible
    if view.kind == "base":
        parts.append(f"p {view.prob:.3f} (its own)")
    else:
        parts.append(f"p {view.prob:.3f} (base check)")
        j = view.draft_index
        assert j is not None
        if j < what_if.window - 1:
            parts.append(f"window — (needs {what_if.window} tokens)")
        else:
            g = what_if.scores[j]
            rel = "≥" if g >= what_if.threshold else "<"
            parts.append(f"window {g:.3f} {rel} γ {what_if.threshold:.2f} (w {what_if.window})")
        if actual_switch is not None and j == actual_switch:
            parts.append("▲ switch")
        if what_if.index is not None and j == what_if.index and what_if.index != actual_switch:
            parts.append("△ what-if switch")
    return " · ".join(parts)


def what_if_summary(trace: Trace, what_if: WhatIf) -> str:
    """One line: where the switch would fall, compared with where it fell."""
    n = len(trace.draft_tokens)
    if not what_if.known:
        # online mode stopped the drafter at its switch: later windows were never scored
        return (f"what-if: unknown past token {what_if.unknown_past} (no window reaches γ in "
                f"the {n} scored tokens; the drafter stopped at the switch) · re-run drafts on")
    if what_if.index is None:
        return "what-if: this answer has no switch point (single-model mode)"
    if n == 0:
        return "what-if: the draft is empty"
    k, actual = what_if.index, trace.switch_index
    where = f"switch at {k}" if what_if.fired else f"no window reaches γ, all kept (k {k})"
    delta = ("as answered" if actual is None or k == actual
             else f"{abs(k - actual)} {'earlier' if k < actual else 'later'}")
    return f"what-if: {where} ({delta}) · keeps {k + 1}/{n}"
