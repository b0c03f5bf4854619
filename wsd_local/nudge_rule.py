"""Nudging's rule, as pure functions of the numbers a trace records (docs/NUDGING.md).

The base model writes while its top-1 probability stays at or above the threshold; at
the first token below it, the drafter writes `nudge_tokens` tokens, split into words at
spaces. The first word is always kept; before each later word the base model is asked
for its next token, and it takes the turn back at the first word boundary where that
token is likely enough (top-1 probability >= threshold) or starts the drafter's next
word. Without such a boundary every word but the last (possibly cut) one is kept and
the drafter writes again.

`nudging.py` decodes with these functions; `check_turns` recomputes every hand-over of
a finished trace from the probabilities it stores, which the tests use.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

DRAFTER, BASE = "drafter", "base"

#: Why a turn began. To the drafter: the answer starts; the base model is unsure of its
#: next token; it ended its turn (end of text or a turn tag); it repeated itself; it
#: declined every word boundary of the drafter's last turn. To the base model: it is
#: confident at a word boundary, or its next token starts the drafter's next word.
TO_DRAFTER = ("start", "base_unsure", "base_ended", "base_repeating", "base_declined")
TO_BASE = ("base_confident", "base_agrees")
HANDOVER_REASONS = TO_DRAFTER + TO_BASE

#: Most turns of the drafter in one answer (completion_with_nudging's max_round).
MAX_ROUNDS = 150
#: The same words kept this many rounds in a row after the first stop the answer.
MAX_REPEATED_WORDS = 3
#: Granularity of the base model's repetition check, in its tokens (the reference asks
#: the base model for this many tokens at a time).
BASE_CHUNK_TOKENS = 16
#: A base chunk of at least this many space-separated pieces that already occurs in the
#: answer is a repetition.
REPEAT_MIN_WORDS = 6


# -- the drafter's words -------------------------------------------------------------------
def split_words(text: str) -> tuple[str, list[str]]:
    """The leading spaces, and the words (split at single spaces, as the reference does:
    newlines stay inside words, two spaces make an empty word)."""
    body = text.lstrip(" ")
    return text[: len(text) - len(body)], body.split(" ")


def words_text(prefix: str, words: Sequence[str], n: int) -> str:
    """The first `n` words as they were written."""
    return prefix + " ".join(words[:n])


def probe_points(words: Sequence[str]) -> list[int]:
    """Word counts after which the base model is asked: every boundary from after the
    first word to before the last, except before an empty word (two spaces)."""
    if len(words) < 2:
        return []
    return [n for n in range(1, len(words)) if words[n] != ""]


def agrees(next_word: str, token_bytes: bytes) -> bool:
    """The base model's token starts the drafter's next word (with its space)."""
    return bool(token_bytes) and (" " + next_word).encode("utf-8").startswith(token_bytes)


def takes_over(top_prob: float, agreed: bool, threshold: float) -> bool:
    """At a word boundary: the base model takes the turn back."""
    return agreed or top_prob >= threshold


def unsure(top_prob: float, threshold: float) -> bool:
    """In the base model's turn: this token hands over to the drafter."""
    return top_prob < threshold


def words_kept(n_words: int, accepted_at: int | None) -> int:
    """Words of a drafter turn that enter the answer: up to the boundary where the base
    model took over, else all but the last (a single word is kept whole)."""
    if accepted_at is not None:
        return accepted_at
    return n_words if n_words < 2 else n_words - 1


# -- the base model's repetitions -------------------------------------------------------------
def chunk_end(index: int) -> bool:
    """Base token `index` of a turn (0: the one it took over with) closes a chunk."""
    return index > 0 and (index + 1) % BASE_CHUNK_TOKENS == 0


def repeats_turn(chunk: str, turn_before: str) -> bool:
    """A complete chunk that the base model already wrote in this turn."""
    return bool(chunk) and chunk in turn_before


def repeats_answer(chunk: str, answer_before: str) -> bool:
    """A chunk of at least REPEAT_MIN_WORDS pieces that already occurs in the answer."""
    return len(chunk.split(" ")) >= REPEAT_MIN_WORDS and chunk in answer_before


