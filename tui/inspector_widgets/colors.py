"""Probability → colour: a colour-blind-safe sequential scale (viridis) and its legend."""

from __future__ import annotations

import math

from rich.text import Text

#: Ten stops of matplotlib's viridis (dark purple → yellow): perceptually uniform and
#: readable with the common colour-vision deficiencies, unlike a red→green scale.
VIRIDIS: tuple[str, ...] = (
    "#440154", "#482878", "#3e4989", "#31688e", "#26828e",
    "#1f9e89", "#35b779", "#6ece58", "#b5de2b", "#fde725",
)

#: Window-score chart colours: blue below the threshold, orange at or above it
#: (the Okabe–Ito pair, distinguishable without red/green vision).
BELOW_COLOR = "#56b4e9"
ABOVE_COLOR = "#e69f00"
THRESHOLD_COLOR = "#f0f0f0"
SWITCH_COLOR = "#cc79a7"  # reddish purple: the real switch point
WHATIF_COLOR = "#009e73"  # bluish green: the what-if switch point


def prob_bucket(p: float) -> int:
    """The probability's step of the scale; NaN and out-of-range values are clamped."""
    if math.isnan(p) or p <= 0.0:
        return 0
    return min(len(VIRIDIS) - 1, int(min(p, 1.0) * len(VIRIDIS)))


def prob_color(p: float) -> str:
    return VIRIDIS[prob_bucket(p)]


def prob_style(p: float) -> str:
    """Readable text on the probability's colour."""
    bg = prob_color(p)
    return f"{contrast_text(bg)} on {bg}"


def _luminance(hex_color: str) -> float:
    r, g, b = (int(hex_color[i:i + 2], 16) / 255 for i in (1, 3, 5))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_text(bg: str) -> str:
    """Black or white, whichever reads better on `bg`."""
    return "#000000" if _luminance(bg) > 0.45 else "#ffffff"


def legend(switch_markers: bool = True) -> Text:
    """One line: the scale with its bucket bounds, and the markers used in the heatmap
    (the switch and what-if markers only where a view has them: not for nudging turns)."""
    text = Text("p ")
    n = len(VIRIDIS)
    text.append("0 ")
    for i, color in enumerate(VIRIDIS):
        text.append(f"{i / n:.1f}"[1:] + " ", style=prob_style(i / n))
    text.append(" 1   ")
    if switch_markers:
        return text.append_text(Text.assemble(
            ("┃", f"bold {SWITCH_COLOR}"), " switch  ", ("┆", f"bold {WHATIF_COLOR}"), " what-if  ",
            ("discarded", "strike dim"), "  ▫ partial character"))
    return text.append_text(Text.assemble("⟫ the base model takes over  ⟪ the drafter does  ",
                                          ("words not kept", "strike dim")))
