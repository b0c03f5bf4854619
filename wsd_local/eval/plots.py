"""The pictures of a run (matplotlib, the optional extra `wsd-local[eval]`).

Every figure is saved as PNG (for the HTML page) and SVG (for papers and slides).
The Agg backend draws without a display, so this works over SSH and in CI.
Colours follow the CLI: drafter blue, base model orange; the two weak-to-strong modes
get their own hues.
"""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import UsageError
from ..modes import find_mode
from ..switch import window_scores
from .stats import per_answer_ms

if TYPE_CHECKING:
    from .report import Report
    from .sweep import SweepResult

class PlotsUnavailable(UsageError):
    """matplotlib is not installed."""


def pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise PlotsUnavailable("plots need matplotlib, which is not installed",
                               "pip install 'wsd-local[eval]'") from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def save(fig: Any, folder: Path, name: str) -> tuple[Path, Path]:
    """Write `name.png` and `name.svg`; returns both paths."""
    plt = pyplot()
    folder.mkdir(parents=True, exist_ok=True)
    png, svg = folder / f"{name}.png", folder / f"{name}.svg"
    fig.savefig(png, dpi=120, bbox_inches="tight")
    fig.savefig(svg, bbox_inches="tight")
    plt.close(fig)
    return png, svg


def _color(label: str) -> str:
    mode = find_mode(label.split()[0])
    return mode.color if mode is not None else "#555555"


