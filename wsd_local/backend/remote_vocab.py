"""The bytes of a server's tokens, exactly, without the server's vocabulary file.

The decoder needs each token's exact bytes (answers are assembled from them, and a
token may end inside a multi-byte character). A server only decodes text: a single
token that is half a character decodes to U+FFFD, and some tokenizers "clean up"
spaces when decoding (" ." -> "."). So bytes come from sources that are exact:

1. The raw vocabulary strings (`/tokenize` with `return_token_strs`) of every text the
   backend tokenizes — the prompt frame and the draft — turned into bytes by the
   tokenizer's convention: byte-level BPE (GPT-2's byte-to-character table: Llama 3,
   SmolLM2, Qwen) or SentencePiece (`▁` for a space, `<0xNN>` byte tokens: Gemma,
   Llama 2).
2. The streamed text of a continuation: vLLM holds back all of a token's text while
   it ends inside a character, so a token whose text arrives on its own is exactly
   that text, and a group of tokens that together complete characters is split by
   tokenizing its text (`StreamBytes`).
3. As a last resort, decoding one token on the server (exact for whole characters).

When the server's tokenizer is the local drafter's (checked by `same_vocabulary`), the
drafter's own table is used and none of this is needed.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Callable, Sequence

BYTE_LEVEL = "byte-level"
SENTENCEPIECE = "sentencepiece"
UNKNOWN = "unknown"

_BYTE_TOKEN = re.compile(r"<0x([0-9A-Fa-f]{2})>")


@functools.lru_cache(maxsize=1)
def byte_level_table() -> dict[str, int]:
    """GPT-2's byte-level BPE alphabet: character -> byte (the inverse of its
    `bytes_to_unicode`: printable bytes stand for themselves, the others are shifted
    past U+0100)."""
    printable = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
                 + list(range(ord("®"), ord("ÿ") + 1)))
    chars = printable[:]
    shifted = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            chars.append(256 + shifted)
            shifted += 1
    return {chr(c): b for b, c in zip(printable, chars)}


def detect_style(raw_tokens: Sequence[str]) -> str:
    """The tokenizer's convention, from the raw strings of a text with spaces and a
    newline in it."""
    joined = "".join(raw_tokens)
    if "Ġ" in joined or "Ċ" in joined:
        return BYTE_LEVEL
    if "▁" in joined:
        return SENTENCEPIECE
    return UNKNOWN


def raw_token_bytes(raw: str, style: str) -> bytes | None:
    """A vocabulary entry's bytes; None when the convention is unknown."""
    if style == BYTE_LEVEL:
        table = byte_level_table()
        try:
            return bytes(table[ch] for ch in raw)
        except KeyError:
            return raw.encode("utf-8")  # an added token (e.g. a special), stored as text
    if style == SENTENCEPIECE:
        match = _BYTE_TOKEN.fullmatch(raw)
        if match:
            return bytes([int(match.group(1), 16)])
        return raw.replace("▁", " ").encode("utf-8")
    return None


def incomplete_tail(data: bytes) -> int:
    """How many bytes at the end of `data` start a UTF-8 character not yet complete."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte & 0xC0 == 0x80:  # a continuation byte: look further back
            continue
        need = 2 if byte & 0xE0 == 0xC0 else 3 if byte & 0xF0 == 0xE0 else 4 if byte & 0xF8 == 0xF0 else 1
        return back if need > back else 0
    return 0


@dataclass
class StreamBytes:
    """Per-token bytes of a streamed continuation, from the text the server releases.

    Feed `push(token_id, text_delta)` in order; it returns the tokens whose bytes are
    now known, with those bytes. A token whose delta is empty (it ended inside a
    character, or is a special token the server does not print) waits for the token
    that releases text; that group's bytes are split by `split_group` (tokenizing the
    group's text on the server) when it reproduces the group's ids, else the whole text
    goes to the group's last token. Either way the bytes concatenate to exactly the
    text the server wrote; `exact` says which ids may be cached.

    `carry` is the start of a character the context already began (a switch point
    inside a character): the server's first text repeats those bytes, they are not
    the continuation's.
    """

    known: Callable[[int], bytes | None]  # cached exact bytes of an id, if any
    split_group: Callable[[str, list[int]], list[bytes] | None]
    carry: bytes = b""
    # The server holds back all of a token's text when it ends inside a character
    # (vLLM: tokenizers' DecodeStream), so a token that releases text on its own is
    # exactly that text. Without that guarantee such bytes are not cached.
    whole_token_release: bool = True
    _group: list[int] = field(default_factory=list)

    def push(self, token: int, delta: str) -> list[tuple[int, bytes, bool]]:
        """(id, bytes, exact) for every token released by this one."""
        self._group.append(token)
        if not delta:
            return []
        data = delta.encode("utf-8")
        if self.carry and data.startswith(self.carry):
            data = data[len(self.carry):]
        self.carry = b""
        group, self._group = self._group, []
        return self._split(group, data)

    def finish(self) -> list[tuple[int, bytes, bool]]:
        """The stream ended with tokens whose text never came (an answer cut inside a
        character): their cached bytes if known, else nothing."""
        group, self._group = self._group, []
        return [(t, self.known(t) or b"", self.known(t) is not None) for t in group]

    def _split(self, group: list[int], data: bytes) -> list[tuple[int, bytes, bool]]:
        cached = [self.known(t) for t in group]
        if all(c is not None for c in cached):
            return [(t, c, True) for t, c in zip(group, cached)]  # type: ignore[misc]
        if len(group) == 1:
            return [(group[0], data, self.whole_token_release)]
        unknown = [i for i, c in enumerate(cached) if c is None]
        if len(unknown) == 1:
            # Token bytes do not depend on context: the one unknown is what the others leave.
            i = unknown[0]
            before, after = b"".join(cached[:i]), b"".join(cached[i + 1:])  # type: ignore[arg-type]
            if data.startswith(before) and data.endswith(after) and len(data) >= len(before) + len(after):
                middle = data[len(before): len(data) - len(after)]
                cached[i] = middle
                return [(t, c, True) for t, c in zip(group, cached)]  # type: ignore[misc]
        pieces = self.split_group(data.decode("utf-8", errors="replace"), group)
        if pieces is not None and b"".join(pieces) == data:
            return [(t, p, True) for t, p in zip(group, pieces)]
        # Not reproducible: the text is still exact, only its split between these
        # tokens is not (it shows in the inspector's per-token view only).
        return [(t, b"", False) for t in group[:-1]] + [(group[-1], data, False)]
