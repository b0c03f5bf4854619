"""The keys, in one place (the help screen is generated from this table)."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from ..widgets.spans import BASE_STYLE, DISCARDED_STYLE, DRAFTER_STYLE, MARKER_STYLE, SWITCH_MARKER

KEYS: tuple[tuple[str, str, str], ...] = (
    ("Writing", "enter", "send the question"),
    ("Writing", "ctrl+j", "new line in the question (also shift+enter / alt+enter where the terminal sends them)"),
    ("Writing", "esc", "stop the answer being written (what was written is kept)"),
    ("Answers", "ctrl+r", "regenerate the last answer"),
    ("Answers", "ctrl+t", "inspect the selected (or last) answer: probabilities, switch, what-if"),
    ("Answers", "f5", "copy the selected (or last) answer"),
    ("Answers", "tab / shift+tab", "move between the question box, answers and the chat list"),
    ("Answers", "i / c", "on a selected answer: inspect / copy it"),
    ("Chats", "ctrl+n", "new chat"),
    ("Chats", "f2", "rename the chat"),
    ("Chats", "f3", "settings of this chat (system prompt, mode, threshold, window, limits, sampling)"),
    ("Chats", "ctrl+b", "show or hide the chat list"),
    ("Chats", "enter / delete", "in the chat list: open / delete the highlighted chat"),
    ("App", "ctrl+p", "command palette: every action, plus export, compare modes, delete chat"),
    ("App", "f1", "this help"),
    ("App", "ctrl+q", "quit"),
)


def help_text() -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    section = None
    for group, key, what in KEYS:
        if group != section:
            if section is not None:
                table.add_row("", "")
            table.add_row(Text(group, style="bold underline"), "")
            section = group
        table.add_row(key, what)
    table.add_row("", "")
    legend = Text()
    legend.append("drafter's span", style=DRAFTER_STYLE)
    legend.append(" (blue, underlined) ")
    legend.append(SWITCH_MARKER, style=MARKER_STYLE)
    legend.append(" switch point ")
    legend.append("base model's span", style=BASE_STYLE)
    legend.append(" (orange); ")
    legend.append("discarded draft", style=DISCARDED_STYLE)
    legend.append(" (struck through)")
    table.add_row(Text("Colours", style="bold underline"), legend)
    return table


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,f1,q", "close", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog help-dialog"):
            yield Static(Text("Keys — esc closes", style="bold"), classes="dialog-title")
            yield Static(help_text())

    def action_close(self) -> None:
        self.dismiss(None)