def switch_histogram(report: "Report") -> Any:
    """Where the switch fell: draft tokens kept, and the drafter's share of the answer."""
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    groups = [(label, rows) for label, rows in report.switch_groups() if rows]
    positions_all = [r["switch_index"] + 1 for _, rows in groups for r in rows]
    top = max(positions_all, default=1)
    bins = _bins(top)
    for i, (label, rows) in enumerate(groups):
        fired = [r["switch_index"] + 1 for r in rows if r["switch_fired"]]
        kept_all = sum(not r["switch_fired"] for r in rows)
        # Online and paper switches agree on greedy runs: line styles keep both visible.
        style = dict(histtype="step", color=_color(label), linewidth=2.4 - 0.6 * (i % 3),
                     linestyle=("-", "--", ":")[i % 3])
        left.hist(fired, bins=bins, label=f"{label}: {len(fired)} switched, {kept_all} kept the whole draft",
                  **style)
        right.hist([r["kept_share"] for r in rows], bins=[j / 20 for j in range(21)], label=label, **style)
    left.set(xlabel="switch position (draft tokens kept, k + 1)", ylabel="answers",
             title="Switch positions (switch fired)")
    right.set(xlabel="kept share of the answer (drafter's tokens)", ylabel="answers",
              title="Kept share of the answer", xlim=(0, 1))
    from matplotlib.ticker import MaxNLocator

    for ax in (left, right):
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _bins(top: int) -> list[float]:
    width = max(1, math.ceil(top / 40))
    return [i * width + 0.5 for i in range(top // width + 2)]


def window_curves(report: "Report") -> Any:
    """g_j of every answer against the draft position, with γ: where each curve first
    reaches γ is its switch point (online answers stop scoring there)."""
    plt = pyplot()
    groups = [(label, rows) for label, rows in report.switch_groups() if rows]
    fig, axes = plt.subplots(1, max(1, len(groups)), figsize=(5.2 * max(1, len(groups)), 3.8),
                             squeeze=False)
    for ax, (label, rows) in zip(axes[0], groups):
        thresholds = set()
        for row in rows:
            trace = report.trace(row)
            if trace is None or not trace.draft_tokens:
                continue
            scores = window_scores(trace.draft_token_probs, trace.window)
            xs = list(range(len(scores)))
            ax.plot(xs, scores, color=_color(label), alpha=0.25, linewidth=0.8)
            k = trace.switch_index
            if trace.switch_fired and k is not None and 0 <= k < len(scores):
                ax.plot([k], [scores[k]], "o", color=_color(label), markersize=3)
            thresholds.add(trace.threshold)
        for g in sorted(thresholds):
            ax.axhline(g, color="black", linestyle="--", linewidth=1, label=f"γ = {g:g}")
        ax.set(xlabel="draft token j (base tokens)", ylabel="window score g_j", ylim=(0, 1.02),
               title=f"Window scores · {label} ({len(rows)} answers)")
        ax.grid(alpha=0.3)
        if thresholds:
            ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def time_per_token(report: "Report") -> Any:
    """Milliseconds per answer token by mode: each answer a dot, the overall rate a bar."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    rng = random.Random(0)  # jitter only; fixed so the picture is reproducible
    labels = report.labels()
    for i, label in enumerate(labels):
        rows = report.rows_of(label)
        tokens = sum(r["tokens"]["answer"] for r in rows)
        seconds = sum(r["timings"].get("total_s", 0.0) for r in rows)
        if tokens:
            ax.bar(i, 1000 * seconds / tokens, color=_color(label), alpha=0.35, width=0.6)
        values = per_answer_ms(rows)
        ax.scatter([i + rng.uniform(-0.2, 0.2) for _ in values], values, s=8, color=_color(label))
    ax.set_xticks(range(len(labels)), labels)
    ax.set(ylabel="ms per answer token", title="Time per answer token (bar: all answers; dots: each)")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def sweep_heatmaps(result: "SweepResult") -> Any:
    """Mean switch position and fired rate over the (γ, w) grid, the run's own cell boxed."""
    plt = pyplot()
    gs, ws = result.thresholds, result.windows
    fig, axes = plt.subplots(1, 2, figsize=(2 * (1.8 + 0.55 * len(ws)), 1.6 + 0.36 * len(gs)))
    panels = [("mean draft tokens kept", [[result.mean_kept((g, w)) for w in ws] for g in gs], "{:.0f}", "viridis"),
              ("switch fired (%)", [[100 * result.fired_rate((g, w)) for w in ws] for g in gs], "{:.0f}", "magma")]
    own = result.own_cell
    for ax, (title, grid, fmt, cmap) in zip(axes, panels):
        image = ax.imshow(grid, aspect="auto", cmap=cmap, origin="upper")
        ax.set_xticks(range(len(ws)), [str(w) for w in ws])
        ax.set_yticks(range(len(gs)), [f"{g:g}" for g in gs])
        ax.set(xlabel="window w", ylabel="threshold γ", title=title)
        finite = [v for line in grid for v in line if not math.isnan(v)]
        middle = (min(finite) + max(finite)) / 2 if finite else 0
        for i, line in enumerate(grid):
            for j, value in enumerate(line):
                if not math.isnan(value):
                    ax.text(j, i, fmt.format(value), ha="center", va="center", fontsize=7,
                            color="white" if value < middle else "black")
        for i, g in enumerate(gs):
            for j, w in enumerate(ws):
                if abs(g - own[0]) < 1e-9 and w == own[1]:
                    ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="red",
                                               linewidth=2))
        fig.colorbar(image, ax=ax, shrink=0.8)
    fig.suptitle(f"Settings study: {len(result.rows)} paper answers (red box: the run's γ, w)", fontsize=10)
    fig.tight_layout()
    return fig


def report_figures(report: "Report", folder: Path) -> list[tuple[tuple[Path, Path], str]]:
    """Every figure of the report, saved; (paths, caption) each."""
    figures = []
    if report.has_switch_rows():
        figures.append((save(switch_histogram(report), folder, "switch_positions"),
                        "Where the switch fell: draft tokens kept, and the drafter's share of the answer"))
        figures.append((save(window_curves(report), folder, "window_scores"),
                        "Window scores g_j of every answer against γ"))
    figures.append((save(time_per_token(report), folder, "time_per_token"),
                    "Time per answer token by mode"))
    if report.sweep is not None:
        figures.append((save(sweep_heatmaps(report.sweep), folder, "sweep"),
                        "Settings study: where the switch falls for other γ and w"))
    return figures


__all__ = ["pyplot", "save", "switch_histogram", "window_curves", "time_per_token", "sweep_heatmaps",
           "report_figures", "PlotsUnavailable"]
