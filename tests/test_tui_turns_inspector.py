"""The nudging inspector (its turns and why each hand-over happened) on a stored real
trace of the demo pair (tests/data/nudging_sample.json): pilot tests for walking from
one hand-over to the next, and snapshots of the layout. No model runs here.

Update the snapshots after an intended change with `pytest
tests/test_tui_turns_inspector.py --snapshot-update`, and look at the report first.
"""

from __future__ import annotations

from pathlib import Path

from test_tui_inspector_support import sync
from textual.app import App
from textual.widgets import DataTable, Static

from tui.inspector_widgets.turns import TurnsView
from tui.screens.turns_inspector import TurnsInspectorScreen
from tui.widgets.spans import BASE_STYLE, DRAFTER_STYLE
from wsd_local import nudge_rule
from wsd_local.answer import turns_of
from wsd_local.trace import Trace

SAMPLE = Path(__file__).parent / "data" / "nudging_sample.json"
SIZE = (120, 40)


def load() -> Trace:
    return Trace.from_json(SAMPLE.read_text(encoding="utf-8"))


class TurnsApp(App[None]):
    TITLE = "wsd inspector"

    def __init__(self, trace: Trace) -> None:
        super().__init__()
        self.trace = trace
        self.closed = False

    def on_mount(self) -> None:
        self.push_screen(TurnsInspectorScreen(self.trace), lambda _: setattr(self, "closed", True))


def test_the_sample_is_a_real_nudging_answer_that_follows_the_rule() -> None:
    trace = load()
    trace.check()
    nudge_rule.check_turns(trace.spans, trace.settings.nudge_threshold, trace.stop_reason)
    assert trace.counts["handovers"] == len(TurnsView.of(trace).handovers) >= 10


def test_details_say_who_wrote_the_turn_and_the_probability_that_decided_it() -> None:
    trace = load()
    view = TurnsView.of(trace)
    for i, turn in enumerate(turns_of(trace)):
        details = view.details(i).plain
        assert details.startswith(f"turn {i} · {turn.model}")
        if turn.base_top_prob is not None:
            assert f"{turn.base_top_prob:.3f}" in details
    styled = view.answer_text(None)
    assert styled.plain.replace("⟫", "").replace("⟪", "") == trace.answer
    colours = {styled.plain[s.start:s.end]: s.style for s in styled.spans}
    assert colours[trace.spans[0]["text"]] == DRAFTER_STYLE and colours[trace.spans[1]["text"]] == BASE_STYLE


@sync
async def test_n_and_p_walk_from_one_hand_over_to_the_next() -> None:
    trace = load()
    handovers = TurnsView.of(trace).handovers
    app = TurnsApp(trace)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert isinstance(screen, TurnsInspectorScreen)
        await pilot.pause()
        assert screen.selected == handovers[0]
        seen = [screen.selected]
        for _ in handovers[1:]:
            await pilot.press("n")
            seen.append(screen.selected)
        assert seen == handovers
        await pilot.press("n")  # past the last: stays, says so
        assert screen.selected == handovers[-1]
        await pilot.press("p", "p")
        assert screen.selected == handovers[-3]
        assert screen.query_one(DataTable).cursor_row == handovers[-3]
        details = str(screen.query_one("#details", Static).render())
        assert details.startswith(f"turn {handovers[-3]} ·")
        await pilot.press("escape")
        await pilot.pause()
        assert app.closed


def test_turns_inspector_opens_on_the_first_hand_over(snap_compare) -> None:
    assert snap_compare(TurnsApp(load()), terminal_size=SIZE)


def test_turns_inspector_on_a_drafter_turn_with_its_word_boundaries(snap_compare) -> None:
    # a drafter turn where the base model declined one word boundary and took the next
    trace = load()
    target = next(i for i, s in enumerate(trace.spans) if len(s.get("probes", [])) >= 2)
    presses = ["n"] * (TurnsView.of(trace).handovers.index(target))
    assert snap_compare(TurnsApp(trace), terminal_size=SIZE, press=presses)
