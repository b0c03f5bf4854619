"""Token-level line wrapping for the heatmap.

Rich would wrap the text at word boundaries, but then we could not tell which screen
row holds a token (needed to scroll to the selection and to move up/down a line). So
the heatmap lays out its own lines: tokens are unbreakable unless wider than a line,
and a newline inside a token ends the line after a visible ↵.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from rich.cells import cell_len, chop_cells

from wsd_local.terminal_text import terminal_safe

ItemKind = Literal["token", "marker", "header", "text", "break"]

NEWLINE_GLYPH = "↵"
TAB_GLYPH = "⇥"
EMPTY_GLYPH = "▫"  # a token that ends inside a multi-byte character


@dataclass(frozen=True)
class Item:
    text: str
    kind: ItemKind
    token: int | None = None  # index into the flat token list, for "token" items


@dataclass(frozen=True)
class Placed:
    item: int  # index into the item list
    text: str  # the part of the item's text on this line
    x: int  # first cell on the line


def token_items(token: int, text: str) -> list[Item]:
    """A token's display pieces: control characters made visible, newlines as breaks."""
    if text == "":
        return [Item(EMPTY_GLYPH, "token", token)]
    items: list[Item] = []
    for n, part in enumerate(text.split("\n")):
        if n > 0:
            items.append(Item(NEWLINE_GLYPH, "token", token))
            items.append(Item("", "break"))
        part = part.replace("\t", TAB_GLYPH).replace("\r", "␍")
        part = "".join(c if c.isprintable() or c == " " else "�" for c in part)
        if part:
            items.append(Item(part, "token", token))
    return items


def text_items(text: str) -> list[Item]:
    """Plain text (no token boundaries), wrapped word by word."""
    items: list[Item] = []
    for n, line in enumerate(text.split("\n")):
        if n:
            items.append(Item("", "break"))
        for word in re.findall(r"\S+\s*|\s+", terminal_safe(line)):
            items.append(Item(word.replace("\t", TAB_GLYPH), "text"))
    return items


def layout(items: list[Item], width: int) -> list[list[Placed]]:
    """Greedy line filling. An item that does not fit starts a new line; one wider
    than the whole line is folded across lines."""
    width = max(1, width)
    lines: list[list[Placed]] = [[]]
    x = 0
    for i, item in enumerate(items):
        if item.kind == "break":
            lines.append([])
            x = 0
            continue
        w = cell_len(item.text)
        if x + w > width and x > 0:
            lines.append([])
            x = 0
        # chop_cells starts with "" when the first character is wider than the line
        chunks = [c for c in chop_cells(item.text, width) if c] if w > width else [item.text]
        for n, chunk in enumerate(chunks):
            if n > 0:
                lines.append([])
                x = 0
            lines[-1].append(Placed(i, chunk, x))
            x += cell_len(chunk)
    return lines


def token_rows(lines: list[list[Placed]], items: list[Item]) -> dict[int, list[tuple[int, int]]]:
    """For each token, the (row, x) of each of its pieces, in order."""
    rows: dict[int, list[tuple[int, int]]] = {}
    for y, line in enumerate(lines):
        for placed in line:
            token = items[placed.item].token
            if token is not None:
                rows.setdefault(token, []).append((y, placed.x))
    return rows


def nearest_on_row(lines: list[list[Placed]], items: list[Item], row: int, x: int) -> int | None:
    """The token on `row` whose piece is closest to column x (for up/down moves)."""
    if not 0 <= row < len(lines):
        return None
    best: tuple[int, int] | None = None
    for placed in lines[row]:
        token = items[placed.item].token
        if token is None:
            continue
        mid = placed.x + max(0, cell_len(placed.text) - 1) // 2
        dist = 0 if placed.x <= x < placed.x + cell_len(placed.text) else abs(mid - x)
        if best is None or dist < best[0]:
            best = (dist, token)
    return best[1] if best else None
