"""Who wrote what: the two span styles, the switch marker, and the legend.

Text from the models and model names pass through `terminal_safe` here, where every
view of an answer is built: a Rich `Text` is not markup, but control characters in it
would reach the terminal as they are.

Colour-blind-safe (the Okabe–Ito blue/orange pair) and never colour alone: the
drafter's span is underlined, the switch point carries a `⟫` marker, and the draft the
base model did not keep is struck through in a block of its own. Nudging answers take
turns: `⟫` where the base model takes over, `⟪` where the drafter does, and the
drafter's words still being checked are dimmed.
"""

from __future__ import annotations

from rich.style import Style
from rich.text import Text

from wsd_local.answer import LiveAnswer
from wsd_local.modes import mode_named
from wsd_local.terminal_text import terminal_safe

DRAFTER_COLOR = "#56b4e9"
BASE_COLOR = "#e69f00"

DRAFTER_STYLE = Style(color=DRAFTER_COLOR, underline=True)
BASE_STYLE = Style(color=BASE_COLOR)
MARKER_STYLE = Style(color="#000000", bgcolor=BASE_COLOR, bold=True)
DISCARDED_STYLE = Style(color="#8a8a8a", strike=True)
DISCARDED_LABEL_STYLE = Style(color="#8a8a8a", italic=True)
PENDING_STYLE = Style(color=DRAFTER_COLOR, underline=True, dim=True, italic=True)
TO_DRAFTER_MARKER_STYLE = Style(color="#000000", bgcolor=DRAFTER_COLOR, bold=True)

SWITCH_MARKER = "⟫"
TO_DRAFTER_MARKER = "⟪"
CURSOR = "▍"

STYLES = {"drafter": DRAFTER_STYLE, "base": BASE_STYLE}


def handover_marker(model: str) -> tuple[str, Style]:
    """The marker (and its style) where `model` takes the turn: ⟫ the base model, ⟪ the drafter."""
    if model == "base":
        return SWITCH_MARKER, MARKER_STYLE
    return TO_DRAFTER_MARKER, TO_DRAFTER_MARKER_STYLE


def legend(drafter: str | None, base: str | None, handovers: bool = False) -> Text:
    """One line naming the two models in their styles, and the switch marker (with
    `handovers`, also nudging's marker for the drafter taking the turn back)."""
    text = Text()
    text.append("drafter ", style="dim")
    text.append(terminal_safe(drafter, one_line=True) if drafter else "(not loaded)", style=DRAFTER_STYLE)
    text.append("   ")
    text.append(SWITCH_MARKER, style=MARKER_STYLE)
    text.append(" base takes over   " if handovers else " switch   ", style="dim")
    if handovers:
        text.append(TO_DRAFTER_MARKER, style=TO_DRAFTER_MARKER_STYLE)
        text.append(" drafter takes over   ", style="dim")
    text.append("base ", style="dim")
    text.append(terminal_safe(base, one_line=True) if base else "(not loaded)", style=BASE_STYLE)
    return text


def answer_body(live: LiveAnswer, streaming: bool) -> Text:
    """An answer so far in the span styles (the chat's answers and compare's columns):
    the switch marker, or in nudging a marker at each hand-over and, while `streaming`,
    the drafter's words being checked."""
    return span_text([(s.model, s.text) for s in live.spans()], marker_after_drafter=live.switched,
                     handovers=mode_named(live.mode).hands_over, pending=live.pending if streaming else "")


def span_text(segments: list[tuple[str, str]], *, marker_after_drafter: bool,
              handovers: bool = False, pending: str = "") -> Text:
    """The answer body: each (model, text) segment in its style, with the switch marker
    between the drafter's span and the base model's; with `handovers` (nudging) a marker
    wherever the writer changes, and `pending` (the drafter's words being checked)
    dimmed at the end."""
    if handovers:
        return _turns_text(segments, pending)
    text = Text()
    placed = False
    for i, (model, piece) in enumerate(segments):
        if model == "base" and marker_after_drafter and not placed:
            text.append(SWITCH_MARKER, style=MARKER_STYLE)
            placed = True
        text.append(terminal_safe(piece), style=STYLES.get(model, ""))
    if marker_after_drafter and not placed:  # switch found, the base model has not written yet
        text.append(SWITCH_MARKER, style=MARKER_STYLE)
    return text


def _turns_text(segments: list[tuple[str, str]], pending: str) -> Text:
    text = Text()
    previous = None
    for model, piece in segments:
        if previous is not None and model != previous:
            text.append(*handover_marker(model))
        text.append(terminal_safe(piece), style=STYLES.get(model, ""))
        previous = model
    if pending:
        if previous == "base":
            text.append(*handover_marker("drafter"))
        text.append(terminal_safe(pending), style=PENDING_STYLE)
    return text
