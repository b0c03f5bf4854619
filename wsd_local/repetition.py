"""Loops in text: the repetition stop, and windows of a draft that repeat earlier text.

Small models fall into greedy loops, and a loop's copies are often not exact: a numbered
list repeats one item with a new number each time ("35. <strong>Clean up any loose
hair:</strong> ...", then "36. ..."), or a copy changes its bullet, its emphasis or its
spacing. So text is compared in a normal form (`normalize`): HTML tags and list markers
dropped, letters lowercased, every number written as 0 (also ordinals, "2nd", and
English number words: "Second, pack a variety of items..." then "Third, pack a variety
of items..."), every run of other characters (whitespace, punctuation, Markdown emphasis,
bullets) one space.

`RepetitionGuard` watches an answer as it is written: the answer ends as soon as its
tail, in normal form, is one span followed by enough copies of it. Short spans are not
loops worth stopping: "ha ha ha", a table rule ("|---|---|---|") or a run of newlines
repeat legitimately; a span counts only when its normal form has at least
`MIN_SPAN_CHARS` non-space characters, a letter among them. How many copies: `repeats`
(N, the `repetition_stop` setting), or fewer for a long span: the copies must hold N
whole spans or N x `COPY_CHARS` characters, whichever is less, and at least one whole
copy. So "A place of endless wonder," shows N + 1 times, while a list item of 72
characters or more (with N = 3) stops within its second copy.

`window_repeats` says whether the window of draft tokens ending at j lies in text that
repeats earlier text of the draft (the same normal form): views say when the switch
fell inside such a span, and `--switch-skip-repeats` skips such windows. It reads
tokens 0..j only, so the switch rule stays causal.
"""

from __future__ import annotations

import codecs
import math
import re
from dataclasses import dataclass, field
from typing import Sequence

#: A span must have this many non-space characters in normal form (a letter among them).
MIN_SPAN_CHARS = 12
#: With N = `repetition_stop`, the copies of a long span must hold N x COPY_CHARS
#: characters (at least one whole copy) rather than N whole copies.
COPY_CHARS = 24
#: The longest span watched, in normal-form characters (a long list item or paragraph).
MAX_SPAN_CHARS = 600
#: A window repeats earlier draft text when the text ending with it, at least this many
#: normal-form characters and the whole window, occurred earlier in the draft.
MIN_REPEAT_CHARS = 32

_TAG = re.compile(r"</?[A-Za-z][^<>\n]{0,200}>")
_OPEN_TAG_AT_END = re.compile(r"</?[A-Za-z][^<>\n]{0,200}$")  # still being written
# A list marker opening a line: a bullet, "12." / "12)", "a." / "b)" (numbers go anyway).
_LIST_MARKER = re.compile(r"(?m)^[ \t]*(?:[-*+•·▪‣◦]|\d+[.)]|[A-Za-z][.)])(?=\s)")
# A number standing alone ("35", "2nd"), not part of a word ("3D", "mp3", "t295").
_NUMBER = re.compile(r"(?<![^\W_])\d+(?:st|nd|rd|th)?(?![^\W\d_])")
_NOT_WORD = re.compile(r"[\W_]+")
_LETTER = re.compile(r"[^\W\d_]")
_UNITS = ("one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
          "fifteen sixteen seventeen eighteen nineteen").split()
_TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()
_ORDINALS = ("first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth "
             "thirteenth fourteenth fifteenth sixteenth seventeenth eighteenth nineteenth "
             "twentieth thirtieth fortieth fiftieth").split()
_NUMBER_WORDS = ["zero", "hundred", "thousand", *_UNITS, *_TENS, *_ORDINALS,
                 *(w + "ly" for w in _ORDINALS[:5]), "lastly"]
# Grouped by first letter: one alternation per word start instead of one per word.
_NUMBER_WORD = re.compile(r"\b(?:%s)\b" % "|".join(
    f"{first}(?:{'|'.join(sorted((w[1:] for w in _NUMBER_WORDS if w[0] == first), key=len, reverse=True))})"
    for first in sorted({w[0] for w in _NUMBER_WORDS})))


def normalize(text: str, line_start: bool = True) -> str:
    """The text as loops are compared: tags and list markers dropped, lowercase, numbers
    as 0, any other run of non-letters and non-digits as one space. `line_start=False`:
    the text continues a line, so it does not open with a list marker."""
    if not line_start:
        text = "\0" + text  # not a marker, not a space: it normalizes to one space
    text = _OPEN_TAG_AT_END.sub("", _TAG.sub(" ", text))
    text = _LIST_MARKER.sub(" ", text)
    text = _NUMBER_WORD.sub("0", _NUMBER.sub("0", text.lower()))
    return _NOT_WORD.sub(" ", text)


