"""Every key and command of the chat, declared once.

`CHAT_ACTIONS` feeds the key bindings (and footers) of each row's `scope`, the command
palette, the help screen (F1), the empty-chat hint and the README's key table
(`python -m tui.actions` prints it; a test checks the README holds exactly that).
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding


# Where a key is bound: the chat screen, the chat list (sidebar), a focused answer.
CHAT, CHAT_LIST, ANSWER = "chat", "chat list", "answer"


@dataclass(frozen=True)
class ChatAction:
    group: str  # heading in the help screen: Writing, Answers, Chats, App
    keys: str  # Textual key names, comma-separated; "" for palette-only commands
    description: str  # what it does, for help, README and palette
    action: str = ""  # the action of the `scope`'s widget; "" for keys a widget handles itself
    title: str = ""  # command palette title; "" keeps it out of the palette
    footer: str = ""  # footer label; "" keeps it out of the footer
    hint: str = ""  # phrase for the empty-chat hint, e.g. "inspects one"
    scope: str = CHAT  # whose binding it is

    @property
    def key_label(self) -> str:
        """The keys as the help screen shows them: "esc", "ctrl+t"."""
        return " / ".join(_KEY_NAMES.get(k, k) for k in self.keys.split(",") if k)

    @property
    def readme_keys(self) -> str:
        """The keys as the README writes them: "Esc", "Ctrl+T" (a plain letter stays "i")."""
        return " / ".join(key if len(key) == 1 else "+".join(part.capitalize() for part in key.split("+"))
                          for key in self.key_label.split(" / "))

    def binding(self) -> Binding:
        return Binding(self.keys, self.action, self.footer or self.title, show=bool(self.footer))


_KEY_NAMES = {"escape": "esc"}

#: In footer order; the help screen and the README list them by `GROUPS`.
CHAT_ACTIONS: tuple[ChatAction, ...] = (
    ChatAction("Writing", "escape", "stop the answer being written (what was written is kept)",
               action="stop", title="Stop answer", footer="Stop answer", hint="stops an answer"),
    ChatAction("Chats", "ctrl+n", "new chat", action="new_chat", title="New chat", footer="New chat"),
    ChatAction("Answers", "ctrl+r", "regenerate the last answer", action="regenerate",
               title="Regenerate last answer", footer="Regenerate"),
    ChatAction("Answers", "ctrl+t", "inspect the selected (or last) answer: probabilities, switch, "
               "what-if (nudging: every hand-over)", action="inspect", title="Inspect answer", footer="Inspect",
               hint="inspects one"),
    ChatAction("Answers", "f5", "copy the selected (or last) answer", action="copy",
               title="Copy answer", footer="Copy"),
    ChatAction("App", "f1", "this help", action="help", title="Help", footer="Help",
               hint="lists every key"),
    ChatAction("Chats", "f2", "rename the chat", action="rename_chat", title="Rename chat"),
    ChatAction("Chats", "f3", "settings of this chat (system prompt, mode, threshold, window, nudging, "
               "limits, sampling)", action="settings", title="Settings", footer="Settings",
               hint="changes this chat's settings"),
    ChatAction("Chats", "ctrl+b", "show or hide the chat list", action="toggle_sidebar",
               title="Toggle chat list"),
    ChatAction("Writing", "enter", "send the question"),
    ChatAction("Writing", "ctrl+j", "new line in the question (also shift+enter / alt+enter where "
               "the terminal sends them)"),
    ChatAction("Answers", "", "compare base only, drafter only, WSD and Nudging on the question "
               "typed (or the last one)", action="compare", title="Compare modes"),
    ChatAction("Answers", "tab,shift+tab", "move between the question box, answers and the chat list"),
    ChatAction("Answers", "i", "on a selected answer: inspect it", action="inspect", footer="Inspect",
               scope=ANSWER),
    ChatAction("Answers", "c", "on a selected answer: copy it", action="copy", footer="Copy", scope=ANSWER),
    ChatAction("Chats", "enter", "in the chat list: open the highlighted chat"),
    ChatAction("Chats", "delete", "in the chat list: delete the highlighted chat (asks first)",
               action="delete_chat", footer="Delete chat", scope=CHAT_LIST),
    ChatAction("Chats", "n", "in the chat list: new chat", action="new_chat", footer="New chat",
               scope=CHAT_LIST),
    ChatAction("Chats", "", "delete this chat and its answers", action="delete_current_chat",
               title="Delete chat"),
    ChatAction("Chats", "", "export the chat to Markdown (spans marked) in the data folder's exports/",
               action="export('markdown')", title="Export chat to Markdown"),
    ChatAction("Chats", "", "export the chat to JSON (every answer's full trace) in the data "
               "folder's exports/", action="export('json')", title="Export chat to JSON"),
    ChatAction("App", "ctrl+p", "command palette: every action, plus export, compare modes, delete chat",
               hint="opens the command palette"),
    ChatAction("App", "ctrl+q", "quit"),
)

GROUPS = ("Writing", "Answers", "Chats", "App")


def by_group() -> list[ChatAction]:
    """The actions as help and README list them: grouped, in table order within a group."""
    return sorted(CHAT_ACTIONS, key=lambda a: GROUPS.index(a.group))


def bindings(scope: str) -> list[Binding]:
    """The bindings of one scope's widget: every action there with its own key."""
    return [a.binding() for a in CHAT_ACTIONS if a.action and a.keys and a.scope == scope]


def palette_actions() -> list[ChatAction]:
    return [a for a in CHAT_ACTIONS if a.title and a.scope == CHAT]


def empty_chat_hint() -> str:
    """"Esc stops an answer, ctrl+t inspects one, ...": the keys a newcomer needs first."""
    phrases = [f"{a.key_label} {a.hint}" for a in CHAT_ACTIONS if a.hint]
    text = ", ".join(phrases[:-1]) + ", " + phrases[-1] + "."
    return text[:1].upper() + text[1:]


def readme_key_table() -> str:
    """The README's key table (Markdown), generated from `CHAT_ACTIONS`."""
    rows = ["| key | action |", "| --- | --- |"]
    for a in by_group():
        keys = a.readme_keys if a.keys else f"Ctrl+P → {a.title}"
        rows.append(f"| {keys} | {a.description} |")
    return "\n".join(rows)


if __name__ == "__main__":  # pragma: no cover
    print(readme_key_table())
