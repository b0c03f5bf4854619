"""The help screen, generated from the actions table (`tui/actions.py`)."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from ..actions import by_group
from ..widgets.spans import BASE_STYLE, DISCARDED_STYLE, DRAFTER_STYLE, handover_marker

def help_text() -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    section = None
    for action in by_group():
        if action.group != section:
            if section is not None:
                table.add_row("", "")
            table.add_row(Text(action.group, style="bold underline"), "")
            section = action.group
        key = action.key_label or "ctrl+p"
        what = action.description if action.key_label else f"{action.title}: {action.description}"
        table.add_row(key, what)
    table.add_row("", "")
    legend = Text.assemble(
        ("drafter's span", DRAFTER_STYLE), " (blue, underlined) ", handover_marker("base"),
        " switch point (nudging: the base model takes over) ", handover_marker("drafter"),
        " the drafter takes over (nudging) ", ("base model's span", BASE_STYLE), " (orange); ",
        ("discarded draft", DISCARDED_STYLE), " (struck through)")
    table.add_row(Text("Colours", style="bold underline"), legend)
    return table


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,f1,q", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog help-dialog"):
            yield Static(Text("Keys — esc closes", style="bold"), classes="dialog-title")
            yield Static(help_text())
