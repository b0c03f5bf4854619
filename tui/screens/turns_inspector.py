"""The inspector for a nudging answer: the answer (selected turn highlighted), a table
of turns (who, why, the base model's deciding top-1 probability) and the selected turn's
details. `n` / `p` walk the hand-overs, the arrows every turn. No model runs here.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from wsd_local.answer import describe_handovers
from wsd_local.terminal_text import terminal_safe
from wsd_local.trace import Trace

from ..inspector_widgets.colors import legend
from ..inspector_widgets.turns import TurnsView, turn_row


class TurnsInspectorScreen(Screen[None]):
    BINDINGS = [
        Binding("escape", "dismiss", "Close"),
        Binding("q", "dismiss", "Close", show=False),
        Binding("n", "handover(1)", "Next hand-over"),
        Binding("p", "handover(-1)", "Previous hand-over"),
    ]

    DEFAULT_CSS = """
    TurnsInspectorScreen { layout: vertical; }
    TurnsInspectorScreen #summary { height: auto; padding: 0 1; }
    TurnsInspectorScreen #answer-box {
        height: 1fr; min-height: 4; border: round $primary 50%; border-title-align: left;
    }
    TurnsInspectorScreen #answer { padding: 0 1; }
    TurnsInspectorScreen DataTable { height: 1fr; min-height: 5; border: round $primary 50%; }
    TurnsInspectorScreen DataTable:focus { border: round $primary; }
    TurnsInspectorScreen #details-box { height: auto; max-height: 40%; background: $boost; }
    TurnsInspectorScreen #details { padding: 0 1; }
    TurnsInspectorScreen #legend { height: 1; padding: 0 1; }
    """

    def __init__(self, trace: Trace) -> None:
        super().__init__()
        self.trace = trace
        self.view = TurnsView.of(trace)
        self.turns, self.handovers = self.view.turns, self.view.handovers
        self.selected: int | None = None

    def compose(self) -> ComposeResult:
        yield Static(Text(terminal_safe(self._summary())), id="summary")  # model names: from files, servers
        with VerticalScroll(id="answer-box") as box:
            box.border_title = "The answer: ⟫ the base model takes over, ⟪ the drafter does"
            yield Static(self.view.answer_text(None), id="answer")
        table: DataTable = DataTable(id="turns", cursor_type="row", zebra_stripes=True)
        table.add_columns("#", "who", "why the turn began", "base p", "text")
        for i, turn in enumerate(self.turns):
            table.add_row(*map(Text, turn_row(turn, i)), key=str(i))  # Text: a DataTable reads str as markup
        yield table
        with VerticalScroll(id="details-box"):
            yield Static("", id="details")
        yield Static(legend(switch_markers=False), id="legend")
        yield Footer()

    def _summary(self) -> str:
        t = self.trace
        models = [f"{role} {m.label}" for role in ("drafter", "base") if (m := t.models.get(role))]
        line1 = " · ".join(["nudging answer", *models] + ([t.backend] if t.backend else []))
        line2 = describe_handovers(t) or ""
        if t.stop_reason:
            line2 += f" · stop: {t.stop_reason}"
        return f"{line1}\n{line2}"

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.focus()
        if self.turns:
            self.select(self.handovers[0] if self.handovers else 0)

    # -- selection -------------------------------------------------------------------
    def select(self, index: int) -> None:
        self.query_one(DataTable).move_cursor(row=index)
        self._show(index)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show(event.cursor_row)

    def _show(self, index: int) -> None:
        if index == self.selected or not 0 <= index < len(self.turns):
            return
        self.selected = index
        self.query_one("#answer", Static).update(self.view.answer_text(index))
        self.query_one("#details", Static).update(self.view.details(index))
        # Keep the selected turn in view: scroll in proportion to where it starts.
        box = self.query_one("#answer-box", VerticalScroll)
        length = max(1, len(self.trace.answer))
        self.call_after_refresh(lambda: box.scroll_to(y=box.max_scroll_y * self.turns[index].start / length,
                                                      animate=False))

    def action_handover(self, step: int) -> None:
        """The next (or previous) turn that began with a hand-over."""
        if not self.handovers:
            self.notify("No hand-overs in this answer: one model wrote it all.")
            return
        current = self.selected if self.selected is not None else -1
        later = [i for i in self.handovers if (i > current if step > 0 else i < current)]
        if not later:
            self.notify("That was the last hand-over." if step > 0 else "That was the first hand-over.")
            return
        self.select(later[0] if step > 0 else later[-1])
