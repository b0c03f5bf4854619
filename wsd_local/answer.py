"""The answer so far: one reducer from decoder events to what every view shows.

The CLI printer, the chat view, the compare columns, the server and the eval runner
all feed the decoder's events into a `LiveAnswer` and read the same fields: what the
drafter has written, the part the base model has checked, the switch, the kept and
discarded draft, the continuation and the spans (who wrote what). Once the answer is
finished its trace is authoritative, and the same properties read from it, so what a
view shows at the end is exactly what is stored.

`describe_switch` is the one sentence about where the switch fell and why;
`describe_handovers` its sibling for nudging answers, where the models take turns
(`turns()` lists them with the reason each began, `pending` is the drafter's turn
while the base model still checks its words).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .events import (BaseToken, DraftRescored, DraftScored, DraftToken, Event, Finished,
                     Handover, PhaseChanged, SwitchFound, WordsKept)
from .modes import BASE, DRAFTER, WSD_MODE, mode_named
from .templates import STOP_STRINGS
from .textstream import earliest_stop, partial_stop_len
from .trace import Trace


@dataclass(frozen=True)
class Span:
    model: str  # "drafter" | "base"
    text: str


@dataclass(frozen=True)
class Turn:
    """Nudging: one turn of one model, and why it began (`nudge_rule.HANDOVER_REASONS`)."""
    model: str
    text: str
    reason: str
    base_top_prob: float | None = None
    base_token: str = ""
    start: int = 0  # characters of the answer before it

    @property
    def handover(self) -> bool:
        """The turn passed from one model to the other here (not the answer's start,
        nor the drafter writing again)."""
        return self.reason not in ("start", "base_declined")


@dataclass
class LiveAnswer:
    """Feed with `apply(event)`; read the properties at any time."""

    mode: str = WSD_MODE.name
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
    pending: str = ""  # nudging: the drafter's turn while its words are being checked
    _turns: list[list] = field(default_factory=list, repr=False)  # nudging: [Handover, text]
    _checked_ends: list[int] = field(default_factory=list, repr=False)
    _switch_scored: int | None = field(default=None, repr=False)  # index of the switch token

    @classmethod
    def from_trace(cls, trace: Trace) -> "LiveAnswer":
        answer = cls(mode=trace.mode)
        answer.finish(trace)
        return answer

    # -- feeding -----------------------------------------------------------------
    def apply(self, event: Event) -> None:
        if self._turns or isinstance(event, Handover):
            if self._apply_turn(event):
                return
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

    def _apply_turn(self, event: Event) -> bool:
        """Nudging events; False for the events shared with the other modes."""
        if isinstance(event, Handover):
            self._turns.append([event, ""])
            self.pending = ""
        elif isinstance(event, DraftToken):
            self.pending += event.text
            if event.token_id >= 0:
                self.draft_tokens += 1
        elif isinstance(event, WordsKept):
            self._turns[-1][1] += event.text
            self.pending = ""
        elif isinstance(event, BaseToken):
            self._turns[-1][1] += event.text
            if event.token_id >= 0:
                self.base_tokens += 1
        else:
            return False
        return True

    def finish(self, trace: Trace) -> None:
        self.trace = trace
        self.mode = trace.mode
        self.phase = "done"
        self.pending = ""

    # -- reading -----------------------------------------------------------------
    @property
    def finished(self) -> bool:
        return self.trace is not None

    @property
    def stopped(self) -> bool:
        return self.trace is not None and self.trace.stopped_early

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
        return self.draft if mode_named(self.mode).uses(DRAFTER) else ""

    @property
    def discarded(self) -> str:
        """Draft text past the switch point, not part of the answer."""
        if self.trace is not None:
            return self.trace.discarded_draft
        return self.switch.discarded_text if self.switch is not None else ""

    @property
    def text(self) -> str:
        """The answer as it stands (nudging: without the drafter's words still checked)."""
        if self.trace is not None:
            return self.trace.answer
        if self._turns:
            return "".join(text for _, text in self._turns)
        return self.kept + self.continuation

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
        if self._turns:
            return self._turns[-1][0].to_model
        if not mode_named(self.mode).uses(DRAFTER) or self.switched or self.continuation:
            return BASE
        return DRAFTER

    def spans(self) -> list[Span]:
        """Who wrote what, in order; the texts concatenate to `text`."""
        if self.trace is not None:
            return [Span(s["model"], s["text"]) for s in self.trace.spans if s["text"]]
        if self._turns:
            return [Span(h.to_model, text) for h, text in self._turns if text]
        return [Span(model, text) for model, text in ((DRAFTER, self.kept), (BASE, self.continuation))
                if text]

    def turns(self) -> list[Turn]:
        """Nudging: every turn with the reason it began, empty ones included (a turn
        the base model ended at once); [] for the other modes."""
        if self.trace is not None:
            return turns_of(self.trace)
        out, start = [], 0
        for h, text in self._turns:
            out.append(Turn(h.to_model, text, h.reason, h.base_top_prob, h.base_token, start))
            start += len(text)
        return out

    @property
    def handovers(self) -> int:
        """Nudging: how often the turn passed between the models so far."""
        return sum(t.handover for t in self.turns())


def turns_of(trace: Trace) -> list[Turn]:
    """The turns of a nudging trace (its spans with their hand-over records)."""
    if not mode_named(trace.mode).hands_over:
        return []
    out, start = [], 0
    for span in trace.spans:
        h = span.get("handover") or {}
        out.append(Turn(span["model"], span["text"], h.get("reason", ""), h.get("base_top_prob"),
                        h.get("base_token") or "", start))
        start += len(span["text"])
    return out


# -- the hand-overs in one sentence --------------------------------------------------------
_REASON_TEXT = {
    "base_unsure": "the base model was unsure",
    "base_ended": "the base model ended its turn",
    "base_repeating": "the base model repeated itself",
    "base_declined": "the base model declined every word",
    "base_confident": "the base model was confident",
    "base_agrees": "the base model's next token started the drafter's next word",
}


def describe_turn(turn: Turn, threshold: float) -> str:
    """Why one turn began, e.g. "base model unsure: top-1 p 0.21 < 0.3 (' Keep')"."""
    p = turn.base_top_prob
    token = f" ({turn.base_token!r})" if turn.base_token else ""
    if turn.reason == "start":
        return "the drafter opens the answer"
    if turn.reason == "base_unsure" and p is not None:
        return f"{_REASON_TEXT[turn.reason]}: top-1 p {p:.3f} < {threshold:g}{token}"
    if turn.reason == "base_confident" and p is not None:
        return f"{_REASON_TEXT[turn.reason]}: top-1 p {p:.3f} ≥ {threshold:g}{token}"
    if turn.reason == "base_agrees" and p is not None:
        return f"{_REASON_TEXT[turn.reason]}{token}, top-1 p {p:.3f}"
    return _REASON_TEXT.get(turn.reason, turn.reason)


def model_shares(trace: Trace) -> dict[str, float]:
    """Share of the answer's characters each model wrote."""
    total = len(trace.answer)
    chars = {DRAFTER: 0, BASE: 0}
    for span in trace.spans:
        chars[span["model"]] = chars.get(span["model"], 0) + len(span["text"])
    return {m: (n / total if total else 0.0) for m, n in chars.items()}


def describe_handovers(trace: Trace, brief: bool = False) -> str | None:
    """How the models took turns in a nudging answer, or None for other modes. `brief`
    for headers and columns; the full form adds the settings and the turns."""
    if not mode_named(trace.mode).hands_over:
        return None
    turns = turns_of(trace)
    n = sum(t.handover for t in turns)
    share = model_shares(trace)[DRAFTER]
    s = trace.settings
    head = f"{n} hand-over{'s' if n != 1 else ''} · drafter wrote {100 * share:.0f} %"
    if brief:
        return head
    unsure = sum(t.reason == "base_unsure" for t in turns)
    return (f"{head} of the answer in {sum(t.model == DRAFTER for t in turns)} turns "
            f"(threshold {s.nudge_threshold:g}, {s.nudge_tokens} tokens a turn) · "
            f"the base model was unsure {unsure} time{'s' if unsure != 1 else ''}")


# -- the switch in one sentence ----------------------------------------------------------
def describe_switch(trace: Trace, brief: bool = False) -> str | None:
    """Where the switch fell and why, or None for answers without one (base or drafter
    alone). `brief` is the form for headers and columns; the full form adds the window
    and how much of the draft was kept."""
    if not mode_named(trace.mode).switches:
        return None
    k, n = trace.switch_index, len(trace.draft_tokens)
    if k is None:
        return "stopped before the switch" + ("" if brief else f": {n} draft tokens scored")
    if k < 0:
        return ("empty draft" if brief else
                "the drafter wrote nothing: the base model wrote the whole answer")
    g = window_score_at(trace, k)
    note = _repeat_note(trace, brief)
    if trace.forced_switch is not None:
        if brief:
            return f"switch at draft token {k} (chosen in the inspector)" + note
        return (f"switch at draft token {k}, chosen in the inspector (g {g:.3f}, γ {trace.threshold:.2f},"
                f" w {trace.window}) · kept {k + 1} of {n} draft tokens" + note)
    if trace.switch_fired:
        if brief:
            return f"switch at draft token {k} (g {g:.2f} ≥ γ {trace.threshold:g})" + note
        return (f"switch at draft token {k} (g {g:.3f} ≥ γ {trace.threshold:.2f}, w {trace.window})"
                f" · kept {k + 1} of {n} draft tokens" + note)
    # With --switch-skip-repeats, windows in repeated draft text may have reached γ.
    outside = " outside repeated draft text" if trace.counts.get("repeat_windows_skipped") else ""
    if brief:
        return f"switch at draft token {k} (no window{outside} reached γ {trace.threshold:g}: whole draft kept)"
    return (f"no window{outside} reached γ {trace.threshold:.2f} (w {trace.window}): all {n} draft tokens kept"
            + _skipped_note(trace))


def _repeat_note(trace: Trace, brief: bool) -> str:
    """The switch window lies in text that repeats earlier draft text (a loop of the
    drafter's the base model found predictable), and windows the rule skipped."""
    note = ""
    if trace.switch_in_repeat:
        note = (" · switch inside a repeated span" if brief else
                " · switch inside a repeated span (the window repeats earlier draft text)")
    return note + ("" if brief else _skipped_note(trace))


def _skipped_note(trace: Trace) -> str:
    skipped = trace.counts.get("repeat_windows_skipped", 0)
    if not skipped:
        return ""
    return f" · skipped {skipped} window{'s' if skipped != 1 else ''} in repeated draft text"


def window_score_at(trace: Trace, k: int) -> float:
    """The window score g at draft token k (0 where there is none)."""
    scores = trace.window_scores
    value = scores[k] if 0 <= k < len(scores) else 0.0
    return value if math.isfinite(value) else 0.0


__all__ = ["LiveAnswer", "Span", "Turn", "turns_of", "describe_switch", "describe_handovers",
           "describe_turn", "model_shares", "window_score_at", "DRAFTER", "BASE"]
