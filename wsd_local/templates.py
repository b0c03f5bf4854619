"""Prompt formats: the drafter's chat template, and the base model's plain frame.

The base model never sees a chat template: it reads

    [BOS] "\\n\\n[System]\\n" system "\\n\\n[User]\\n" question ... "\\n\\n[Assistant]\\n"

and stops when it starts a new turn of its own (`STOP_STRINGS`).
"""

from __future__ import annotations

from typing import Sequence

from .errors import ModelError
from .messages import Message

_TAGS = {"system": "[System]", "user": "[User]", "assistant": "[Assistant]"}

#: The base model's turn ends where it writes a new tag, with 2, 1 or 0 newlines before.
STOP_STRINGS: tuple[str, ...] = tuple(
    newlines + tag for tag in ("[User]", "[System]", "[Assistant]") for newlines in ("\n\n", "\n", "")
)


def base_frame(messages: Sequence[Message]) -> str:
    """The plain-text frame the base model continues (BOS is added by the tokenizer)."""
    parts = [f"\n\n{_TAGS[m.role]}\n{m.content.strip()}" for m in messages]
    return "".join(parts) + "\n\n[Assistant]\n"


def render_chat(template: str | None, messages: Sequence[Message], bos_token: str,
                eos_token: str) -> str:
    """The drafter's prompt from its GGUF chat template, ready for the assistant turn."""
    if not template:
        raise ModelError("the drafter has no chat template in its GGUF metadata",
                         "pick an instruction-tuned drafter (see `wsd models info`)")
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)

    def raise_exception(message: str) -> None:
        raise ModelError(f"the drafter's chat template rejected the conversation: {message}")

    env.globals["raise_exception"] = raise_exception
    try:
        return env.from_string(template).render(
            messages=[m.to_dict() for m in messages], add_generation_prompt=True,
            bos_token=bos_token, eos_token=eos_token)
    except ModelError:
        raise
    except Exception as exc:  # a template error is the model file's problem, said in one line
        raise ModelError(f"the drafter's chat template failed: {exc}") from None
