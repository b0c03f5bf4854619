"""Text from outside made safe to show on a terminal.

Prompts, answers, chat titles, GGUF metadata, file names and what model servers send
reach the terminal through `wsd log`, `wsd generate`, `wsd models`, `wsd eval`, error
messages and the TUI. A terminal obeys control characters in that text: `ESC ] 0 ; …
BEL` retitles the window, `ESC [ 2 J` clears the screen, OSC 52 writes the clipboard,
a carriage return lets later text overwrite what was shown, and bidi overrides make
text read differently from what it is. So every printer passes such text through
`terminal_safe`, which shows those characters instead of obeying them:

- C0 controls (U+0000-U+001F) but newline and tab, DEL (U+007F) and the C1 controls
  (U+0080-U+009F, which some terminals take as ESC sequences) are written as escapes,
  `\\x1b`, `\\x07`, `\\x9b`: visible, and inert;
- CR LF becomes LF (text written on Windows); any other CR is `\\r`;
- bidi embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069) are written
  as `\\u202e` and so on: they cannot reorder what follows. Bidi marks (LRM, RLM, ALM)
  stay, as right-to-left text needs them and they reorder nothing.

`one_line=True` also writes newline and tab as `\\n` and `\\t`, for text that must stay
on its line (a table cell, a name, an error message).

JSON output keeps the data exact instead: `terminal_safe_json` writes the characters
`json.dumps` leaves raw (DEL, C1, bidi controls) as JSON's own `\\u` escapes, so the
text is inert on a terminal and decodes to the same values.

Escaping is per character, so text can be made safe piece by piece as it streams
(`TerminalStream`: the only state is a CR held back until the next piece shows whether
LF follows). Pieces are `str`, whole characters already (textstream.py decodes the
bytes), so UTF-8 is never cut. Our own colours are added around safe text, never
inside it.
"""

from __future__ import annotations

from dataclasses import dataclass

_BIDI_CONTROLS = [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]


def _escape(code: int) -> str:
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


_ESCAPES: dict[int, str] = {code: _escape(code) for code in [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0),
                                                              *_BIDI_CONTROLS]}
_KEEP_LAYOUT = {**_ESCAPES, ord("\n"): "\n", ord("\t"): "\t", ord("\r"): "\\r"}
_ONE_LINE = {**_ESCAPES, ord("\n"): "\\n", ord("\t"): "\\t", ord("\r"): "\\r"}
# json.dumps escapes C0 controls inside strings; these it writes as they are.
_JSON_ESCAPES = {code: f"\\u{code:04x}" for code in [0x7F, *range(0x80, 0xA0), *_BIDI_CONTROLS]}


def terminal_safe(text: str, one_line: bool = False) -> str:
    """`text` with every character a terminal would obey written as a visible escape
    (see the module); newline and tab kept unless `one_line`."""
    if not one_line:
        text = text.replace("\r\n", "\n")
    return text.translate(_ONE_LINE if one_line else _KEEP_LAYOUT)


def terminal_safe_json(json_text: str) -> str:
    """Text `json.dumps` wrote, with every character a terminal would obey written as a
    JSON escape: the same JSON values, nothing for a terminal to act on."""
    return json_text.translate(_JSON_ESCAPES)


@dataclass
class TerminalStream:
    """`terminal_safe` for text that arrives in pieces (a streamed answer): the pieces'
    safe forms, joined, are the safe form of the whole text."""

    one_line: bool = False
    _held_cr: bool = False

    def push(self, piece: str) -> str:
        if self._held_cr:
            piece = "\r" + piece
            self._held_cr = False
        if piece.endswith("\r") and not self.one_line:
            piece, self._held_cr = piece[:-1], True  # CR LF may be split across pieces
        return terminal_safe(piece, self.one_line)

    def finish(self) -> str:
        held, self._held_cr = self._held_cr, False
        return terminal_safe("\r", self.one_line) if held else ""


__all__ = ["terminal_safe", "terminal_safe_json", "TerminalStream"]
