"""The inspector: why the switch fell where it did, for one answer.

A probability heatmap of every token (kept draft, discarded tail, continuation), the
window score against the threshold, and a what-if that moves the switch point with the
threshold or window, from the stored probabilities (no model runs here). "Re-run from
here" dismisses with the what-if switch; the chat continues from it as a new answer.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.containers import Horizontal
from textual.screen import Screen
from textual.validation import Function
from textual.widgets import Button, Footer, Input, Label, Static

from wsd_local.answer import describe_switch
from wsd_local.settings import SETTINGS_BY_NAME, SettingSpec
from wsd_local.errors import ConfigError
from wsd_local.modes import DRAFTER, mode_named
from wsd_local.terminal_text import terminal_safe
from wsd_local.trace import Trace

from ..inspector_widgets.cell_view import CellView
from ..inspector_widgets.chart import ChartSpec
from ..inspector_widgets.chart_view import WindowChart
from ..inspector_widgets.colors import legend
from ..inspector_widgets.heatmap_view import TokenHeatmap
from ..inspector_widgets.tokens import (
    TokenView,
    WhatIf,
    compute_what_if,
    describe_token,
    token_views,
    what_if_summary,
)

THRESHOLD_STEP = 0.05
THRESHOLD, WINDOW = SETTINGS_BY_NAME["threshold"], SETTINGS_BY_NAME["window"]
THRESHOLD_RULE = f"γ must be a number {THRESHOLD.range_text()}"
WINDOW_RULE = f"w must be a whole number {WINDOW.range_text()}"


def parse_setting(spec: SettingSpec, text: str) -> Any:
    """γ or w as typed in the what-if fields, or None when the settings would refuse it."""
    try:
        return spec.parse(text)
    except ConfigError:
        return None


# The inspector's actions in the command palette: title, action, help.
PALETTE_COMMANDS = (
    ("Re-run from here", "rerun",
     "Continue with the base model from the what-if switch point, as a new answer"),
    ("Jump to switch point", "jump_switch", "Select the draft token where the base model took over"),
    ("Jump to what-if switch point", "jump_what_if",
     "Select the draft token where the what-if switch falls"),
    ("Reset what-if", "reset_what_if", "Threshold and window back to this answer's settings"),
)


class InspectorCommands(Provider):
    """Only the inspector screen lists this provider, so `self.screen` is one."""

    async def discover(self) -> Hits:
        for name, action, help_text in PALETTE_COMMANDS:
            yield DiscoveryHit(name, partial(self.screen.run_action, action), help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, action, help_text in PALETTE_COMMANDS:
            if (score := matcher.match(name)) > 0:
                yield Hit(score, matcher.highlight(name), partial(self.screen.run_action, action),
                          help=help_text)


class InspectorScreen(Screen[int | None]):
    """Dismisses with None (closed) or the what-if switch index to re-run from."""

    COMMANDS = {InspectorCommands}
    BINDINGS = [
        Binding("escape", "dismiss", "Close"),
        Binding("q", "dismiss", "Close", show=False),
        Binding("plus,equals_sign", "threshold(1)", "γ +"),
        Binding("minus", "threshold(-1)", "γ −"),
        Binding("right_square_bracket", "window(1)", "w +"),
        Binding("left_square_bracket", "window(-1)", "w −"),
        Binding("s", "jump_switch", "Switch"),
        Binding("w", "jump_what_if", "What-if", show=False),
        Binding("0", "reset_what_if", "Reset", show=False),
        Binding("r", "rerun", "Re-run from here"),
    ]

    DEFAULT_CSS = """
    InspectorScreen { layout: vertical; }
    InspectorScreen #summary { height: auto; padding: 0 1; text-wrap: nowrap; text-overflow: ellipsis; }
    InspectorScreen #summary-tie { color: $warning; }
    InspectorScreen TokenHeatmap {
        height: 1fr; min-height: 5;
        border: round $primary 50%; border-title-align: left;
    }
    InspectorScreen TokenHeatmap:focus { border: round $primary; }
    InspectorScreen #legend { height: 1; padding: 0 1; }
    InspectorScreen WindowChart {
        /* overflow-y: scroll, not auto: Textual adds a row to an auto-height view
           with a stable gutter; a fixed scrollbar also keeps the band width fixed. */
        overflow-y: scroll;
        height: auto; max-height: 42%; min-height: 4;
        border: round $primary 50%; border-title-align: left;
    }
    InspectorScreen #details { height: auto; padding: 0 1; background: $boost; }
    InspectorScreen #controls { height: 3; }
    InspectorScreen #controls Label { padding: 1 0 0 1; }
    InspectorScreen #controls Input { width: 10; }
    InspectorScreen #whatif { width: 1fr; padding: 1 1 0 1; }
    InspectorScreen #whatif.-invalid { color: $error; }
    InspectorScreen #rerun { min-width: 22; margin: 1 1 0 0; }
    """

    def __init__(self, trace: Trace) -> None:
        super().__init__()
        self.trace = trace
        self.views: list[TokenView] = token_views(trace)
        self.what_if: WhatIf = compute_what_if(trace, trace.threshold, trace.window)
        self._selected: int | None = None

    # -- layout --------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        # Text, not markup: token texts and model names may hold [brackets]
        yield Static(Text(terminal_safe(self._summary())), id="summary")  # model names: from files, servers
        heatmap = TokenHeatmap(self.views, self.trace.switch_index, answer=self.trace.answer,
                               id="heatmap")
        heatmap.border_title = "Tokens, coloured by probability"
        yield heatmap
        yield Static(legend(), id="legend")
        chart = WindowChart(self._chart_spec(), id="chart")
        chart.border_title = self._chart_title()
        yield chart
        yield Static("", id="details")
        has_switch = self.trace.switch_index is not None and bool(self.trace.draft_tokens)
        with Horizontal(id="controls"):
            yield Label("γ")
            yield Input(f"{self.trace.threshold:g}", id="threshold", type="number",
                        validators=[Function(lambda s: parse_setting(THRESHOLD, s) is not None,
                                             THRESHOLD_RULE)],
                        disabled=not has_switch, tooltip="threshold γ: window score that hands over")
            yield Label("w")
            yield Input(str(self.trace.window), id="window", type="integer",
                        validators=[Function(lambda s: parse_setting(WINDOW, s) is not None,
                                             WINDOW_RULE)],
                        disabled=not has_switch, tooltip="window w: draft tokens per geometric mean")
            yield Static(Text(what_if_summary(self.trace, self.what_if)), id="whatif")
            yield Button("Re-run from here", id="rerun", disabled=not has_switch,
                         variant="primary", compact=True)
        yield Footer()

    def on_mount(self) -> None:
        heatmap = self.query_one(TokenHeatmap)
        heatmap.focus()
        if self.views:
            k = self.trace.switch_index
            heatmap.selected = k if k is not None and k >= 0 else 0
        else:
            self._show_details(None)

    def _summary(self) -> str:
        t = self.trace
        models = [f"{role} {m.label}" if m.remote else f"{role} {m.name} ({m.architecture} {m.quantization})"
                  for role in ("drafter", "base") if (m := t.models.get(role))]
        line1 = " · ".join([f"{t.mode} answer", *models] + ([t.backend] if t.backend else []))
        base_tokens = len(self.views) - sum(v.draft_index is not None for v in self.views)
        switch = describe_switch(t)
        if switch is None and mode_named(t.mode).alone == DRAFTER:
            line2 = "drafter-only answer: no base model scored it, no switch point"
        elif switch is None:
            line2 = f"{t.mode}-only answer: no switch point · base wrote {base_tokens}"
        else:
            line2 = f"{switch} · base wrote {base_tokens}"
        if t.stop_reason:
            line2 += f" · stop: {t.stop_reason}"
        lines = [line1, line2]
        if t.near_ties:
            at = ", ".join(map(str, t.near_ties[:5]))
            lines.append(f"⚠ near tie at {at}: window score within 1e-3 of γ; "
                         "a different batch shape could move the switch")
        return "\n".join(lines)

    def _chart_spec(self) -> ChartSpec:
        selected = None
        if self._selected is not None and self.views:
            selected = self.views[self._selected].draft_index
        return ChartSpec(scores=self.what_if.scores, threshold=self.what_if.threshold,
                         window=self.what_if.window, switch=self.trace.switch_index,
                         what_if=self.what_if.index, selected=selected)

    def _chart_title(self) -> str:
        return (f"Window score g (w {self.what_if.window}) vs γ {self.what_if.threshold:.2f}"
                " · ▲ switch  △ what-if")

    # -- selection and details ------------------------------------------------------
    def on_token_heatmap_selected(self, event: TokenHeatmap.Selected) -> None:
        self._selected = event.token
        self._show_details(event.token)
        self.query_one(WindowChart).update_spec(selected=self.views[event.token].draft_index)

    def on_cell_view_token_clicked(self, event: CellView.TokenClicked) -> None:
        # Clicks on the chart select the draft token (draft tokens come first in views).
        if isinstance(event.view, WindowChart) and 0 <= event.token < len(self.views):
            self.query_one(TokenHeatmap).selected = event.token

    def _show_details(self, token: int | None) -> None:
        self.query_one("#details", Static).update(Text(
            "no tokens to select in this answer" if token is None
            else describe_token(self.views[token], self.what_if, self.trace.switch_index)))

    # -- what-if ------------------------------------------------------------------
    def on_input_changed(self, event: Input.Changed) -> None:
        threshold = parse_setting(THRESHOLD, self.query_one("#threshold", Input).value)
        window = parse_setting(WINDOW, self.query_one("#window", Input).value)
        status = self.query_one("#whatif", Static)
        if threshold is None or window is None:
            status.update(Text(THRESHOLD_RULE if threshold is None else WINDOW_RULE))
            status.add_class("-invalid")
            return
        status.remove_class("-invalid")
        self.set_what_if(threshold, window)

    def set_what_if(self, threshold: float, window: int) -> None:
        self.what_if = compute_what_if(self.trace, threshold, window)
        self.query_one("#whatif", Static).update(Text(what_if_summary(self.trace, self.what_if)))
        self.query_one(TokenHeatmap).set_what_if(self.what_if.index)
        chart = self.query_one(WindowChart)
        chart.border_title = self._chart_title()
        chart.update_spec(scores=self.what_if.scores, threshold=threshold, window=window,
                          what_if=self.what_if.index)
        if self._selected is not None:
            self._show_details(self._selected)

    def action_threshold(self, step: int) -> None:
        field = self.query_one("#threshold", Input)
        if field.disabled:
            return
        current = parse_setting(THRESHOLD, field.value) or self.what_if.threshold
        value = round(current + step * THRESHOLD_STEP, 2)
        field.value = f"{min(1.0, max(THRESHOLD_STEP, value)):g}"

    def action_window(self, step: int) -> None:
        field = self.query_one("#window", Input)
        if field.disabled:
            return
        current = parse_setting(WINDOW, field.value) or self.what_if.window
        field.value = str(max(1, current + step))

    def action_reset_what_if(self) -> None:
        self.query_one("#threshold", Input).value = f"{self.trace.threshold:g}"
        self.query_one("#window", Input).value = str(self.trace.window)

    # -- navigation and results ----------------------------------------------------
    def action_jump_switch(self) -> None:
        if self.trace.switch_index is not None and self.trace.switch_index >= 0:
            self.query_one(TokenHeatmap).selected = self.trace.switch_index

    def action_jump_what_if(self) -> None:
        if self.what_if.index is not None and self.what_if.index >= 0:
            self.query_one(TokenHeatmap).selected = self.what_if.index

    @on(Button.Pressed, "#rerun")
    def _rerun_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_rerun()

    def action_rerun(self) -> None:
        k = self.what_if.index
        if not self.what_if.known and not self.query_one("#whatif").has_class("-invalid"):
            # the switch lies past what online mode scored: the re-run drafts on to find it
            self.dismiss((self.what_if.threshold, self.what_if.window))
        elif k is None or self.trace.switch_index is None:
            self.notify("Only a WSD answer has a switch point to re-run from.", severity="warning")
        elif k < 0:
            self.notify("The draft is empty: nothing to re-run from.", severity="warning")
        elif self.query_one("#whatif").has_class("-invalid"):
            self.notify("Fix the threshold or window first.", severity="warning")
        elif k == self.trace.switch_index:
            self.notify("The what-if switch is where this answer switched: change γ or w first.",
                        severity="warning")
        else:
            self.dismiss(k)
