"""The inspector screen driven through Textual's pilot, on stored traces (no model)."""

from __future__ import annotations

import pytest
from test_tui_inspector_support import load_sample, sync, synthetic_trace, wait_until
from textual.app import App
from textual.command import CommandList
from textual.widgets import Button, Input, Static

from tui.screens.inspector import InspectorScreen
from tui.inspector_widgets.chart_view import WindowChart
from tui.inspector_widgets.heatmap_view import TokenHeatmap
from wsd_local.trace import TokenRecord, Trace

_NO_RESULT = object()


class InspectorApp(App[None]):
    """Pushes the inspector and records what it dismisses with."""

    def __init__(self, trace: Trace) -> None:
        super().__init__()
        self.trace = trace
        self.result: object = _NO_RESULT

    def on_mount(self) -> None:
        self.push_screen(InspectorScreen(self.trace), callback=self._done)

    def _done(self, result: int | None) -> None:
        self.result = result


def text_of(screen: InspectorScreen, selector: str) -> str:
    return str(screen.query_one(selector, Static).render())


@sync
async def test_opens_on_the_switch_token_with_details() -> None:
    trace = load_sample()
    app = InspectorApp(trace)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, InspectorScreen)
        heatmap = screen.query_one(TokenHeatmap)
        assert heatmap.has_focus and heatmap.selected == trace.switch_index
        details = text_of(screen, "#details")
        assert details.startswith(f"draft token {trace.switch_index} ·") and "▲ switch" in details
        assert f"switch at draft token {trace.switch_index}" in text_of(screen, "#summary")
        assert screen.query_one(WindowChart).spec.selected == trace.switch_index


@sync
async def test_what_if_keys_and_inputs_move_the_switch_like_trace_what_if() -> None:
    trace = load_sample()
    app = InspectorApp(trace)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, InspectorScreen)
        heatmap, chart = screen.query_one(TokenHeatmap), screen.query_one(WindowChart)
        seen = set()
        for key, (gamma, w) in [("minus", (0.75, 6)), ("minus", (0.70, 6)), ("minus", (0.65, 6)),
                                ("right_square_bracket", (0.65, 7)),
                                ("left_square_bracket", (0.65, 6)),
                                ("left_square_bracket", (0.65, 5)), ("plus", (0.70, 5))]:
            await pilot.press(key)
            await pilot.pause()
            expected = trace.what_if(gamma, w).index
            assert screen.what_if.index == expected, (key, gamma, w)
            assert heatmap.what_if == expected and chart.spec.what_if == expected
            assert chart.spec.threshold == pytest.approx(gamma) and chart.spec.window == w
            assert f"switch at {expected}" in text_of(screen, "#whatif")
            seen.add(expected)
        assert len(seen) > 2  # the sample's switch really moves
        # typing into the inputs does the same
        screen.query_one("#threshold", Input).value = "0.9"
        screen.query_one("#window", Input).value = "3"
        await pilot.pause()
        assert screen.what_if.index == trace.what_if(0.9, 3).index
        await pilot.press("0")  # reset to the answer's own settings
        await pilot.pause()
        assert screen.what_if.index == trace.switch_index
        assert "(as answered)" in text_of(screen, "#whatif")


@sync
async def test_invalid_input_is_reported_and_keeps_the_last_what_if() -> None:
    trace = load_sample()
    app = InspectorApp(trace)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, InspectorScreen)
        await pilot.press("minus")
        await pilot.pause()
        before = screen.what_if
        screen.query_one("#threshold", Input).value = "1.5"
        await pilot.pause()
        assert "γ must be a number in (0, 1]" in text_of(screen, "#whatif")
        assert screen.what_if == before
        await pilot.press("r")
        await pilot.pause()
        assert app.result is _NO_RESULT  # no re-run from an invalid setting
        screen.query_one("#threshold", Input).value = "0.75"
        screen.query_one("#window", Input).value = "0"
        await pilot.pause()
        assert "w must be a whole number" in text_of(screen, "#whatif")


