"""Chat messages: the conversation both models see (in their own formats)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from .errors import PromptError

ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class Message:
    role: str
    content: str

    def to_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


def normalize(messages: Iterable[Message | dict[str, Any]] | str,
              system: str | None = None) -> list[Message]:
    """Validate a conversation: optional system message first, ending with a user turn.

    A plain string is one user turn. `system` (if given) replaces any system message.
    """
    if isinstance(messages, str):
        items = [Message("user", messages)]
    else:
        items = [m if isinstance(m, Message) else Message(str(m.get("role", "")),
                                                         str(m.get("content", "")))
                 for m in messages]
    for m in items:
        if m.role not in ROLES:
            raise PromptError(f"unknown message role {m.role!r}", "use system, user or assistant")
    if system is not None:
        items = [m for m in items if m.role != "system"]
        if system.strip():
            items.insert(0, Message("system", system))
    if any(m.role == "system" for m in items[1:]):
        raise PromptError("a system message may only come first")
    turns = [m for m in items if m.role != "system"]
    if not turns or turns[-1].role != "user":
        raise PromptError("the conversation must end with a user message")
    if not turns[-1].content.strip():
        raise PromptError("the prompt is empty", "type a question")
    return items
