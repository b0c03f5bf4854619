"""Snapshots of the inspector on the stored sample trace (no model run needed).

Update after an intended change with `pytest tests/test_tui_snapshots_inspector.py
--snapshot-update`, and look at the report before committing the new SVGs.
"""

from __future__ import annotations

from test_tui_inspector_support import load_sample, synthetic_trace
from textual.app import App
from textual.widgets import Input

from tui.screens.inspector import InspectorScreen
from wsd_local.trace import Trace

SIZE = (120, 40)


class SnapshotApp(App[None]):
    TITLE = "wsd inspector"

    def __init__(self, trace: Trace) -> None:
        super().__init__()
        self.trace = trace

    def on_mount(self) -> None:
        screen = InspectorScreen(self.trace)
        self.push_screen(screen)
        for field in screen.query(Input):  # no blinking cursor in a snapshot
            field.cursor_blink = False


def sample_app() -> SnapshotApp:
    return SnapshotApp(load_sample())


def test_inspector_opens_on_the_switch_point(snap_compare) -> None:
    assert snap_compare(sample_app(), terminal_size=SIZE)


def test_inspector_after_a_what_if_change(snap_compare) -> None:
    # γ 0.80 → 0.65 and w 6 → 7: the what-if switch moves to draft token 23
    assert snap_compare(sample_app(), terminal_size=SIZE,
                        press=["minus", "minus", "minus", "right_square_bracket", "w"])


def test_inspector_with_a_base_token_selected(snap_compare) -> None:
    assert snap_compare(sample_app(), terminal_size=SIZE, press=["end"])


def test_inspector_wraps_a_500_token_draft(snap_compare) -> None:
    assert snap_compare(SnapshotApp(synthetic_trace(500, switch_at=300)), terminal_size=(100, 40))