@sync
async def test_rerun_dismisses_with_the_what_if_switch_index() -> None:
    trace = load_sample()
    app = InspectorApp(trace)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("r")  # the what-if equals the answer's switch: refused
        await pilot.pause()
        assert app.result is _NO_RESULT and isinstance(app.screen, InspectorScreen)
        for _ in range(3):
            await pilot.press("minus")
        await pilot.press("r")
        await pilot.pause()
        assert app.result == trace.what_if(0.65, 6).index != trace.switch_index
        assert not isinstance(app.screen, InspectorScreen)


@sync
async def test_rerun_button_and_escape() -> None:
    trace = load_sample()
    app = InspectorApp(trace)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("minus", "minus")
        await pilot.pause()
        await pilot.click("#rerun")
        await pilot.pause()
        assert app.result == trace.what_if(0.7, 6).index != trace.switch_index
    app = InspectorApp(trace)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
        assert app.result is None


@sync
async def test_arrow_keys_walk_tokens_into_the_base_span() -> None:
    trace = load_sample()
    app = InspectorApp(trace)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, InspectorScreen)
        heatmap = screen.query_one(TokenHeatmap)
        k = trace.switch_index
        assert k is not None
        await pilot.press("right")
        await pilot.pause()
        assert heatmap.selected == k + 1 and "drafter, discarded" in text_of(screen, "#details")
        await pilot.press("end")
        await pilot.pause()
        assert heatmap.selected == len(heatmap.views) - 1
        assert text_of(screen, "#details").startswith("base token")
        assert screen.query_one(WindowChart).spec.selected is None  # base tokens have no g_j
        await pilot.press("home")
        await pilot.pause()
        first = heatmap.row_of(0)
        assert first is not None
        for step in (1, 2, 3):  # the "\n\n" token spans two rows: down still moves on
            await pilot.press("down")
            await pilot.pause()
            assert heatmap.selected is not None
            assert first + step in heatmap.rows_of(heatmap.selected)
        await pilot.press("up")
        await pilot.pause()
        assert heatmap.selected is not None and first + 2 in heatmap.rows_of(heatmap.selected)


@sync
async def test_clicking_a_chart_column_selects_that_draft_token() -> None:
    trace = load_sample()
    app = InspectorApp(trace)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, InspectorScreen)
        chart = screen.query_one(WindowChart)
        # bottom bar row of the first band; column 20 after the gutter
        assert await pilot.click(chart, offset=(1 + 6 + 20, 1 + chart.spec.height - 1))
        await pilot.pause()
        assert screen.query_one(TokenHeatmap).selected == 20
        assert text_of(screen, "#details").startswith("draft token 20 ·")


@sync
async def test_long_draft_scrolls_heatmap_and_chart_to_the_selection() -> None:
    trace = synthetic_trace(500, switch_at=300)
    app = InspectorApp(trace)
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, InspectorScreen)
        heatmap, chart = screen.query_one(TokenHeatmap), screen.query_one(WindowChart)
        k = trace.switch_index
        assert k is not None and k > 250
        assert chart.max_scroll_y > 0 and heatmap.max_scroll_y > 0
        row = heatmap.row_of(k)
        assert row is not None and heatmap.scroll_y <= row < heatmap.scroll_y + heatmap.size.height
        top = chart.band_top(k)
        assert chart.scroll_y <= top + chart.spec.height < chart.scroll_y + chart.size.height
        await pilot.press("home")
        await pilot.pause()
        assert heatmap.scroll_y == 0 and chart.scroll_y == 0


@sync
async def test_single_model_answer_has_no_what_if() -> None:
    trace = load_sample()
    trace.settings = trace.settings.with_changes(mode="base")
    trace.switch_index, trace.switch_fired = None, False
    trace.draft_tokens, trace.kept_draft, trace.draft_text = [], "", ""
    trace.answer = trace.continuation
    app = InspectorApp(trace)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, InspectorScreen)
        assert screen.query_one("#threshold", Input).disabled
        assert screen.query_one("#rerun", Button).disabled
        assert "no switch point" in text_of(screen, "#summary")
        assert text_of(screen, "#details").startswith("base token 0")
        await pilot.press("r")
        await pilot.pause()
        assert app.result is _NO_RESULT


