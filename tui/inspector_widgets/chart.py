"""The window-score chart as rows of cells: a block-character bar of g_j per draft
token, the threshold line, and the switch and what-if markers. Long drafts wrap into
bands (one per screen width), so 500 tokens read top to bottom like the heatmap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .cells import Cell
from .colors import ABOVE_COLOR, BELOW_COLOR, SWITCH_COLOR, THRESHOLD_COLOR, WHATIF_COLOR

BLOCKS = " ▁▂▃▄▅▆▇█"
GUTTER = 6  # "0.80 ┤"
TICK_EVERY = 10
SELECTED_BG = "#5a5a5a"


@dataclass(frozen=True)
class ChartSpec:
    scores: tuple[float, ...]  # g_j per draft token (with the what-if window)
    threshold: float
    window: int
    switch: int | None = None  # the answer's real switch point k
    what_if: int | None = None  # the what-if switch point k'
    selected: int | None = None  # selected draft token
    height: int = 5  # bar rows per band (40 levels in eighths)


def band_ranges(n: int, band_width: int) -> list[tuple[int, int]]:
    """[start, end) token ranges, one per band."""
    band_width = max(1, band_width)
    return [(s, min(n, s + band_width)) for s in range(0, n, band_width)]


def bar_glyphs(score: float, height: int) -> list[str]:
    """The column for one score, top row first, in eighths of a row."""
    levels = score * height * 8
    eighths = 0 if levels <= 0 or math.isnan(levels) else max(1, min(height * 8, round(levels)))
    column = []
    for r in range(height):
        fill = eighths - (height - 1 - r) * 8
        column.append(BLOCKS[max(0, min(8, fill))])
    return column


def threshold_row(threshold: float, height: int) -> int:
    """Row index (from the top) that holds the threshold line: the row whose span
    (lower, upper] contains it, so γ 0.8 on 5 rows sits on top of the fourth row."""
    from_bottom = min(height - 1, max(0, math.ceil(threshold * height) - 1))
    return height - 1 - from_bottom


def threshold_glyph(threshold: float, height: int) -> str:
    """Low, middle or high line, by where the threshold falls inside its row."""
    from_bottom = height - 1 - threshold_row(threshold, height)
    frac = threshold * height - from_bottom
    return "▁" if frac < 0.375 else "─" if frac < 0.625 else "▔"


def _gutter(row: int, spec: ChartSpec) -> str:
    if row == threshold_row(spec.threshold, spec.height):
        return f"{spec.threshold:.2f}"[:4].rjust(4) + " ┤"
    if row == 0:
        return " 1.0 ┤"
    if row == spec.height - 1:
        return "   0 ┤"
    return "     │"


def _axis(start: int, end: int) -> str:
    """Token indices every TICK_EVERY columns, where they fit."""
    chars = [" "] * (end - start)
    for j in range(start, end):
        label = str(j)
        col = j - start
        if j % TICK_EVERY == 0 and col + len(label) <= len(chars):
            chars[col:col + len(label)] = list(label)
    return "".join(chars)


def chart_rows(spec: ChartSpec, width: int) -> list[list[Cell]]:
    """All rows of the chart at a given width (gutter included)."""
    n = len(spec.scores)
    if n == 0:
        return [[Cell("no scored draft: nothing to chart", "dim")]]
    band_width = max(1, width - GUTTER)
    t_row = threshold_row(spec.threshold, spec.height)
    rows: list[list[Cell]] = []
    for b, (start, end) in enumerate(band_ranges(n, band_width)):
        if b:
            rows.append([])
        columns = [bar_glyphs(spec.scores[j], spec.height) for j in range(start, end)]
        for r in range(spec.height):
            row = [Cell(_gutter(r, spec), "dim")]
            for col, j in enumerate(range(start, end)):
                row.append(_bar_cell(spec, j, columns[col][r], r, t_row))
            rows.append(row)
        rows.append([Cell(" " * GUTTER)] + [_marker_cell(spec, j) for j in range(start, end)])
        rows.append([Cell("  tok ", "dim"), Cell(_axis(start, end), "dim")])
    return rows


def _bar_cell(spec: ChartSpec, j: int, glyph: str, r: int, t_row: int) -> Cell:
    undefined = j < spec.window - 1  # g_j counts as 0 before a full window
    style = ""
    if undefined:
        glyph = "·" if r == spec.height - 1 else " "
        style = "dim"
    elif glyph != " ":
        style = ABOVE_COLOR if spec.scores[j] >= spec.threshold else BELOW_COLOR
    if glyph == " " and r == t_row:
        glyph, style = threshold_glyph(spec.threshold, spec.height), THRESHOLD_COLOR
    if spec.switch is not None and j > spec.switch and not undefined:
        style += " dim"  # past the real switch: the discarded tail
    if j == spec.selected:
        style += f" on {SELECTED_BG}"
    return Cell(glyph, style.strip(), token=j)


def _marker_cell(spec: ChartSpec, j: int) -> Cell:
    if j == spec.switch:
        return Cell("▲", f"bold {SWITCH_COLOR}", token=j)
    if j == spec.what_if:
        return Cell("△", f"bold {WHATIF_COLOR}", token=j)
    if j == spec.selected:
        return Cell("•", "bold", token=j)
    return Cell(" ", token=j)
