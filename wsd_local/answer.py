"""The answer so far: one reducer from decoder events to what every view shows.

The CLI printer, the chat view, the compare columns, the server and the eval runner
all feed the decoder's events into a `LiveAnswer` and read the same fields: what the
drafter has written, the part the base model has checked, the switch, the kept and
discarded draft, the continuation and the spans (who wrote what). Once the answer is
finished its trace is authoritative, and the same properties read from it, so what a
view shows at the end is exactly what is stored.

`describe_switch` is the one sentence about where the switch fell and why.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .events import (BaseToken, DraftRescored, DraftScored, DraftToken, Event, Finished,
                     PhaseChanged, SwitchFound)
from .templates import STOP_STRINGS
from .textstream import earliest_stop, partial_stop_len
from .trace import Trace

DRAFTER, BASE = "drafter", "base"
#: Modes whose answer has a switch point (a checked draft).
SWITCH_MODES = ("wsd", "paper")


@dataclass(frozen=True)
class Span:
    model: str  # "drafter" | "base"
    text: str


@dataclass
class LiveAnswer:
    """Feed with `apply(event)`; read the properties at any time."""

    mode: str = "wsd"
    phase: str = "waiting"  # waiting, then the decoder's phases: drafting, checking, continuing, done
    draft: str = ""  # everything the drafter has written so far
    checked: str = ""  # text of the draft tokens the base model has scored, in order
    switch: SwitchFound | None = None
    continuation: str = ""  # the base model's text so far
    draft_tokens: int = 0  # drafter tokens written
    base_tokens: int = 0  # base tokens written
    scored: int = 0  # draft tokens scored by the base model (in base tokens)
    window_score: float = 0.0  # the latest window score
    trace: Trace | None = None
    _checked_ends: list[int] = field(default_factory=list, repr=False)
    _switch_scored: int | None = field(default=None, repr=False)  # index of the switch token

    @classmethod
    def from_trace(cls, trace: Trace) -> "LiveAnswer":
        answer = cls(mode=trace.mode)
        answer.finish(trace)
        return answer

    # -- feeding -----------------------------------------------------------------
    def apply(self, event: Event) -> None:
        if isinstance(event, PhaseChanged):
            self.phase = event.phase
        elif isinstance(event, DraftToken):
            self.draft += event.text
            if event.token_id >= 0:  # -1: held-back text flushed at the end, not a token
                self.draft_tokens += 1
        elif isinstance(event, DraftScored):
            self.checked += event.text
            self._checked_ends.append(len(self.checked))
            self.scored = event.index + 1
            self.window_score = event.window_score
            if event.is_switch:
                self._switch_scored = event.index
        elif isinstance(event, DraftRescored):
            if self._switch_scored is not None and self._switch_scored >= event.index:
                self._switch_scored = None
            del self._checked_ends[event.index:]
            self.checked = self.checked[: self._checked_ends[-1] if self._checked_ends else 0]
            self.scored = event.index
        elif isinstance(event, SwitchFound):
            self.switch = event
            self.window_score = event.window_score
            if not self.draft:  # a re-run from a stored draft: no drafter events
                self.draft = event.kept_text + event.discarded_text
        elif isinstance(event, BaseToken):
            self.continuation += event.text
            if event.token_id >= 0:
                self.base_tokens += 1
        elif isinstance(event, Finished):
            self.finish(event.trace)

    def finish(self, trace: Trace) -> None:
        self.trace = trace
        self.mode = trace.mode
        self.phase = "done"

    # -- reading -----------------------------------------------------------------
    @property
    def finished(self) -> bool:
        return self.trace is not None

    @property
    def stopped(self) -> bool:
        return self.trace is not None and self.trace.stop_reason == "cancelled"

    @property
    def switched(self) -> bool:
        """The switch point is known (the base model writes from there)."""
        if self.trace is not None:
            return self.trace.switch_index is not None
        return self.switch is not None

    @property
    def kept(self) -> str:
        """The drafter's part of the answer: the kept draft once the switch is known,
        until then everything drafted so far."""
        if self.trace is not None:
            return self.trace.kept_draft
        if self.switch is not None:
            return self.switch.kept_text
        return "" if self.mode == "base" else self.draft

    @property
    def discarded(self) -> str:
        """Draft text past the switch point, not part of the answer."""
        if self.trace is not None:
            return self.trace.discarded_draft
        return self.switch.discarded_text if self.switch is not None else ""

    @property
    def text(self) -> str:
        """The answer as it stands."""
        return self.trace.answer if self.trace is not None else self.kept + self.continuation

    @property
    def confirmed(self) -> str:
        """The checked draft up to the switch token (scores past it do not count), and
        never from a stop string on: the answer ends at the first one, and text that may
        be the start of one waits until the continuation shows it is not."""
        text = self.checked
        if self._switch_scored is not None:
            text = text[: self._checked_ends[self._switch_scored]]
        cut = earliest_stop(text, STOP_STRINGS)
        if cut is not None:
            return text[:cut]
        return text[: len(text) - partial_stop_len(text, STOP_STRINGS)]

    @property
    def writer(self) -> str:
        """Who is writing now (or wrote last)."""
        if self.mode == "base" or self.switched or self.continuation:
            return BASE
        return DRAFTER

    def spans(self) -> list[Span]:
        """Who wrote what, in order; the texts concatenate to `text`."""
        if self.trace is not None:
            return [Span(s["model"], s["text"]) for s in self.trace.spans if s["text"]]
        return [Span(model, text) for model, text in ((DRAFTER, self.kept), (BASE, self.continuation))
                if text]


# -- the switch in one sentence ----------------------------------------------------------
def describe_switch(trace: Trace, brief: bool = False) -> str | None:
    """Where the switch fell and why, or None for answers without one (base or drafter
    alone). `brief` is the form for headers and columns; the full form adds the window
    and how much of the draft was kept."""
    if trace.mode not in SWITCH_MODES:
        return None
    k, n = trace.switch_index, len(trace.draft_tokens)
    if k is None:
        return "stopped before the switch" + ("" if brief else f": {n} draft tokens scored")
    if k < 0:
        return ("empty draft" if brief else
                "the drafter wrote nothing: the base model wrote the whole answer")
    g = _window_score_at(trace, k)
    if trace.forced_switch is not None:
        if brief:
            return f"switch at draft token {k} (chosen in the inspector)"
        return (f"switch at draft token {k}, chosen in the inspector (g {g:.3f}, γ {trace.threshold:.2f},"
                f" w {trace.window}) · kept {k + 1} of {n} draft tokens")
    if trace.switch_fired:
        if brief:
            return f"switch at draft token {k} (g {g:.2f} ≥ γ {trace.threshold:g})"
        return (f"switch at draft token {k} (g {g:.3f} ≥ γ {trace.threshold:.2f}, w {trace.window})"
                f" · kept {k + 1} of {n} draft tokens")
    if brief:
        return f"switch at draft token {k} (no window reached γ {trace.threshold:g}: whole draft kept)"
    return f"no window reached γ {trace.threshold:.2f} (w {trace.window}): all {n} draft tokens kept"


def _window_score_at(trace: Trace, k: int) -> float:
    scores = trace.window_scores
    value = scores[k] if 0 <= k < len(scores) else 0.0
    return value if math.isfinite(value) else 0.0


__all__ = ["LiveAnswer", "Span", "describe_switch", "DRAFTER", "BASE", "SWITCH_MODES"]
