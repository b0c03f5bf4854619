"""One column of the compare screen as plain state: decoder events in, text and stats
out (Rich only, no Textual widgets, so it is tested without an app)."""

from __future__ import annotations

from dataclasses import dataclass, field

from rich.text import Text

from wsd_local.answer import LiveAnswer, Span, describe_handovers, describe_switch
from wsd_local.events import Event
from wsd_local.modes import Mode, mode_named
from wsd_local.terminal_text import terminal_safe
from wsd_local.trace import Trace

from ..widgets.spans import answer_body

@dataclass
class ColumnState:
    """A column: the shared answer reducer (`live`) plus the column's own clock and error."""

    mode: str
    live: LiveAnswer = field(init=False)
    started: float | None = None
    elapsed: float = 0.0
    error: str | None = None

    def __post_init__(self) -> None:
        self.live = LiveAnswer(mode=self.mode)

    @property
    def declared(self) -> Mode:
        return mode_named(self.mode)

    @property
    def title(self) -> str:
        return self.declared.title

    @property
    def status(self) -> str:
        """waiting | loading | drafting | checking | continuing | done | stopped | error."""
        if self.error is not None:
            return "error"
        if self.started is None:
            return "waiting"
        if self.live.finished:
            return "stopped" if self.live.stopped else "done"
        return "loading" if self.live.phase == "waiting" else self.live.phase

    @property
    def running(self) -> bool:
        return self.started is not None and self.status not in ("done", "stopped", "error")

    @property
    def trace(self) -> Trace | None:
        return self.live.trace

    def start(self, now: float) -> None:
        self.started = now

    def tick(self, now: float) -> None:
        if self.running and self.started is not None:
            self.elapsed = now - self.started

    def fail(self, message: str, now: float) -> None:
        self.tick(now)
        self.error = message

    def apply(self, event: Event, now: float) -> None:
        self.tick(now)
        self.live.apply(event)

    # -- views ---------------------------------------------------------------------
    def spans(self) -> list[Span]:
        """Who wrote what so far (the finished answer's trace once it is done)."""
        return self.live.spans()

    def text(self) -> Text:
        """The answer in the chat's span styles, with the ⟫ marker at the switch (nudging:
        a marker at each hand-over, the drafter's words being checked dimmed)."""
        out = answer_body(self.live, streaming=self.running)
        if not out.plain and self.status not in ("done", "stopped", "error"):
            out.append("…" if self.started is not None else "waiting", style="dim")
        if self.error:
            out.append(("\n" if out.plain else "") + terminal_safe(self.error, one_line=True), style="bold red")
        return out

    def stats(self) -> str:
        live = self.live
        parts = [f"{self.elapsed:.1f} s"]
        tokens = live.draft_tokens + live.base_tokens
        both_write = self.declared.alone is None
        parts.append(f"{live.draft_tokens} drafter + {live.base_tokens} base tok" if both_write else f"{tokens} tok")
        if self.elapsed > 0 and tokens:
            parts.append(f"{tokens / self.elapsed:.1f} tok/s")
        if live.trace is not None:
            switch = describe_switch(live.trace, brief=True) or describe_handovers(live.trace, brief=True)
            if switch:
                parts.append(switch)
        elif self.declared.hands_over and live.handovers:
            parts.append(f"{live.handovers} hand-overs so far")
        elif live.switch is not None:
            parts.append(f"switch at draft token {live.switch.index}")
        return " · ".join(parts)
