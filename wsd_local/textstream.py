"""Bytes from tokens to text that is safe to show.

- A token may end inside a multi-byte UTF-8 character: its bytes are held back until
  the character is complete (an incremental decoder), so nothing shows as garbage.
  When the text ends there (a token budget, Esc, a full context), the incomplete
  bytes are dropped, as llama.cpp's server does: an answer never ends in U+FFFD.
- A stop string may arrive over several tokens: text that could be the start of one is
  held back until it is clearly not, and the text is cut at the first stop string.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence


def token_pieces(token_bytes: Sequence[bytes]) -> list[str]:
    """Text pieces, one per token, that concatenate to the decoded text. A token that
    ends mid-character gets an empty piece; the next carries the whole character (and
    a character the last tokens leave incomplete is no text at all)."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    return [decoder.decode(b) for b in token_bytes]


def assign_piece_texts(records: Sequence[Any], text: str, token_bytes: Callable[[int], bytes]) -> int:
    """Give each token record (`.id`, `.text`) its piece of `text`, the text its tokens
    wrote; return how many records have one (tokens past a stop string that cut `text`
    have none)."""
    pieces = token_pieces([token_bytes(r.id) for r in records])
    used = kept = 0
    for record, piece in zip(records, pieces):
        if used >= len(text) and piece:
            break
        record.text = text[used: used + len(piece)]
        used += len(record.text)
        kept += 1
    return kept


def whole_characters(data: bytes) -> str:
    """`data` as text, without the bytes of a character its end leaves incomplete."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    return decoder.decode(data)


def earliest_stop(text: str, stops: Sequence[str], start: int = 0) -> int | None:
    """Index of the first stop string occurrence at or after `start`, or None."""
    found = [i for s in stops if (i := text.find(s, start)) >= 0]
    return min(found) if found else None


def partial_stop_len(text: str, stops: Sequence[str]) -> int:
    """Length of the longest suffix of `text` that is a proper prefix of a stop string."""
    best = 0
    for stop in stops:
        for n in range(min(len(stop) - 1, len(text)), best, -1):
            if text.endswith(stop[:n]):
                best = n
                break
    return best


@dataclass
class TextStream:
    """Accumulates token bytes; `push` returns the newly showable text."""

    stops: Sequence[str] = ()
    prefix: str = ""  # text already shown before this stream (stop strings may straddle it)
    text: str = ""  # decoded so far (may include held-back text)
    shown: int = 0  # characters of `text` already returned
    stopped_at: int | None = None  # index in `text` where a stop string begins
    prefix_cut: int | None = None  # set when a stop string began inside `prefix`
    _decoder: codecs.IncrementalDecoder = field(
        default_factory=lambda: codecs.getincrementaldecoder("utf-8")(errors="replace"))

    def push(self, data: bytes) -> str:
        if self.stopped_at is not None:
            return ""
        self.text += self._decoder.decode(data)
        return self._release()

    def finish(self) -> str:
        """End of stream: release held-back text. Bytes of a character the stream ends
        inside are dropped (they are no text yet, and never will be)."""
        self._decoder.reset()
        return self._release(final=True)

    @property
    def stopped(self) -> bool:
        return self.stopped_at is not None

    @property
    def final_text(self) -> str:
        return self.text if self.stopped_at is None else self.text[: self.stopped_at]

    def _release(self, final: bool = False) -> str:
        if self.stops and self.stopped_at is None:
            # Search from where a stop string could begin, the shown prefix included.
            combined = self.prefix + self.text
            longest = max(len(s) for s in self.stops)
            begin = max(0, len(self.prefix) + self.shown - longest)
            hit = earliest_stop(combined, self.stops, begin)
            if hit is not None:
                # A stop string that began in the prefix cuts the prefix too.
                self.prefix_cut = hit if hit < len(self.prefix) else None
                self.stopped_at = max(hit - len(self.prefix), 0)
                self.text = self.text[: self.stopped_at]
        limit = len(self.final_text)
        if not final and self.stopped_at is None and self.stops:
            # A stop string may also have begun in the prefix: hold back all of the
            # text it could still take.
            held = partial_stop_len(self.prefix + self.text, self.stops)
            limit -= min(held, len(self.text))
        if limit <= self.shown:
            return ""
        out = self.text[self.shown:limit]
        self.shown = limit
        return out
