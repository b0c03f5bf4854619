"""The conversation: a scrolling column of messages that follows the newest text until
the user scrolls up (Textual's anchor), and follows again once back at the bottom."""

from __future__ import annotations

from textual.containers import VerticalScroll

from .answer import AnswerWidget


class ChatView(VerticalScroll):
    def on_mount(self) -> None:
        self.anchor()

    def follow(self) -> None:
        """Scroll to the newest text and keep following it (after the user sent something)."""
        self.scroll_end(animate=False)

    # Mouse-wheel scrolling releases the anchor by itself; keyboard scrolling must too,
    # or the next token would pull the view back down while the user reads.
    def action_scroll_up(self) -> None:
        self.release_anchor()
        super().action_scroll_up()

    def action_page_up(self) -> None:
        self.release_anchor()
        super().action_page_up()

    def action_scroll_home(self) -> None:
        self.release_anchor()
        super().action_scroll_home()

    def answers(self) -> list[AnswerWidget]:
        return list(self.query(AnswerWidget))