def _counts_as_span(span: str) -> bool:
    """Enough non-space characters, a letter among them (a normal form's only space is " ")."""
    return len(span) - span.count(" ") >= MIN_SPAN_CHARS and _LETTER.search(span) is not None


def copies_needed(span_chars: int, repeats: int) -> int:
    """Copies after the first occurrence that make a loop of a span this long (normal-form
    characters): N, or fewer when N x COPY_CHARS characters of copies come sooner."""
    return max(1, min(repeats, math.ceil(repeats * COPY_CHARS / span_chars)))


def loops_at_end(norm: str, repeats: int) -> bool:
    """The normal-form text ends with a span followed by the copies that make a loop."""
    n = len(norm)
    # A span has at least MIN_SPAN_CHARS characters, so the text's last MIN_SPAN_CHARS
    # occur again one period back: each earlier occurrence is a candidate period.
    probe = norm[-MIN_SPAN_CHARS:]
    if len(probe) < MIN_SPAN_CHARS:
        return False
    start = norm.rfind(probe, 0, n - 1)
    while start >= 0:
        period = n - len(probe) - start
        if period > MAX_SPAN_CHARS:
            break
        copies = copies_needed(period, repeats)
        if ((copies + 1) * period <= n
                and norm[n - copies * period:] == norm[n - (copies + 1) * period: n - period]
                and _counts_as_span(norm[n - period:])):
            return True
        start = norm.rfind(probe, 0, start + len(probe) - 1)
    return False


@dataclass
class RepetitionGuard:
    repeats: int  # N: the copies that end the answer (0: never; see copies_needed)
    _settled: str = ""  # normal form of the text up to the end of a recent line
    _open: str = ""  # the text after it, normalized again with every token
    _open_line_start: bool = True  # `_open` opens a line (else it was cut at a space)
    _decoder: codecs.IncrementalDecoder = field(
        default_factory=lambda: codecs.getincrementaldecoder("utf-8")(errors="replace"))

    def prime(self, text: str) -> None:
        """Text the answer already holds (the kept draft before the base model's first
        token): a continuation that repeats it is a loop too. Not judged itself."""
        if self.repeats > 0:
            self._open += text
            while len(self._open) > _OPEN_CHARS and self._settle():
                pass

    def push(self, data: bytes) -> bool:
        """Add a written token's bytes; True when the answer should end."""
        if self.repeats <= 0:
            return False
        new = self._decoder.decode(data)
        if not new:
            return False
        self._open += new
        if len(self._open) > _OPEN_CHARS:
            self._settle()
        return loops_at_end(_join(self._settled, normalize(self._open, self._open_line_start)),
                            self.repeats)

    def _settle(self) -> bool:
        """Move the open text up to its last line break (else its last space) into the
        normal form kept: no tag, number or list marker spans a line break, so the two
        parts normalize as the whole does (a tag cut at a space only delays a stop).
        False when there is no place to cut."""
        line_cut = self._open.rfind("\n") + 1
        cut = line_cut or self._open.rfind(" ") + 1
        if not cut:
            return False
        keep = 2 * MAX_SPAN_CHARS + self.repeats * COPY_CHARS  # the longest loop's text
        settled = normalize(self._open[:cut], self._open_line_start)
        self._settled = _join(self._settled, settled)[-keep:]
        self._open = self._open[cut:]
        self._open_line_start = bool(line_cut)
        return True


#: Open text longer than this is settled (normalizing it costs time with every token).
_OPEN_CHARS = 64


def _join(left: str, right: str) -> str:
    """Two normal forms as one: a space ending one and a space opening the other are one."""
    if left.endswith(" ") and right.startswith(" "):
        return left + right[1:]
    return left + right


def window_repeats(pieces: Sequence[str], j: int, window: int) -> bool:
    """The window of draft tokens j-w+1..j (their text pieces) lies in text that repeats
    earlier text of the draft: the draft up to token j ends with at least
    MIN_REPEAT_CHARS normal-form characters, the whole window among them, that occurred
    earlier in it."""
    start = max(0, j - window + 1)
    before = normalize("".join(pieces[:start]))
    upto = normalize("".join(pieces[: j + 1]))
    length = max(len(upto) - len(before), MIN_REPEAT_CHARS)
    if length >= len(upto):
        return False
    tail = upto[-length:]
    return _LETTER.search(tail) is not None and upto.find(tail) < len(upto) - length


__all__ = ["RepetitionGuard", "normalize", "window_repeats", "loops_at_end", "copies_needed",
           "MIN_SPAN_CHARS", "COPY_CHARS", "MAX_SPAN_CHARS", "MIN_REPEAT_CHARS"]
