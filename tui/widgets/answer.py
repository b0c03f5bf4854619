"""One turn of the conversation: the user's message, or an answer with its spans.

An answer is drawn from an `AnswerState`, which the chat screen feeds with the engine's
events while it streams and which a finished trace replaces (what is stored is what is
shown). Redraws are batched by the screen (`AnswerWidget.dirty`), not done per token.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.widgets import Static

from wsd_local.events import (BaseToken, DraftRescored, DraftScored, DraftToken, Event, Finished,
                              PhaseChanged, SwitchFound)
from wsd_local.store import COMPLETE, ERROR, PENDING, STOPPED, MessageRecord
from wsd_local.trace import Trace

from .spans import (CURSOR, DISCARDED_LABEL_STYLE, DISCARDED_STYLE, STYLES, SWITCH_MARKER,
                    span_text)

# Display states of an answer.
STREAMING, STOPPING, DONE, STOPPED_S, FAILED, INTERRUPTED = (
    "streaming", "stopping", "done", "stopped", "error", "interrupted")

_STOP_NOTES = {"max_tokens": "reached the token limit", "context_full": "context full"}


@dataclass
class AnswerState:
    mode: str = "wsd"
    threshold: float = 0.8
    draft: str = ""  # drafter text streamed so far
    kept: str | None = None  # set when the switch is found
    discarded: str = ""
    continuation: str = ""
    switch_index: int | None = None
    switch_fired: bool = False
    window_score: float = 0.0
    phase: str = "waiting"
    status: str = STREAMING
    error: str | None = None
    scored: int = 0  # draft tokens the base model has scored
    trace: Trace | None = None
    plain: str | None = None  # an answer stored without a trace (schema 1)
    label: str | None = None  # e.g. "re-run from draft token 12"
    # tokens/s of the stream now running (drafter while drafting, base while continuing)
    _rate_model: str = ""
    _rate_count: int = 0
    _rate_start: float = 0.0
    _rate_last: float = 0.0

    # -- feeding -----------------------------------------------------------------
    def apply(self, event: Event) -> None:
        if isinstance(event, PhaseChanged):
            self.phase = event.phase
        elif isinstance(event, DraftToken):
            self.draft += event.text
            self._count("drafter")
        elif isinstance(event, DraftScored):
            self.scored = event.index + 1
            self.window_score = event.window_score
        elif isinstance(event, DraftRescored):
            self.scored = event.index
        elif isinstance(event, SwitchFound):
            self.kept = event.kept_text
            self.discarded = event.discarded_text
            self.switch_index = event.index
            self.switch_fired = event.fired
            self.window_score = event.window_score
            if not self.draft:
                self.draft = event.kept_text + event.discarded_text
        elif isinstance(event, BaseToken):
            self.continuation += event.text
            self._count("base")
        elif isinstance(event, Finished):
            self.finish(event.trace)

    def finish(self, trace: Trace) -> None:
        self.trace = trace
        self.mode = trace.mode
        self.phase = "done"
        self.status = STOPPED_S if trace.stop_reason == "cancelled" else DONE

    def _count(self, model: str) -> None:
        now = time.monotonic()
        if self._rate_model != model:
            self._rate_model, self._rate_count, self._rate_start = model, 0, now
        self._rate_count += 1
        self._rate_last = now

    @property
    def tokens_per_second(self) -> float | None:
        elapsed = self._rate_last - self._rate_start
        if self._rate_count < 2 or elapsed <= 0:
            return None
        return (self._rate_count - 1) / elapsed

    @property
    def streaming(self) -> bool:
        return self.status in (STREAMING, STOPPING)

    # -- reading -----------------------------------------------------------------
    @property
    def text(self) -> str:
        """The answer as it stands (what copy and export give)."""
        if self.trace is not None:
            return self.trace.answer
        if self.plain is not None:
            return self.plain
        if self.kept is not None:
            return self.kept + self.continuation
        return self.draft + self.continuation

    def segments(self) -> tuple[list[tuple[str, str]], bool, str]:
        """(model, text) segments, whether a switch marker belongs after the drafter's
        span, and the discarded draft."""
        if self.trace is not None:
            trace = self.trace
            segments = [(s["model"], s["text"]) for s in trace.spans if s["text"]]
            return segments, trace.switch_index is not None, trace.discarded_draft
        if self.plain is not None:
            return [("plain", self.plain)], False, ""
        if self.kept is not None:
            segments = [("drafter", self.kept)] if self.kept else []
            if self.continuation:
                segments.append(("base", self.continuation))
            return segments, True, self.discarded
        segments = []
        if self.draft:
            segments.append(("drafter", self.draft))
        if self.continuation:  # mode "base": no draft, no switch
            segments.append(("base", self.continuation))
        return segments, False, ""

    # -- construction from storage --------------------------------------------------
    @classmethod
    def from_record(cls, record: MessageRecord) -> "AnswerState":
        trace = record.trace
        state = cls()
        if trace is not None:
            state.finish(trace)
            state.threshold = trace.threshold
            forced = trace.settings.get("forced_switch")
            if forced is not None:
                state.label = f"re-run from draft token {forced}"
        else:
            state.plain = record.content
            state.phase = "done"
            state.status = DONE
        if record.status == STOPPED:
            state.status = STOPPED_S
        elif record.status == ERROR:
            state.status = FAILED
            state.error = record.error
        elif record.status == PENDING:  # the app closed (or crashed) while it was written
            state.status = INTERRUPTED
        return state


def render_answer(state: AnswerState) -> Text:
    out = Text()
    out.append_text(_header(state))
    out.append("\n")
    segments, marker, discarded = state.segments()
    body = span_text([(m if m in STYLES else "", t) for m, t in segments], marker_after_drafter=marker)
    if state.streaming:
        current = ("base" if (state.kept is not None or state.continuation or state.mode == "base")
                   else "drafter")
        body.append(CURSOR, style=STYLES[current] if state.phase != "waiting" else "dim")
    elif not body.plain:
        body.append("(no text)", style="dim italic")
    out.append_text(body)
    if discarded.strip():
        # Set apart below the answer, one compact block (line breaks shown as ↵).
        out.append("\n\n")
        out.append("✂ draft after the switch, not kept: ", style=DISCARDED_LABEL_STYLE)
        lines = [line.strip() for line in discarded.strip().splitlines() if line.strip()]
        out.append(" ↵ ".join(lines), style=DISCARDED_STYLE)
    if state.status == STOPPED_S:
        out.append("\n■ stopped — what was written is kept", style="bold #cc79a7")
    elif state.status == FAILED:
        out.append(f"\n⚠ failed: {state.error or 'error'}", style="bold #d55e00")
    elif state.status == INTERRUPTED:
        out.append("\n⚠ interrupted: the app closed before this answer finished "
                   "(ctrl+r writes it again)", style="bold #d55e00")
    return out


def _header(state: AnswerState) -> Text:
    head = Text("Assistant", style="bold")
    if state.label:
        head.append(f" · {state.label}", style="italic")
    if state.streaming:
        if state.status == STOPPING:
            note = "stopping…"
        elif state.phase == "drafting":
            note = "drafting (drafter)…"
        elif state.phase == "checking":
            note = f"checking: {state.scored} draft tokens scored, window score {state.window_score:.2f}"
        elif state.phase == "continuing":
            note = "continuing (base model)…"
        else:
            note = "waiting…"
        head.append(f" · {note}", style="dim")
        return head
    trace = state.trace
    if trace is None:
        return head
    if trace.mode in ("base", "draft"):
        who = "base model only" if trace.mode == "base" else "drafter only"
        head.append(f" · {who}", style="dim")
    elif trace.switch_index is not None:
        k = trace.switch_index
        scores = trace.window_scores
        g = scores[k] if 0 <= k < len(scores) else 0.0
        if trace.settings.get("forced_switch") is not None:
            why = "chosen in the inspector"
        elif trace.switch_fired:
            why = f"g {g:.2f} ≥ γ {trace.threshold:g}"
        else:
            why = f"no window reached γ {trace.threshold:g}: whole draft kept"
        head.append(f" · {trace.mode} · switch at draft token {k} ({why}) · drafter {k + 1} "
                    f"{SWITCH_MARKER} base {len(trace.continuation_tokens)} tokens", style="dim")
    elif trace.stop_reason == "cancelled":
        head.append(f" · {trace.mode} · stopped before the switch", style="dim")
    note = _STOP_NOTES.get(trace.stop_reason)
    if note:
        head.append(f" · {note}", style="dim")
    return head


class AnswerWidget(Static, can_focus=True):
    """An answer; focus it (tab / click) to inspect (i) or copy (c) it."""

    BINDINGS = [
        Binding("i", "inspect", "Inspect"),
        Binding("c", "copy", "Copy"),
    ]

    class Action(Message):
        """Ask the chat screen to act on this answer (the screen owns engine and store)."""

        def __init__(self, answer: "AnswerWidget", action: str) -> None:
            super().__init__()
            self.answer = answer
            self.action = action

    def __init__(self, state: AnswerState, message_id: int | None = None, **kwargs: object) -> None:
        super().__init__("", **kwargs)  # type: ignore[arg-type]
        self.state = state
        self.message_id = message_id
        self.dirty = False
        self.rendered = Text()  # what the widget shows now (tests compare it with the trace)

    def on_mount(self) -> None:
        self.redraw()

    def redraw(self) -> None:
        self.dirty = False
        self.rendered = render_answer(self.state)
        self.update(self.rendered)

    def action_inspect(self) -> None:
        self.post_message(self.Action(self, "inspect"))

    def action_copy(self) -> None:
        self.post_message(self.Action(self, "copy"))


class UserMessage(Static):
    def __init__(self, text: str, message_id: int | None = None, **kwargs: object) -> None:
        super().__init__("", **kwargs)  # type: ignore[arg-type]
        self.text = text
        self.message_id = message_id

    def on_mount(self) -> None:
        body = Text()
        body.append("You\n", style="bold")
        body.append(self.text)  # a Text, not markup: brackets in questions stay as typed
        self.update(body)


__all__ = ["AnswerState", "AnswerWidget", "UserMessage", "render_answer", "COMPLETE"]
