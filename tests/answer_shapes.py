"""Answers of the demo pair with the shape a test needs, chosen at run time, and
comparisons of two decoding paths that allow the near ties the traces flag.

What the demo pair writes depends on the CPU: llama.cpp's kernels (AVX-512, AVX2, SSE,
NEON, a GPU) add and multiply in different orders, probabilities move at the 1e-3
level, and a near-tie switch or greedy pick goes the other way. So a test never takes
a phrase, an index or a bound from one machine's answer:
- a test that needs, say, a switch that fires with a continuation long enough to cut
  tries candidate prompts and thresholds in order (`first_answer`) and takes the first
  answer that has the shape; none of a generous list having it is a failure that names
  what was tried, never a skip;
- cut points and stop strings come from the chosen answer itself (`stop_string`);
- two decoding paths may part only where a trace flags a near tie (`assert_same_answer`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

from wsd_local.bench.prompts import BENCH_PROMPTS
from wsd_local.switch import switch_index
from wsd_local.trace import Trace

#: γ 0.5 makes the demo pair switch early on most everyday prompts; lower and higher
#: thresholds move the switch when a machine's numbers put it elsewhere.
THRESHOLDS: tuple[float, ...] = (0.5, 0.3, 0.65, 0.8)


def candidates(prompts: Iterable[str] = BENCH_PROMPTS,
               thresholds: Iterable[float] = THRESHOLDS) -> Iterator[tuple[str, float]]:
    """(prompt, threshold) pairs, every prompt at the first threshold first."""
    prompts = list(prompts)
    for threshold in thresholds:
        for prompt in prompts:
            yield prompt, threshold


@dataclass
class Chosen:
    prompt: str
    threshold: float
    trace: Trace


def first_answer(run: Callable[[str, float], Trace], has_shape: Callable[[Trace], bool], what: str,
                 tries: Iterable[tuple[str, float]] | None = None) -> Chosen:
    """The first candidate whose answer `has_shape`; an AssertionError naming `what`
    and every candidate tried when none has it."""
    tried = []
    for prompt, threshold in (candidates() if tries is None else tries):
        trace = run(prompt, threshold)
        if has_shape(trace):
            return Chosen(prompt, threshold, trace)
        tried.append(f"{prompt!r} at γ {threshold} (switch {trace.switch_index}, "
                     f"{len(trace.kept_draft)} + {len(trace.continuation)} characters)")
    raise AssertionError(f"no candidate answer has {what}; tried: " + "; ".join(tried))


def stop_string(answer: str, start: int, end: int, length: int = 6) -> str | None:
    """A stop string of `length` characters that first occurs in `answer` at a position in
    [start, end - length] and has a character other than whitespace, or None."""
    for at in range(max(0, start), end - length + 1):
        stop = answer[at: at + length]
        if stop.strip() and answer.index(stop) == at:
            return stop
    return None


def kept_stop(trace: Trace) -> str | None:
    """A stop string inside the kept draft (after its first character)."""
    return stop_string(trace.answer, 1, len(trace.kept_draft))


def continuation_stop(trace: Trace) -> str | None:
    """A stop string inside the base model's continuation (after its first character)."""
    kept = len(trace.kept_draft)
    return stop_string(trace.answer, kept + 1, len(trace.answer))


def assert_same_answer(a: Trace, b: Trace, label: str, score_drift: float = 2e-2) -> bool:
    """Two paths to the same answer (online vs paper, re-run vs paper, remote vs local):
    the same scored draft tokens with the same scores (within `score_drift`), the same
    switch unless a window score at the earlier one is a near tie in either trace, the
    same answer unless the continuations part at a flagged near tie of the base model's
    greedy pick. A near tie that decides is reported as a warning. Returns whether the
    switch and kept draft agree (then the answers were compared too)."""
    for trace in (a, b):
        trace.check()
        assert trace.switch_index == switch_index(trace.draft_token_probs, trace.window, trace.threshold)
    n = min(len(a.draft_tokens), len(b.draft_tokens))
    assert [t.id for t in a.draft_tokens[:n]] == [t.id for t in b.draft_tokens[:n]], label
    drift = max((abs(x - y) for x, y in zip(a.draft_token_probs, b.draft_token_probs)), default=0.0)
    assert drift < score_drift, f"{label}: scores differ by {drift}"
    if a.switch_index != b.switch_index:
        first = min(a.switch_index, b.switch_index)
        assert first in a.near_ties or first in b.near_ties, (
            f"{label}: switch {a.switch_index} vs {b.switch_index} without a near tie at {first} "
            f"(flagged: {a.near_ties}, {b.near_ties})")
        warnings.warn(f"{label}: switch {a.switch_index} vs {b.switch_index}, decided by a window "
                      f"score within 1e-3 of the threshold at {first}")
        return False
    assert a.kept_draft == b.kept_draft, label
    if a.answer != b.answer:
        assert a.continuation_near_ties or b.continuation_near_ties, f"{label}: answers differ without a near tie"
        at = next(i for i, (x, y) in enumerate(zip(a.continuation_tokens + [None], b.continuation_tokens + [None]))
                  if x is None or y is None or x.id != y.id)
        assert at in a.continuation_near_ties or at in b.continuation_near_ties, (
            f"{label}: continuations part at token {at}, not at a flagged near tie "
            f"({a.continuation_near_ties}, {b.continuation_near_ties})")
        warnings.warn(f"{label}: continuations part at token {at}, a near tie of the base model's top-2 tokens")
    return True


def same_draft_tokens(a: Trace, b: Trace, upto: int) -> bool:
    """Whether both drafts have the same first `upto` scored base tokens."""
    return [t.id for t in a.draft_tokens[:upto]] == [t.id for t in b.draft_tokens[:upto]]
