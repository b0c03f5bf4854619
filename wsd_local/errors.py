"""Errors the user can act on.

Every error that reaches the CLI or the TUI is a `WsdError`: one line that names the
problem and what to do. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class WsdError(Exception):
    """A problem with the user's input or environment, explained in one line."""

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None) -> None:
        self.message = message.strip()
        self.hint = hint.strip() if hint else None
        super().__init__(self.one_line())

    def one_line(self) -> str:
        text = self.message if not self.hint else f"{self.message} ({self.hint})"
        return " ".join(text.split())


class ConfigError(WsdError):
    """A decoding or runtime setting outside its valid range."""


class ModelError(WsdError):
    """A model file that is missing, unreadable, or not a usable GGUF."""


class PromptError(WsdError):
    """A prompt that is empty or does not fit the model's context."""


class Cancelled(Exception):
    """Raised inside the decoder when the caller asked it to stop."""


class RemoteError(WsdError):
    """A model server (vLLM, ...) that cannot be reached or cannot do what WSD needs."""