@sync
async def test_clicking_a_token_in_the_heatmap_selects_it() -> None:
    trace = load_sample()
    app = InspectorApp(trace)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, InspectorScreen)
        heatmap = screen.query_one(TokenHeatmap)
        await pilot.press("home")
        await pilot.pause()
        row, x = heatmap._where[7][0]
        # +1: inside the border
        assert await pilot.click(heatmap, offset=(1 + x, 1 + row - round(heatmap.scroll_y)))
        await pilot.pause()
        assert heatmap.selected == 7
        assert text_of(screen, "#details").startswith(f"draft token 7 · {trace.draft_tokens[7].text!r}")


@sync
async def test_rerun_from_the_command_palette() -> None:
    trace = load_sample()
    app = InspectorApp(trace)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("minus", "minus")
        await pilot.pause()
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"re-run from")

        def found() -> bool:  # the palette searches in the background
            lists = app.screen.query(CommandList)
            return bool(lists) and lists.first().option_count > 0
        await wait_until(pilot, found)
        await pilot.press("enter")
        await pilot.pause()
        assert app.result == trace.what_if(0.7, 6).index


@sync
async def test_typing_in_an_input_does_not_trigger_screen_keys() -> None:
    trace = load_sample()
    app = InspectorApp(trace)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, InspectorScreen)
        field = screen.query_one("#window", Input)
        field.focus()
        await pilot.press("end", "backspace", "4", "r", "q", "s")
        await pilot.pause()
        assert field.value == "4" and app.result is _NO_RESULT
        assert screen.what_if.index == trace.what_if(0.8, 4).index


@sync
async def test_drafter_only_answer_shows_its_text_without_probabilities() -> None:
    trace = load_sample()
    trace.settings = trace.settings.with_changes(mode="draft")
    trace.switch_index, trace.switch_fired = None, False
    trace.answer = trace.kept_draft = trace.draft_text
    trace.continuation, trace.draft_tokens = "", []  # continuation_tokens left: ignored
    app = InspectorApp(trace)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, InspectorScreen)
        heatmap = screen.query_one(TokenHeatmap)
        assert heatmap.views == [] and heatmap.selected is None
        lines = ["".join(c.text for c in row) for row in heatmap.rows]
        assert lines[0].startswith("No per-token probabilities")
        assert lines[1].startswith(trace.answer.split()[0])
        assert "drafter-only answer" in text_of(screen, "#summary")
        await pilot.press("right", "down", "end")  # nothing to select, nothing breaks
        await pilot.pause()
        assert text_of(screen, "#details") == "no tokens to select in this answer"


@sync
async def test_token_text_with_brackets_is_shown_literally() -> None:
    trace = load_sample()
    k = trace.switch_index
    assert k is not None
    old = trace.draft_tokens[k]
    trace.draft_tokens[k] = TokenRecord(old.id, "[User]", old.logprob)  # not markup
    app = InspectorApp(trace)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, InspectorScreen)
        assert f"draft token {k} · '[User]' · drafter, kept" in text_of(screen, "#details")


@sync
async def test_rerun_past_the_scored_draft_of_an_online_answer_asks_for_the_rule() -> None:
    """An online answer's drafter stopped at its switch: a what-if switch past the scored
    tokens is unknown, and the re-run hands back (γ, w) so the engine drafts on."""
    trace = load_sample()
    trace.settings, trace.draft_complete = trace.settings.with_changes(mode="wsd"), False
    app = InspectorApp(trace)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, InspectorScreen)
        screen.query_one("#threshold", Input).value = "1.0"
        await pilot.pause()
        assert f"unknown past token {len(trace.draft_tokens)}" in text_of(screen, "#whatif")
        await pilot.press("r")
        await pilot.pause()
        assert app.result == (1.0, 6)
