"""One column of the compare screen as plain state: decoder events in, text and stats
out (no Textual, so it is tested without an app)."""

from __future__ import annotations

from dataclasses import dataclass, field

from rich.text import Text

from wsd_local.events import (
    BaseToken,
    DraftRescored,
    DraftScored,
    DraftToken,
    Event,
    Finished,
    PhaseChanged,
    SwitchFound,
)
from wsd_local.trace import Trace

DRAFTER_STYLE = "#56b4e9"  # sky blue (Okabe–Ito); the base model's text keeps the default colour
BASE_STYLE = ""

COLUMN_TITLES: dict[str, str] = {"base": "Base only", "draft": "Drafter only", "wsd": "WSD",
                                 "paper": "WSD (paper)"}


@dataclass
class ColumnState:
    mode: str
    status: str = "waiting"  # waiting | loading | drafting | checking | continuing | done | cancelled | error
    draft: str = ""  # drafter text so far (the whole draft until a switch is found)
    kept: str = ""
    discarded: str = ""
    base: str = ""
    switched: bool = False
    switch_index: int | None = None
    switch_fired: bool = False
    draft_tokens: int = 0
    base_tokens: int = 0
    scored: int = 0
    started: float | None = None
    elapsed: float = 0.0
    error: str | None = None
    trace: Trace | None = field(default=None, repr=False)

    @property
    def title(self) -> str:
        return COLUMN_TITLES.get(self.mode, self.mode)

    @property
    def running(self) -> bool:
        return self.started is not None and self.status not in ("done", "cancelled", "error")

    def start(self, now: float) -> None:
        self.started = now
        self.status = "loading"

    def tick(self, now: float) -> None:
        if self.running and self.started is not None:
            self.elapsed = now - self.started

    def fail(self, message: str, now: float) -> None:
        self.tick(now)
        self.status = "error"
        self.error = message

    def apply(self, event: Event, now: float) -> None:
        self.tick(now)
        if isinstance(event, PhaseChanged):
            if event.phase != "done":
                self.status = event.phase
        elif isinstance(event, DraftToken):
            self.draft += event.text
            self.draft_tokens += 1
        elif isinstance(event, DraftScored):
            self.scored = event.index + 1
        elif isinstance(event, DraftRescored):
            self.scored = event.index
        elif isinstance(event, SwitchFound):
            self.switched = True
            self.switch_index = event.index
            self.switch_fired = event.fired
            self.kept = event.kept_text
            self.discarded = event.discarded_text
        elif isinstance(event, BaseToken):
            self.base += event.text
            self.base_tokens += 1
        elif isinstance(event, Finished):
            self.trace = event.trace
            self.status = "cancelled" if event.trace.stop_reason == "cancelled" else "done"

    # -- views ---------------------------------------------------------------------
    def spans(self) -> list[tuple[str, str]]:
        """(text, writer) pieces of the answer as it stands; writer is drafter or base."""
        t = self.trace
        if t is not None:  # the finished answer is authoritative
            if self.mode == "draft":
                return [(t.answer, "drafter")]
            if self.mode == "base":
                return [(t.answer, "base")]
            return [(t.kept_draft, "drafter"), (t.continuation, "base")]
        if self.mode == "base":
            return [(self.base, "base")]
        drafted = self.kept if self.switched else self.draft
        return [(drafted, "drafter"), (self.base, "base")]

    def text(self) -> Text:
        out = Text()
        for piece, writer in self.spans():
            if piece:
                out.append(piece, style=DRAFTER_STYLE if writer == "drafter" else BASE_STYLE)
        if not out.plain and self.status not in ("done", "cancelled", "error"):
            out.append("…" if self.started is not None else "waiting", style="dim")
        if self.error:
            out.append(("\n" if out.plain else "") + self.error, style="bold red")
        return out

    def stats(self) -> str:
        parts = [f"{self.elapsed:.1f} s"]
        tokens = self.draft_tokens + self.base_tokens
        if self.mode in ("wsd", "paper"):
            parts.append(f"{self.draft_tokens} drafter + {self.base_tokens} base tok")
        else:
            parts.append(f"{tokens} tok")
        if self.elapsed > 0 and tokens:
            parts.append(f"{tokens / self.elapsed:.1f} tok/s")
        if self.switched and self.switch_index is not None:
            parts.append(f"switch at {self.switch_index}" if self.switch_fired
                         else "no switch: whole draft kept")
        return " · ".join(parts)
