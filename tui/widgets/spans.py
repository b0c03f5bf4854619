"""Who wrote what: the two span styles, the switch marker, and the legend.

Colour-blind-safe (the Okabe–Ito blue/orange pair) and never colour alone: the
drafter's span is underlined, the switch point carries a `⟫` marker, and the draft the
base model did not keep is struck through in a block of its own.
"""

from __future__ import annotations

from rich.style import Style
from rich.text import Text

DRAFTER_COLOR = "#56b4e9"
BASE_COLOR = "#e69f00"

DRAFTER_STYLE = Style(color=DRAFTER_COLOR, underline=True)
BASE_STYLE = Style(color=BASE_COLOR)
MARKER_STYLE = Style(color="#000000", bgcolor=BASE_COLOR, bold=True)
DISCARDED_STYLE = Style(color="#8a8a8a", strike=True)
DISCARDED_LABEL_STYLE = Style(color="#8a8a8a", italic=True)

SWITCH_MARKER = "⟫"
CURSOR = "▍"

STYLES = {"drafter": DRAFTER_STYLE, "base": BASE_STYLE}


def legend(drafter: str | None, base: str | None) -> Text:
    """One line naming the two models in their styles, and the switch marker."""
    text = Text()
    text.append("drafter ", style="dim")
    text.append(drafter or "(not loaded)", style=DRAFTER_STYLE)
    text.append("   ")
    text.append(SWITCH_MARKER, style=MARKER_STYLE)
    text.append(" switch   ", style="dim")
    text.append("base ", style="dim")
    text.append(base or "(not loaded)", style=BASE_STYLE)
    return text


def span_text(segments: list[tuple[str, str]], *, marker_after_drafter: bool) -> Text:
    """The answer body: each (model, text) segment in its style, with the switch marker
    between the drafter's span and the base model's."""
    text = Text()
    placed = False
    for i, (model, piece) in enumerate(segments):
        if model == "base" and marker_after_drafter and not placed:
            text.append(SWITCH_MARKER, style=MARKER_STYLE)
            placed = True
        text.append(piece, style=STYLES.get(model, ""))
    if marker_after_drafter and not placed:  # switch found, the base model has not written yet
        text.append(SWITCH_MARKER, style=MARKER_STYLE)
    return text
