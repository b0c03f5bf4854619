"""The list of saved chats."""

from __future__ import annotations

from rich.text import Text
from textual.message import Message
from textual.widgets import Label, ListItem, ListView

from wsd_local.store import ChatRecord
from wsd_local.terminal_text import terminal_safe

from ..actions import CHAT_LIST, bindings


#: A mark before chats that did not start in the TUI (answers of `wsd serve` / `wsd generate`).
SOURCE_MARKS = {"serve": "⇄ ", "generate": "› "}


class ChatItem(ListItem):
    def __init__(self, chat: ChatRecord) -> None:
        self.chat = chat
        title = Text(no_wrap=True, overflow="ellipsis")
        title.append(SOURCE_MARKS.get(chat.source, ""), style="dim")
        title.append(terminal_safe(chat.title, one_line=True))  # from a prompt, maybe a client's
        super().__init__(Label(title))


class ChatList(ListView):
    """Enter opens the highlighted chat; Delete removes it (asks first); n starts a new one."""

    BINDINGS = bindings(CHAT_LIST)

    class Request(Message):
        def __init__(self, action: str, chat_id: int | None) -> None:
            super().__init__()
            self.action = action
            self.chat_id = chat_id

    def set_chats(self, chats: list[ChatRecord], current: int | None) -> None:
        self.clear()
        items = [ChatItem(c) for c in chats]
        self.extend(items)
        for i, item in enumerate(items):
            if item.chat.id == current:
                item.add_class("-current")  # the open chat, marked whether or not the list has focus
                self.index = i

    def on_focus(self) -> None:
        if self.index is None and len(self):
            self.index = 0  # so Enter opens something right away

    def action_delete_chat(self) -> None:
        item = self.highlighted_child
        self.post_message(self.Request("delete", item.chat.id if isinstance(item, ChatItem) else None))

    def action_new_chat(self) -> None:
        self.post_message(self.Request("new", None))
