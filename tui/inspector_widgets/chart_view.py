"""The window-score chart widget (wraps `chart.chart_rows`)."""

from __future__ import annotations

from dataclasses import replace

from .cell_view import CellView
from .cells import Cell
from .chart import GUTTER, ChartSpec, chart_rows


class WindowChart(CellView):
    def __init__(self, spec: ChartSpec, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.spec = spec

    def update_spec(self, **changes: object) -> None:
        new = replace(self.spec, **changes)  # type: ignore[arg-type]
        if new != self.spec:
            self.spec = new
            self.rebuild()

    def build_rows(self, width: int) -> list[list[Cell]]:
        return chart_rows(self.spec, width)

    def band_top(self, j: int) -> int:
        """First row of the band holding draft token j (bands as `chart.band_ranges`)."""
        if not 0 <= j < len(self.spec.scores):
            return 0
        return j // max(1, self._width - GUTTER) * (self.spec.height + 3)

    def show_selected(self) -> None:
        if self.spec.selected is not None:
            top = self.band_top(self.spec.selected)
            self.scroll_to_rows(top, top + self.spec.height + 1)  # bars, markers, axis
