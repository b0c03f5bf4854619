"""Where two answers to one prompt first part, and the margin their traces record there.

Two builds of llama.cpp (native AVX-512, AVX2, generic SSE kernels) add and multiply in
another order, so probabilities move at the 1e-3 level; an answer can change only where a
decision was that close. `python -m wsd_local.bench.compare_traces --where A B` prints,
for every trace that differs, the first decision that went another way:
- the draft: the first scored draft token that differs (the drafter's greedy pick; its
  own top-2 gap is not in the trace, the base model's probability of each pick is);
- the switch: the window score of each trace at the earlier switch, against γ;
- the continuation: the base model's first differing greedy pick, its probability on
  each side, and whether a trace flagged it as a near tie (top-2 gap < TOKEN_NEAR_TIE).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..switch import window_score
from ..trace import Trace


@dataclass(frozen=True)
class Parting:
    """How two traces of one prompt differ: which of switch, kept draft and answer, and
    the first decision that went another way, in words."""

    switch: bool
    kept: bool
    answer: bool
    where: str


def _first_difference(a: list[int], b: list[int]) -> int | None:
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return None if len(a) == len(b) else min(len(a), len(b))


def _p(trace: Trace, records: str, index: int) -> str:
    rows = getattr(trace, records)
    return f"{math.exp(rows[index].logprob):.4f}" if index < len(rows) else "-"


def _window(trace: Trace, j: int) -> str:
    probs = trace.draft_token_probs
    if j >= len(probs):
        return "unscored"
    return f"{window_score(probs, j, trace.window):.4f}"


def parting(a: Trace, b: Trace) -> Parting:
    """Where `a` and `b` (one prompt, one mode, two builds) first part."""
    switch = (a.switch_index, a.switch_fired) != (b.switch_index, b.switch_fired)
    kept, answer = a.kept_draft != b.kept_draft, a.answer != b.answer
    draft_at = _first_difference([t.id for t in a.draft_tokens], [t.id for t in b.draft_tokens])
    first_switch = min((t.switch_index for t in (a, b) if t.switch_index is not None), default=None)
    if draft_at is not None and (first_switch is None or draft_at <= first_switch):
        where = (f"the drafts part at scored token {draft_at} (the drafter's greedy pick; "
                 f"base p {_p(a, 'draft_tokens', draft_at)} vs {_p(b, 'draft_tokens', draft_at)})")
    elif switch and first_switch is not None:
        where = (f"switch {a.switch_index} vs {b.switch_index}: window score at {first_switch} "
                 f"{_window(a, first_switch)} vs {_window(b, first_switch)}, γ {a.threshold}")
    elif answer:
        at = _first_difference([t.id for t in a.continuation_tokens], [t.id for t in b.continuation_tokens])
        if at is None:
            where = "the continuations have the same tokens; the answers differ in text"
        else:
            flagged = at in a.continuation_near_ties or at in b.continuation_near_ties
            where = (f"the continuations part at base token {at} (greedy pick p "
                     f"{_p(a, 'continuation_tokens', at)} vs {_p(b, 'continuation_tokens', at)}; "
                     f"{'flagged' if flagged else 'not flagged'} as a near tie)")
    elif draft_at is not None:
        where = f"the drafts part at scored token {draft_at}, past the switch (the answers agree)"
    else:
        where = "scores only (the same tokens, switch and answer)"
    return Parting(switch, kept, answer, where)
