"""The token heatmap as rows of cells: each token on a background coloured by its
probability, the discarded draft struck through after the switch marker, the base
continuation in its own section."""

from __future__ import annotations

from .cells import Cell
from .colors import SWITCH_COLOR, WHATIF_COLOR, prob_style
from .layout import Item, Placed, text_items, token_items
from .tokens import TokenView

SWITCH_MARK = "┃"
WHATIF_MARK = "┆"


def heatmap_items(views: list[TokenView], switch: int | None, what_if: int | None,
                  answer: str = "") -> list[Item]:
    """Headers, tokens and markers in reading order. Markers sit after draft token
    `switch` (the real switch) and after `what_if` when that differs. An answer without
    tokens (drafter-only: nothing scored it) is shown as plain text."""
    draft = [v for v in views if v.draft_index is not None]
    base = [v for v in views if v.kind == "base"]
    items: list[Item] = []
    if draft:
        kept = sum(1 for v in draft if v.kind == "kept")
        header = f"Draft · {kept} kept"
        if kept < len(draft):
            header += f" · {len(draft) - kept} discarded"
        items += [Item(header, "header"), Item("", "break")]
        for v in draft:
            items += token_items(v.index, v.text)
            if v.draft_index == switch:
                items.append(Item(SWITCH_MARK, "marker"))
            if v.draft_index == what_if != switch:
                items.append(Item(WHATIF_MARK, "marker"))
    if base:
        if items:
            items += [Item("", "break"), Item("", "break")]
        items += [Item(f"Base continuation · {len(base)} tokens", "header"), Item("", "break")]
        for v in base:
            items += token_items(v.index, v.text)
    if not items:
        if answer:
            items += [Item("No per-token probabilities: no base model scored this answer",
                           "header"), Item("", "break")] + text_items(answer)
        else:
            items.append(Item("this answer is empty", "header"))
    return items


def token_style(view: TokenView, selected: bool) -> str:
    style = prob_style(view.prob)
    if view.kind == "discarded":
        style = f"strike dim {style}"
    if selected:
        style = f"bold reverse underline {style}"
    return style


def heatmap_rows(items: list[Item], lines: list[list[Placed]], views: list[TokenView],
                 selected: int | None) -> list[list[Cell]]:
    rows = []
    for line in lines:
        row = []
        for placed in line:
            item = items[placed.item]
            if item.kind == "token" and item.token is not None:
                view = views[item.token]
                row.append(Cell(placed.text, token_style(view, view.index == selected),
                                token=view.index))
            elif item.kind == "marker":
                color = SWITCH_COLOR if item.text == SWITCH_MARK else WHATIF_COLOR
                row.append(Cell(placed.text, f"bold {color}"))
            elif item.kind == "text":
                row.append(Cell(placed.text))
            else:
                row.append(Cell(placed.text, "bold"))
        rows.append(row)
    return rows
