"""The heatmap widget: token selection by keys or mouse, scrolled to the selection."""

from __future__ import annotations

from textual.binding import Binding
from textual.message import Message
from textual.reactive import reactive

from .cell_view import CellView
from .cells import Cell
from .heatmap import heatmap_items, heatmap_rows
from .layout import Item, Placed, layout, nearest_on_row, token_rows
from .tokens import TokenView


class TokenHeatmap(CellView, can_focus=True):
    BINDINGS = [
        Binding("left", "move(-1)", "Prev token", show=False),
        Binding("right", "move(1)", "Next token", show=False),
        Binding("up", "line(-1)", "Line up", show=False),
        Binding("down", "line(1)", "Line down", show=False),
        Binding("pageup", "line(-8)", show=False),
        Binding("pagedown", "line(8)", show=False),
        Binding("home", "select(0)", "First", show=False),
        Binding("end", "select(-1)", "Last", show=False),
    ]

    selected: reactive[int | None] = reactive(None, init=False)

    class Selected(Message):
        def __init__(self, token: int) -> None:
            super().__init__()
            self.token = token

    def __init__(self, views: list[TokenView], switch: int | None, *, answer: str = "",
                 id: str | None = None) -> None:
        super().__init__(id=id)
        self.views = views
        self.answer = answer
        self.switch = switch
        self.what_if: int | None = switch
        self._items: list[Item] = []
        self._lines: list[list[Placed]] = []
        self._where: dict[int, list[tuple[int, int]]] = {}
        self._goal_x: int | None = None  # column kept across up/down moves

    def set_what_if(self, what_if: int | None) -> None:
        if what_if != self.what_if:
            self.what_if = what_if
            self.rebuild()

    def build_rows(self, width: int) -> list[list[Cell]]:
        self._items = heatmap_items(self.views, self.switch, self.what_if, self.answer)
        self._lines = layout(self._items, width)
        self._where = token_rows(self._lines, self._items)
        return heatmap_rows(self._items, self._lines, self.views, self.selected)

    def row_of(self, token: int) -> int | None:
        """The first screen row (in the scrolled content) of a token."""
        where = self._where.get(token)
        return where[0][0] if where else None

    def rows_of(self, token: int) -> list[int]:
        """Every row a token is on (a newline token spans two)."""
        return sorted({row for row, _ in self._where.get(token, [])})

    def watch_selected(self, old: int | None, new: int | None) -> None:
        if not self.is_mounted:
            return
        # Only the rows of the old and new selection change.
        for token in (old, new):
            for row, _ in self._where.get(token, []) if token is not None else []:
                self.rows[row] = heatmap_rows(self._items, [self._lines[row]], self.views,
                                               new)[0]
                self._strips.pop(row, None)
        self.refresh()
        if new is not None:
            self.call_after_refresh(self.show_selected)  # after layout: sizes are known
            self.post_message(self.Selected(new))

    def show_selected(self) -> None:
        if self.selected is not None:
            row = self.row_of(self.selected)
            if row is not None:
                self.scroll_to_rows(row, row, center=True)

    def on_mount(self) -> None:
        super().on_mount()
        if self.selected is not None:
            self.watch_selected(None, self.selected)

    def action_move(self, step: int) -> None:
        self._goal_x = None
        if not self.views:
            return
        cur = self.selected if self.selected is not None else -step
        self.selected = max(0, min(len(self.views) - 1, cur + step))

    def action_select(self, index: int) -> None:
        self._goal_x = None
        if self.views:
            self.selected = index % len(self.views)

    def action_line(self, step: int) -> None:
        if self.selected is None or self.selected not in self._where:
            self.action_move(1)
            return
        pieces = self._where[self.selected]
        # a token on several rows (a newline) is left from its last row going down
        row, x = pieces[-1] if step > 0 else pieces[0]
        goal = self._goal_x if self._goal_x is not None else x
        target = row + step
        while 0 <= target < len(self._lines):
            token = nearest_on_row(self._lines, self._items, target, goal)
            if token is not None:
                self.selected = token
                self._goal_x = goal
                return
            target += 1 if step > 0 else -1  # skip headers and blank lines

    def on_cell_view_token_clicked(self, event: CellView.TokenClicked) -> None:
        event.stop()
        self.focus()
        self.selected = event.token
