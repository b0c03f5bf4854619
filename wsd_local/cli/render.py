"""Terminal rendering of an answer as it is written: who wrote what, and the switch.

The drafter's span is blue, the base model's orange (a colour-blind-safe pair); the
switch marker ⟫ separates them without relying on colour. Draft text is printed as the
base model confirms it (checked tokens), so text the base model does not keep is never
mixed into the answer: it is listed afterwards, struck through.

Nudging answers take turns: each turn is printed in its model's colour once it is part
of the answer (the drafter's words once the base model has checked them), with ⟫ where
the base model takes over and ⟪ where the drafter does.

What the models wrote is made terminal-safe as it streams (`TerminalStream`); the
colours and marks around it are ours.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import TextIO

from ..answer import LiveAnswer, describe_handovers, describe_switch
from ..events import (BaseToken, DraftScored, DraftToken, Event, Finished, Handover, PhaseChanged,
                      SwitchFound, WordsKept)
from ..modes import BASE as BASE_ROLE
from ..modes import DRAFTER as DRAFTER_ROLE
from ..modes import mode_named
from ..terminal_text import TerminalStream, terminal_safe
from ..trace import SERVER_STOPS, Trace

DRAFTER = "\x1b[38;5;33m"  # blue
BASE = "\x1b[38;5;208m"  # orange
MARKER = "\x1b[1;38;5;201m"  # bold magenta
DIM_STRIKE = "\x1b[2;9m"
DIM = "\x1b[2m"
RESET = "\x1b[0m"
SWITCH_MARK = "⟫"
TO_DRAFTER_MARK = "⟪"  # nudging: the drafter takes the turn


@dataclass
class AnswerPrinter:
    out: TextIO = sys.stdout
    err: TextIO = sys.stderr
    color: bool = True
    progress: bool = True  # a transient "drafting… N tokens" line on stderr
    answer: LiveAnswer = field(default_factory=LiveAnswer)
    _printed: int = 0  # characters of the drafter's span already printed
    _progress_shown: bool = False
    _safe: TerminalStream = field(default_factory=TerminalStream)  # the answer's text, as it streams

    def _style(self, code: str, text: str) -> str:
        return f"{code}{text}{RESET}" if self.color and text else text

    def _answer(self, code: str, text: str) -> None:
        """A piece of the answer (model output): made safe, then coloured."""
        self._write(self._style(code, self._safe.push(text)))

    def _write(self, text: str) -> None:
        self._clear_progress()
        self.out.write(text)
        self.out.flush()

    def _clear_progress(self) -> None:
        if self._progress_shown:
            self.err.write("\r\x1b[2K")
            self.err.flush()
            self._progress_shown = False

    def handle(self, event: Event) -> None:
        answer = self.answer
        answer.apply(event)
        if isinstance(event, DraftToken):
            n = answer.draft_tokens
            if self.progress and answer.switch is None and event.token_id >= 0 and n % 8 == 0:
                self.err.write(f"\r\x1b[2K{self._style(DIM, f'drafting… {n} tokens')}")
                self.err.flush()
                self._progress_shown = True
        elif isinstance(event, DraftScored) and answer.switch is None:
            self._print_drafter(answer.confirmed)
        elif isinstance(event, SwitchFound):
            # The kept text is exactly the answer's drafter span; print what is missing.
            self._print_drafter(event.kept_text)
            self._printed = len(event.kept_text)
            self._write(self._style(MARKER, SWITCH_MARK))
        elif isinstance(event, Handover):
            if event.reason not in ("start", "base_declined"):
                mark = SWITCH_MARK if event.to_model == "base" else TO_DRAFTER_MARK
                self._write(self._style(MARKER, mark))
        elif isinstance(event, WordsKept):
            self._answer(DRAFTER, event.text)
        elif isinstance(event, BaseToken):
            self._answer(BASE, event.text)
        elif isinstance(event, PhaseChanged) and event.phase == "continuing":
            self._clear_progress()
        elif isinstance(event, Finished):
            self._finish(event.trace)

    def _print_drafter(self, text: str) -> None:
        """Draft text is printed as the base model confirms it, never past the switch."""
        if len(text) > self._printed:
            self._answer(DRAFTER, text[self._printed:])
            self._printed = len(text)

    def _finish(self, trace: Trace) -> None:
        mode = mode_named(trace.mode)
        if not self.answer.switched and mode.uses(DRAFTER_ROLE) and not mode.hands_over:
            # Drafter-only answers (or one stopped while drafting) were never checked.
            self._print_drafter(trace.answer)
        self._write(self._safe.finish() + "\n")
        if trace.stop_reason == "cancelled":
            self._write(self._style(DIM, "[stopped]") + "\n")
        elif trace.stop_reason in SERVER_STOPS:
            self._write(self._style(DIM, "[the model server failed: the answer stops here]") + "\n")
        elif trace.stop_reason == "repetition":
            self._write(self._style(DIM, f"[stopped: the answer began repeating itself "
                                         f"(--repetition-stop {trace.settings.repetition_stop})]") + "\n")
        discarded = trace.discarded_draft
        if discarded.strip():
            self._write(self._style(DIM, "discarded draft: ")
                        + self._style(DIM_STRIKE, terminal_safe(discarded.strip())) + "\n")
        self._write(self._style(DIM, terminal_safe(summary_line(trace), one_line=True)) + "\n")


def summary_line(trace: Trace) -> str:
    """One line: where the switch fell, who wrote how much, time and speed per phase."""
    t, c = trace.timings, trace.counts
    parts: list[str] = []
    switch = describe_switch(trace) or describe_handovers(trace)
    if switch is not None:
        parts.append(switch)
    words = []
    mode = mode_named(trace.mode)
    if mode.uses(DRAFTER_ROLE):
        words.append(f"drafter {c.get('draft_tokens', 0)} tok")
    if mode.uses(BASE_ROLE):
        words.append(f"base {c.get('base_tokens', 0)} tok")
    parts.append(", ".join(words))
    for label, key, count in (("draft", "draft_s", c.get("draft_tokens", 0)),
                              ("check", "score_s", c.get("draft_tokens_scored", 0)),
                              ("continue", "continue_s", c.get("base_tokens", 0))):
        if key in t and count:
            parts.append(f"{label} {t[key]:.2f}s ({count / max(t[key], 1e-9):.0f} tok/s)")
    if mode.hands_over and c.get("probes"):  # the base model asked at word boundaries
        parts.insert(-1 if "continue_s" in t else len(parts),
                     f"check {t.get('score_s', 0.0):.2f}s ({c['probes']} word boundaries)")
    parts.append(f"total {t.get('total_s', 0.0):.2f}s")
    if trace.stop_reason:
        parts.append(f"stop: {trace.stop_reason}")
    if trace.near_ties or trace.continuation_near_ties:
        parts.append(f"near ties: {len(trace.near_ties)} window, {len(trace.continuation_near_ties)} token")
    return " · ".join(parts)
