"""A scrolling Line API widget that draws rows of `Cell`s and reports clicked tokens."""

from __future__ import annotations

from rich.segment import Segment
from rich.style import Style
from textual.events import Click
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from .cells import Cell


class CellView(ScrollView):
    """Subclasses implement `build_rows(width)` and `show_selected()`; call `rebuild()`
    when their data changes."""

    DEFAULT_CSS = """
    CellView {
        scrollbar-gutter: stable;
        overflow-x: hidden;
    }
    """

    class TokenClicked(Message):
        def __init__(self, view: CellView, token: int) -> None:
            super().__init__()
            self.view = view
            self.token = token

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.rows: list[list[Cell]] = []  # what the view draws, one list of cells per row
        self._strips: dict[int, Strip] = {}
        self._built_width = -1

    def build_rows(self, width: int) -> list[list[Cell]]:
        raise NotImplementedError

    def show_selected(self) -> None:
        """Scroll the selection into view."""

    @property
    def _width(self) -> int:
        return max(1, self.scrollable_content_region.width)

    def rebuild(self) -> None:
        if not self.is_mounted:
            return
        width = self._width
        self.rows = self.build_rows(width)
        self._strips.clear()
        self._built_width = width
        grew = len(self.rows) != self.virtual_size.height
        self.virtual_size = Size(width, len(self.rows))
        self.refresh(layout=grew)  # an auto-height view must be laid out again
        self.call_after_refresh(self.show_selected)  # after layout: sizes are known

    def on_mount(self) -> None:
        super().on_mount()
        self.rebuild()

    def on_resize(self) -> None:
        if self._width != self._built_width:
            self.rebuild()

    def scroll_to_rows(self, first: int, last: int, *, center: bool = False) -> None:
        """Bring rows first..last into view if any is hidden: centred (a token in the
        heatmap) or at the top (a band of the chart). Visible rows never move, so
        walking with the arrow keys does not make the view jump."""
        top, height = round(self.scroll_y), self.scrollable_content_region.height
        if top <= first and last < top + height:
            return
        self.scroll_to_region(Region(0, first, 1, last - first + 1), animate=False,
                              immediate=True, center=center, top=not center)

    def render_line(self, y: int) -> Strip:
        row = y + self.scroll_offset.y
        width = self.size.width
        if row >= len(self.rows):
            return Strip.blank(width, self.rich_style)
        strip = self._strips.get(row)
        if strip is None:
            segments = [Segment(c.text, Style.parse(c.style) + Style(meta={"token": c.token})
                                if c.token is not None else Style.parse(c.style))
                        for c in self.rows[row]]
            strip = self._strips[row] = Strip(segments)
        return strip.crop_extend(0, width, self.rich_style).apply_style(self.rich_style)

    def on_click(self, event: Click) -> None:
        token = event.style.meta.get("token")
        if isinstance(token, int):
            self.post_message(self.TokenClicked(self, token))
