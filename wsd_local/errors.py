"""Errors the user can act on.

Every error that reaches the CLI or the TUI is a `WsdError`: one line that names the
problem and what to do. Anything else is a bug and keeps its traceback.

Exit codes (the table is in the README): 2 when the command as typed cannot work
(a bad flag or setting, an unknown model, a file that is not a usable GGUF, an empty
prompt, a broken config file): the user fixes the command. 1 when a valid command
failed while it ran (the network, a download, llama.cpp, the database): running it
again later, or fixing the machine, may help.
"""

from __future__ import annotations


class WsdError(Exception):
    """A problem with the user's input or environment, explained in one line."""

    exit_code = 1  # a valid command that could not be carried out

    def __init__(self, message: str, hint: str | None = None) -> None:
        self.message = message.strip()
        self.hint = hint.strip() if hint else None
        super().__init__(self.one_line())

    def one_line(self) -> str:
        text = self.message if not self.hint else f"{self.message} ({self.hint})"
        return " ".join(text.split())


class UsageError(WsdError):
    """The command as typed cannot work: the user has to change it."""

    exit_code = 2


class ConfigError(UsageError):
    """A decoding or runtime setting outside its valid range, or a bad config file."""


class ModelError(UsageError):
    """A model file that is missing, unreadable, or not a usable GGUF."""


class DownloadError(ModelError):
    """Fetching a model failed (network, the Hub, an interrupted or corrupt transfer)."""

    exit_code = 1


class ModelLoadError(ModelError):
    """llama.cpp could not load a file that looked like a usable GGUF."""

    exit_code = 1


class PromptError(UsageError):
    """A prompt that is empty or does not fit the model's context."""


class RemoteError(WsdError):
    """A model server (vLLM, ...) that cannot be reached or failed (exit 1: try again,
    or fix the server)."""


class RemoteRefusal(UsageError, RemoteError):
    """A model server the command as typed cannot use: wrong model name, wrong API key,
    a server that cannot score prompts (exit 2: change the command)."""
