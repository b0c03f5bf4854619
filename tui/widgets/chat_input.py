"""The question box: multiline; Enter sends, Ctrl+J (or Shift/Alt+Enter) adds a line."""

from __future__ import annotations

from textual import events
from textual.message import Message
from textual.widgets import TextArea

#: Keys that insert a newline instead of sending. Ctrl+J works in every terminal;
#: Shift+Enter and Alt+Enter only where the terminal reports them.
NEWLINE_KEYS = ("ctrl+j", "shift+enter", "alt+enter")


class ChatInput(TextArea):
    class Submitted(Message):
        def __init__(self, chat_input: "ChatInput", text: str) -> None:
            super().__init__()
            self.chat_input = chat_input
            self.text = text

    def __init__(self, **kwargs: object) -> None:
        super().__init__(soft_wrap=True, show_line_numbers=False, tab_behavior="focus",
                         **kwargs)  # type: ignore[arg-type]
        self.placeholder = "Ask something — Enter sends, Ctrl+J adds a line, F1 help"

    async def _on_key(self, event: events.Key) -> None:
        # Runs before TextArea's own handler (which would insert "\n" for Enter);
        # prevent_default stops that one.
        if event.key == "enter":
            event.stop()
            event.prevent_default()
            if self.text.strip():
                self.post_message(self.Submitted(self, self.text))
        elif event.key in NEWLINE_KEYS:
            event.stop()
            event.prevent_default()
            start, end = self.selection
            self._replace_via_keyboard("\n", start, end)
