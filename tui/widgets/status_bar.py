"""The status line: models, backend, phase, tokens/s."""

from __future__ import annotations

from dataclasses import dataclass, replace

from rich.text import Text
from textual.widgets import Static

from wsd_local.modes import WSD_MODE
from wsd_local.terminal_text import terminal_safe

from .spans import BASE_STYLE, DRAFTER_STYLE


@dataclass
class Status:
    drafter: str | None = None
    base: str | None = None
    backend: str | None = None
    phase: str = "loading models"
    tokens_per_second: float | None = None
    mode: str = WSD_MODE.name


class StatusBar(Static):
    def __init__(self, **kwargs: object) -> None:
        super().__init__("", **kwargs)  # type: ignore[arg-type]
        self.status = Status()

    def on_mount(self) -> None:
        self.show()

    def set(self, **changes: object) -> None:
        status = replace(self.status, **changes)  # type: ignore[arg-type]
        if status != self.status:
            self.status = status
            self.show()

    def show(self) -> None:
        s = self.status
        text = Text.assemble(
            (terminal_safe(s.drafter, one_line=True) if s.drafter else "drafter …", DRAFTER_STYLE), " ⟫ ",
            (terminal_safe(s.base, one_line=True) if s.base else "base …", BASE_STYLE),
            f"  │ {s.backend or '…'}  │ mode {s.mode}  │ {s.phase}")
        if s.tokens_per_second is not None:
            text.append(f"  │ {s.tokens_per_second:.1f} tok/s")
        self.update(text)
