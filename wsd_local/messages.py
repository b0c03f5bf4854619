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
    Errors name the message as `messages[i]` (its place in what was given) and the field.
    """
    if isinstance(messages, str):
        if not messages.strip():
            raise PromptError("the prompt is empty", "type a question")
        numbered = [(0, Message("user", messages))]
    else:
        numbered = [(i, _message(i, m)) for i, m in enumerate(messages)]
    if system is not None:
        numbered = [(i, m) for i, m in numbered if m.role != "system"]
        if system.strip():
            numbered.insert(0, (-1, Message("system", system)))
    for place, (i, m) in enumerate(numbered):
        if m.role == "system" and place > 0:
            raise PromptError(f"messages[{i}] is a system message: only the first message may be one")
    turns = [(i, m) for i, m in numbered if m.role != "system"]
    if not turns:
        raise PromptError("the conversation has no user message", "add one with the question")
    last, message = turns[-1]
    if message.role != "user":
        raise PromptError(f"the last message, messages[{last}], is the {message.role}'s: "
                          "the conversation must end with a user message")
    if not message.content.strip():
        raise PromptError(f'messages[{last}] (user): "content" is empty',
                          "the last message is the question the models answer")
    return [m for _, m in numbered]


def _message(i: int, item: Message | dict[str, Any]) -> Message:
    if isinstance(item, Message):
        message = item
    elif not isinstance(item, dict):
        raise PromptError(f"messages[{i}] must be an object with \"role\" and \"content\"")
    elif "role" not in item:
        raise PromptError(f'messages[{i}] has no "role"', "use system, user or assistant")
    else:
        role = item["role"]
        if "content" not in item or item["content"] is None:
            raise PromptError(f'messages[{i}] ({role}) has no "content"',
                              'every message needs its text in "content"')
        if not isinstance(item["content"], str):
            raise PromptError(f'messages[{i}] ({role}): "content" must be text, got '
                              f"{type(item['content']).__name__}")
        message = Message(str(role), item["content"])
    if message.role not in ROLES:
        raise PromptError(f"messages[{i}]: unknown role {message.role!r}", "use system, user or assistant")
    return message
