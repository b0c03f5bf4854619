"""One turn of the conversation: the user's message, or an answer with its spans.

An answer is drawn from an `AnswerState`, fed with the engine's events while it streams
and replaced by the finished trace (what is stored is what is shown). The screen
batches redraws (`AnswerWidget.dirty`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from rich.text import Text
from textual.message import Message
from textual.widgets import Static

from wsd_local.answer import LiveAnswer, describe_handovers, describe_switch
from wsd_local.events import BaseToken, DraftToken, Event, Finished
from wsd_local.modes import BASE, mode_named
from wsd_local.store import ERROR, PENDING, STOPPED, MessageRecord
from wsd_local.terminal_text import terminal_safe
from wsd_local.trace import SERVER_STOPS, Trace

from ..actions import ANSWER, bindings
from .spans import (CURSOR, DISCARDED_LABEL_STYLE, DISCARDED_STYLE, STYLES, SWITCH_MARKER,
                    answer_body)

# Display states of an answer.
STREAMING, STOPPING, DONE, STOPPED_S, FAILED, INTERRUPTED = (
    "streaming", "stopping", "done", "stopped", "error", "interrupted")

_STOP_NOTES = {"max_tokens": "reached the token limit", "context_full": "context full",
               "max_rounds": "reached the turn limit",
               "repetition": "stopped: it began repeating itself",
               "connection_lost": "connection to the model server lost: the answer stops here",
               "server_error": "the model server failed: the answer stops here"}


@dataclass
class AnswerState:
    """An answer as the chat shows it: the engine's answer so far (`live`, the shared
    reducer) plus what only the chat needs: display status, error, label, speed."""

    live: LiveAnswer = field(default_factory=LiveAnswer)
    status: str = STREAMING
    error: str | None = None
    plain: str | None = None  # an answer stored without a trace (schema 1)
    label: str | None = None  # e.g. "re-run from draft token 12"
    # tokens/s of the stream now running (drafter while drafting, base while continuing)
    _rate_model: str = ""
    _rate_count: int = 0
    _rate_start: float = 0.0
    _rate_last: float = 0.0

    @classmethod
    def waiting(cls, mode: str, label: str | None = None) -> "AnswerState":
        return cls(live=LiveAnswer(mode=mode), label=label)

    # -- feeding -----------------------------------------------------------------
    def apply(self, event: Event) -> None:
        self.live.apply(event)
        if isinstance(event, DraftToken):
            self._count("drafter")
        elif isinstance(event, BaseToken):
            self._count("base")
        elif isinstance(event, Finished):  # `live` has taken the trace
            self._set_finished_status()

    def finish(self, trace: Trace) -> None:
        self.live.finish(trace)
        self._set_finished_status()

    def _set_finished_status(self) -> None:
        self.status = STOPPED_S if self.live.stopped else DONE

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

    @property
    def trace(self) -> Trace | None:
        return self.live.trace

    # -- reading -----------------------------------------------------------------
    @property
    def text(self) -> str:
        """The answer as it stands (what copy and export give)."""
        if self.plain is not None and self.live.trace is None:
            return self.plain
        return self.live.text

    # -- construction from storage --------------------------------------------------
    @classmethod
    def from_record(cls, record: MessageRecord) -> "AnswerState":
        trace = record.trace
        state = cls()
        if trace is not None:
            state.finish(trace)
            if trace.forced_switch is not None:
                state.label = f"re-run from draft token {trace.forced_switch}"
        else:
            state.plain = record.content
            state.live.phase = "done"
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
    if state.plain is not None and state.live.trace is None:  # stored without a trace
        body, discarded = Text(terminal_safe(state.plain)), ""
    else:
        body, discarded = answer_body(state.live, state.streaming), state.live.discarded
    if state.streaming:
        body.append(CURSOR, style=STYLES[state.live.writer] if state.live.phase != "waiting" else "dim")
    elif not body.plain:
        body.append("(no text)", style="dim italic")
    out.append_text(body)
    if discarded.strip():
        # Set apart below the answer, one compact block (line breaks shown as ↵).
        out.append("\n\n")
        out.append("✂ draft after the switch, not kept: ", style=DISCARDED_LABEL_STYLE)
        lines = [line.strip() for line in discarded.strip().splitlines() if line.strip()]
        out.append(terminal_safe(" ↵ ".join(lines), one_line=True), style=DISCARDED_STYLE)
    if state.status == STOPPED_S and state.trace is not None and state.trace.stop_reason in SERVER_STOPS:
        what = "connection lost" if state.trace.stop_reason == "connection_lost" else "server error"
        out.append(f"\n■ {what} — what was written is kept ({terminal_safe(state.trace.stop_note, one_line=True)})",
                   style="bold #cc79a7")
    elif state.status == STOPPED_S:
        out.append("\n■ stopped — what was written is kept", style="bold #cc79a7")
    elif state.status == FAILED:
        out.append(f"\n⚠ failed: {terminal_safe(state.error or 'error', one_line=True)}", style="bold #d55e00")
    elif state.status == INTERRUPTED:
        out.append("\n⚠ interrupted: the app closed before this answer finished "
                   "(ctrl+r writes it again)", style="bold #d55e00")
    return out


def _header(state: AnswerState) -> Text:
    head = Text("Assistant", style="bold")
    if state.label:
        head.append(f" · {terminal_safe(state.label, one_line=True)}", style="italic")
    live = state.live
    if state.streaming:
        if state.status == STOPPING:
            note = "stopping…"
        elif mode_named(live.mode).hands_over:
            note = {"drafting": "the drafter writes…",
                    "checking": "the base model checks the drafter's words…",
                    "continuing": "the base model writes…"}.get(live.phase, "waiting…")
            if live.handovers:
                note += f" ({live.handovers} hand-overs so far)"
        elif live.phase == "checking":
            note = f"checking: {live.scored} draft tokens scored, window score {live.window_score:.2f}"
        else:
            note = {"drafting": "drafting (drafter)…",
                    "continuing": "continuing (base model)…"}.get(live.phase, "waiting…")
        head.append(f" · {note}", style="dim")
        return head
    trace = state.trace
    if trace is None:
        return head
    switch = describe_switch(trace, brief=True)
    turns = describe_handovers(trace, brief=True)
    if turns is not None:
        head.append(f" · nudging · {turns}", style="dim")
    elif switch is None:
        who = "base model only" if mode_named(trace.mode).alone == BASE else "drafter only"
        head.append(f" · {who}", style="dim")
    elif trace.switch_index is not None:
        head.append(f" · {trace.mode} · {switch} · drafter {trace.switch_index + 1} "
                    f"{SWITCH_MARKER} base {len(trace.continuation_tokens)} tokens", style="dim")
    else:
        head.append(f" · {trace.mode} · {switch}", style="dim")
    note = _STOP_NOTES.get(trace.stop_reason)
    if note:
        head.append(f" · {note}", style="dim")
    return head


class AnswerWidget(Static, can_focus=True):
    """An answer; focus it (tab / click) to inspect (i) or copy (c) it."""

    BINDINGS = bindings(ANSWER)

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
        # a Text, not markup: brackets in questions stay as typed
        self.update(Text.assemble(("You\n", "bold"), terminal_safe(self.text)))