# -- checking a trace ----------------------------------------------------------------------
def check_turns(spans: Sequence[dict[str, Any]], threshold: float, stop_reason: str) -> None:
    """Recompute every hand-over of a nudging trace from its recorded probabilities;
    AssertionError names the first span that does not follow the rule."""
    assert spans, "a nudging answer has at least the drafter's first turn"
    assert spans[0]["model"] == DRAFTER and spans[0]["handover"]["reason"] == "start"
    for i, span in enumerate(spans):
        handover = span["handover"]
        nxt = spans[i + 1] if i + 1 < len(spans) else None
        assert handover["reason"] in (TO_DRAFTER if span["model"] == DRAFTER else TO_BASE), \
            f"span {i}: reason {handover['reason']!r} for the {span['model']}"
        if span["model"] == DRAFTER:
            _check_drafter(i, span, nxt, threshold, stop_reason)
        else:
            _check_base(i, span, nxt, threshold)


def _check_drafter(i: int, span: dict[str, Any], nxt: dict[str, Any] | None, threshold: float,
                   stop_reason: str) -> None:
    probes = span.get("probes", [])
    prefix, words = split_words(span["written"])
    assert span["written"].startswith(span["text"]), f"span {i}: kept text is not what was written"
    if not probes and nxt is None:
        return  # the answer ended in this turn: everything written so far is kept
    assert [p["words"] for p in probes] == probe_points(words)[: len(probes)], \
        f"span {i}: probes at the wrong word boundaries"
    accepted = None
    for n, probe in enumerate(probes):
        ok = probe.get("ended", False) or takes_over(probe["top_prob"], probe["agrees"], threshold)
        if probe["top_prob"] is not None and probe["token"] is not None:
            assert probe["agrees"] == agrees(words[probe["words"]], probe["token"].encode("utf-8")) \
                or probe["token"] == "" or "\ufffd" in probe["token"], f"span {i}: agreement"
        if ok:
            assert n == len(probes) - 1, f"span {i}: the base model took over at a later boundary"
            accepted = probe["words"]
    if accepted is None and nxt is not None and stop_reason != "repetition":
        assert len(probes) == len(probe_points(words)), f"span {i}: boundaries left unasked"
    if stop_reason == "repetition" and nxt is None:
        return
    assert span["text"] == words_text(prefix, words, words_kept(len(words), accepted)), \
        f"span {i}: kept words"
    if nxt is None:
        return
    if accepted is None:
        assert nxt["model"] == DRAFTER and nxt["handover"]["reason"] == "base_declined", \
            f"span {i}: the base model declined every boundary, the drafter writes again"
    elif probes[-1].get("ended"):
        assert nxt["model"] == DRAFTER and nxt["handover"]["reason"] == "base_ended"
    else:
        reason = "base_agrees" if probes[-1]["agrees"] else "base_confident"
        assert nxt["model"] == BASE and nxt["handover"]["reason"] == reason, f"span {i}: {reason}"
        assert nxt["handover"]["base_top_prob"] == probes[-1]["top_prob"]


def _check_base(i: int, span: dict[str, Any], nxt: dict[str, Any] | None, threshold: float) -> None:
    tops = span["top_probs"]
    # The token the base model took over with is kept whatever its probability.
    for j, p in enumerate(tops[1:], start=1):
        assert not unsure(p, threshold), f"span {i}: base token {j} (p {p:.4f}) should have handed over"
    if tops:
        assert math.isclose(tops[0], span["handover"]["base_top_prob"], rel_tol=0, abs_tol=1e-12)
    if nxt is not None and nxt["handover"]["reason"] == "base_unsure":
        assert unsure(nxt["handover"]["base_top_prob"], threshold), f"span {i + 1}: not unsure"


__all__ = ["HANDOVER_REASONS", "TO_DRAFTER", "TO_BASE", "MAX_ROUNDS", "MAX_REPEATED_WORDS",
           "BASE_CHUNK_TOKENS", "REPEAT_MIN_WORDS", "split_words", "words_text", "probe_points",
           "agrees", "takes_over", "unsure", "words_kept", "chunk_end", "repeats_turn",
           "repeats_answer", "check_turns"]
