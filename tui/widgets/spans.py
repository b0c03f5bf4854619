"""Who wrote what: the two span styles, the switch marker, and the legend.

Model text and model names pass through `terminal_safe` here: a Rich `Text` is not
markup, but control characters in it would reach the terminal as they are.

Colour-blind-safe (the Okabe–Ito blue/orange pair) and never colour alone: the
drafter's span is underlined, the switch carries a `⟫` marker, the discarded draft is
struck through. Nudging: `⟫` where the base model takes over, `⟪` where the drafter
does, the drafter's words still being checked dimmed.
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


def model_labels(engine: object) -> dict[str, str]:
    """Each role's model as the user reads it; on a server: "Llama-3.1-70B @ gpu-box:8000 (vLLM)"."""
    return {role: ident.label for role, ident in (getattr(engine, "identities", None) or {}).items()}


def legend(drafter: str | None, base: str | None, handovers: bool = False) -> Text:
    """One line naming the two models in their styles, and the switch marker (with
    `handovers`, also nudging's marker for the drafter taking the turn back)."""
    def name(model: str | None) -> str:
        return terminal_safe(model, one_line=True) if model else "(not loaded)"

    parts = [("drafter ", "dim"), (name(drafter), DRAFTER_STYLE), "   ", (SWITCH_MARKER, MARKER_STYLE)]
    if handovers:
        parts += [(" base takes over   ", "dim"), (TO_DRAFTER_MARKER, TO_DRAFTER_MARKER_STYLE),
                  (" drafter takes over   ", "dim")]
    else:
        parts.append((" switch   ", "dim"))
    return Text.assemble(*parts, ("base ", "dim"), (name(base), BASE_STYLE))


def answer_body(live: LiveAnswer, streaming: bool) -> Text:
    """An answer so far in the span styles (the chat's answers and compare's columns),
    with the switch marker between the drafter's span and the base model's; nudging: a
    marker wherever the writer changes and, while `streaming`, the drafter's words
    being checked."""
    if mode_named(live.mode).hands_over:
        return _turns_text(live, live.pending if streaming else "")
    text = Text()
    switched, placed = live.switched, False
    for span in live.spans():
        if span.model == "base" and switched and not placed:
            text.append(SWITCH_MARKER, style=MARKER_STYLE)
            placed = True
        text.append(terminal_safe(span.text), style=STYLES.get(span.model, ""))
    if switched and not placed:  # switch found, the base model has not written yet
        text.append(SWITCH_MARKER, style=MARKER_STYLE)
    return text


def _turns_text(live: LiveAnswer, pending: str) -> Text:
    text = Text()
    previous = None
    for span in live.spans():
        if previous is not None and span.model != previous:
            text.append(*handover_marker(span.model))
        text.append(terminal_safe(span.text), style=STYLES.get(span.model, ""))
        previous = span.model
    if pending:
        if previous == "base":
            text.append(*handover_marker("drafter"))
        text.append(terminal_safe(pending), style=PENDING_STYLE)
    return text
