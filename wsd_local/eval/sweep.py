"""The settings study: where the switch falls for every (γ, w), without decoding.

A paper-mode answer stores the base model's probability of every draft token, so the
switch rule (`switch.switch_index`) can be applied again for any threshold and window.
Online `wsd` answers stop scoring at their switch, so their probabilities past it are
unknown: the sweep reads paper rows only (`--add-paper` makes them).

What the sweep cannot know without decoding is the continuation: the kept share it
reports is the share of the *draft* kept. `--rerun` re-decodes the continuation for
chosen cells (`Engine.rerun_from`: the stored draft and scores, the base model writes
from the cell's switch point) into a run file of its own, which `wsd eval report` reads.
"""

from __future__ import annotations

import dataclasses
import json
import math
import statistics
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..answer import LiveAnswer
from ..settings import RuntimeSettings
from ..errors import ConfigError
from ..modes import PAPER_MODE
from ..switch import switch_index, window_score
from .records import fingerprint, header_record, load_trace, rerun_record, settings_of
from .runfile import RunContents, RunFileRefused, RunWriter, read_run
from .stats import Table, table_markdown

Cell = tuple[float, int]  # (γ, w)
#: The sweep reads complete drafts, checked in one pass: paper mode's answers.
PAPER = PAPER_MODE.name


@dataclass
class SweepRow:
    """One paper answer: its draft-token probabilities and where each cell switches."""

    source: dict[str, Any]
    probs: list[float]
    positions: dict[Cell, int] = field(default_factory=dict)  # k per cell
    fired: dict[Cell, bool] = field(default_factory=dict)


@dataclass
class SweepResult:
    run_path: Path
    run: str
    header: dict[str, Any]
    thresholds: list[float]
    windows: list[int]
    rows: list[SweepRow]
    empty_drafts: int  # paper answers whose draft was empty (nothing to switch in)
    missing_traces: int
    own_matches: int  # answers whose stored switch equals the rule at the run's (γ, w)

    @property
    def own_cell(self) -> Cell:
        s = self.header["settings"]
        return (float(s["threshold"]), int(s["window"]))

    def kept(self, cell: Cell) -> list[int]:
        return [row.positions[cell] + 1 for row in self.rows]

    def mean_kept(self, cell: Cell) -> float:
        return statistics.mean(self.kept(cell)) if self.rows else math.nan

    def fired_rate(self, cell: Cell) -> float:
        return sum(row.fired[cell] for row in self.rows) / len(self.rows) if self.rows else math.nan

    def draft_share(self, cell: Cell) -> float:
        shares = [(row.positions[cell] + 1) / len(row.probs) for row in self.rows]
        return statistics.mean(shares) if shares else math.nan

    # -- rendering ----------------------------------------------------------------
    def tables(self) -> list[Table]:
        own = self.own_cell

        def grid(title: str, value, fmt: str, note: str = "") -> Table:
            rows = []
            for g in self.thresholds:
                cells = [(fmt.format(value((g, w))) + ("*" if _same(own, (g, w)) else ""))
                         for w in self.windows]
                rows.append([f"{g:g}", *cells])
            return Table(title, ["γ \\ w", *map(str, self.windows)], rows, note)

        marker = f"* = the run's own setting (γ {own[0]:g}, w {own[1]})."
        return [grid("Switch position: mean draft tokens kept", self.mean_kept, "{:.1f}", marker),
                grid("Switch fired", lambda c: 100 * self.fired_rate(c), "{:.0f} %",
                     "share of answers where a window reached γ (else the whole draft is kept)"),
                grid("Kept share of the draft", lambda c: 100 * self.draft_share(c), "{:.0f} %",
                     "the answer's kept share needs the continuation: see --rerun")]

    def summary(self) -> str:
        lines = [f"Sweep of {self.run_path} (run {self.run}): {len(self.rows)} paper answers"]
        if self.empty_drafts:
            lines.append(f"{self.empty_drafts} answers with an empty draft left out")
        if self.missing_traces:
            lines.append(f"{self.missing_traces} answers left out: their trace files are missing")
        g, w = self.own_cell
        lines.append(f"at the run's own setting (γ {g:g}, w {w}) the recomputed switch equals the stored "
                     f"one for {self.own_matches} of {len(self.rows)} answers")
        return "\n".join(lines)

    def markdown(self) -> str:
        return "\n\n".join([self.summary(), *(table_markdown(t) for t in self.tables())])

    def to_json(self) -> str:
        cells = [{"threshold": g, "window": w, "mean_kept": self.mean_kept((g, w)),
                  "fired_rate": self.fired_rate((g, w)), "draft_share": self.draft_share((g, w)),
                  "positions": {f"{r.source['id']}#{r.source.get('turn', 0)}": r.positions[(g, w)]
                                for r in self.rows}}
                 for g in self.thresholds for w in self.windows]
        return json.dumps({"run": self.run, "answers": len(self.rows), "own": list(self.own_cell),
                           "own_matches": self.own_matches, "cells": cells}, indent=1)


def _same(a: Cell, b: Cell) -> bool:
    return abs(a[0] - b[0]) < 1e-9 and a[1] == b[1]


# -- parsing the grid ----------------------------------------------------------------
def parse_thresholds(text: str) -> list[float]:
    """`0.6:0.95:0.05` (inclusive) or `0.7,0.8,0.9`; each in (0, 1]."""
    try:
        if ":" in text:
            start, stop, step = (float(x) for x in text.split(":"))
            if step <= 0:
                raise ValueError
            count = int(math.floor((stop - start) / step + 1e-9)) + 1
            values = [round(start + i * step, 10) for i in range(max(count, 0))]
        else:
            values = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ConfigError(f"--threshold {text!r} is not a range A:B:STEP or a list",
                          "e.g. 0.6:0.95:0.05 or 0.7,0.8,0.9") from None
    if not values or any(not 0 < v <= 1 for v in values):
        raise ConfigError(f"--threshold {text!r}: thresholds must be in (0, 1]")
    return values


def parse_windows(text: str) -> list[int]:
    """`2,4,6` or `2:10` (inclusive); each >= 1."""
    try:
        if ":" in text:
            start, stop = (int(x) for x in text.split(":"))
            values = list(range(start, stop + 1))
        else:
            values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ConfigError(f"--window {text!r} is not a list or a range A:B", "e.g. 2,4,6,8,10") from None
    if not values or any(v < 1 for v in values):
        raise ConfigError(f"--window {text!r}: windows must be whole numbers >= 1")
    return values


def parse_cells(text: str) -> list[Cell]:
    """`0.7/6,0.9/4`: cells to re-run."""
    cells = []
    for part in text.split(","):
        if not part.strip():
            continue
        try:
            g, w = part.split("/")
            cell = (float(g), int(w))
        except ValueError:
            raise ConfigError(f"--rerun {part!r} is not γ/w", "e.g. --rerun 0.7/6,0.9/4") from None
        if not 0 < cell[0] <= 1 or cell[1] < 1:
            raise ConfigError(f"--rerun {part!r}: γ must be in (0, 1] and w >= 1")
        cells.append(cell)
    return cells


# -- the sweep ------------------------------------------------------------------------
def paper_run(contents: RunContents) -> str:
    """The run whose paper answers to sweep: the latest run that has some."""
    with_paper = [fp for fp in contents.headers if contents.rows(fp, PAPER)]
    if not with_paper:
        modes = sorted({r["mode"] for r in contents.answers.values()})
        raise RunFileRefused(
            f"the sweep needs paper-mode answers, and {contents.path} has only {', '.join(modes)}",
            "online wsd answers score the draft only up to their switch; add paper answers with "
            f"`wsd eval sweep {contents.path} --add-paper` (or `wsd eval PROMPTS -o RUN --modes paper`)")
    return contents.latest if contents.latest in with_paper else with_paper[-1]


def sweep_run(contents: RunContents, thresholds: list[float], windows: list[int],
              run: str | None = None) -> SweepResult:
    run = run or paper_run(contents)
    header = contents.headers[run]
    rows: list[SweepRow] = []
    empty = missing = matches = 0
    own_g, own_w = float(header["settings"]["threshold"]), int(header["settings"]["window"])
    cells = [(g, w) for g in thresholds for w in windows]
    for source in sorted(contents.rows(run, PAPER), key=lambda r: (r.get("line", 0), r.get("turn", 0))):
        trace = load_trace(source, contents.path)
        if trace is None:
            missing += 1
            continue
        probs = trace.draft_token_probs
        if not probs:
            empty += 1
            continue
        row = SweepRow(source, probs)
        for g, w in cells:
            k = switch_index(probs, w, g)
            row.positions[(g, w)] = k
            row.fired[(g, w)] = k >= w - 1 and window_score(probs, k, w) >= g
        matches += switch_index(probs, own_w, own_g) == source["switch_index"]
        rows.append(row)
    return SweepResult(contents.path, run, header, thresholds, windows, rows, empty, missing, matches)


def write_outputs(result: SweepResult, html: Path | None, plots_dir: Path | None) -> list[Path]:
    if html is None and plots_dir is None:
        return []
    from . import plots
    from .html import write_page

    folder = plots_dir or html.with_name(html.stem + "_plots")  # type: ignore[union-attr]
    figures = [plots.save(plots.sweep_heatmaps(result), folder, "sweep")]
    written = [p for pair in figures for p in pair]
    if html is not None:
        write_page(html, f"wsd eval sweep · {result.run_path.name}", [result.summary()],
                   result.tables(), [(figures[0], "Switch position and fired rate for each (γ, w)")])
        written.append(html)
    return written


# -- re-running cells ----------------------------------------------------------------------
@dataclass
class RerunSummary:
    output: Path
    todo: int  # re-runs that were not in `output` yet
    written: int
    cancelled: bool
    table: Table | None  # the re-decoded cells, by mode-table columns (None when cancelled)


def rerun_cells(contents: RunContents, result: SweepResult, cells: list[Cell], output: Path,
                runtime: RuntimeSettings, drafter: str | None, base: str | None,
                cancel: threading.Event) -> RerunSummary:
    """Re-decode every swept answer at each cell, into `output` (resumable); setting
    `cancel` stops after the answer in progress (the finished ones are saved)."""
    from ..engine import Engine
    from .progress import answer_label, make_progress
    from .resume import run_models
    from .execute import follow

    header = result.header
    models = run_models({"drafter": drafter, "base": base}, header)
    if [(m["file"], m["size_bytes"]) for m in models.values()] != \
            [(header["models"][r]["file"], header["models"][r]["size_bytes"]) for r in models]:
        raise ConfigError("re-runs need the models the run was made with",
                          "give them with --drafter/--base, or leave those out")
    done = read_run(output)
    todo: list[tuple[Cell, str, Any, SweepRow]] = []
    new_headers = []
    for g, w in cells:
        settings = settings_of(header, PAPER).with_changes(threshold=g, window=w)
        fp = fingerprint(settings, models)
        if fp not in done.headers:
            record = header_record(fp, settings, models, [PAPER], Path(header["input"]["path"]),
                                   header["input"]["sha256"], {**runtime.to_dict()}, purpose="rerun")
            record["rerun_of"] = result.run
            new_headers.append(record)
        for row in result.rows:
            key = (fp, row.source["id"], PAPER, row.source.get("turn", 0))
            if key not in done.answers:
                todo.append(((g, w), fp, settings, row))
    written = 0
    if todo:
        progress = make_progress()
        engine = Engine.load(models["drafter"]["path"], models["base"]["path"], runtime,
                             roles=("drafter", "base"))
        try:
            with RunWriter(output) as writer:
                for record in new_headers:
                    writer.append(record)
                progress.start(len(todo), 0)
                try:
                    for (g, w), fp, settings, row in todo:
                        if cancel.is_set():
                            break
                        label = answer_label(row.source["id"], f"paper γ{g:g} w{w}",
                                             row.source.get("turn", 0), row.source.get("turns", 1))
                        progress.begin(label)
                        trace = load_trace(row.source, contents.path)
                        assert trace is not None  # swept rows have their trace
                        # The stored draft with the cell's settings: the decoder recomputes
                        # the rule with them and continues from the cell's switch point.
                        at_cell = dataclasses.replace(trace, settings=settings)
                        k = row.positions[(g, w)]
                        start = time.perf_counter()
                        new = follow(engine.rerun_from(at_cell, k, cancel), LiveAnswer(mode=PAPER),
                                     progress)
                        if new is None:
                            break
                        # k is the rule's own switch at this cell, not one chosen by hand.
                        new.forced_switch = None
                        record = rerun_record(fp, row.source, new, time.perf_counter() - start)
                        writer.append(record)
                        written += 1
                        progress.end(label, record)
                finally:
                    progress.close()
        finally:
            engine.close()
    if cancel.is_set():
        return RerunSummary(output, len(todo), written, True, None)
    return RerunSummary(output, len(todo), written, False, _rerun_table(output, header, models, cells))


def _rerun_table(output: Path, header: dict[str, Any], models: dict[str, dict[str, Any]],
                 cells: list[Cell]) -> Table:
    from .stats import mode_table

    fps = {fingerprint(settings_of(header, PAPER).with_changes(threshold=g, window=w), models): (g, w)
           for g, w in cells}
    rows = [r for r in read_run(output).answers.values() if r["run"] in fps]

    def label(row: dict[str, Any]) -> str:
        g, w = fps[row["run"]]
        return f"γ {g:g} / w {w}"

    table = mode_table(rows, label)
    table.title = f"Re-decoded cells ({output})"
    return table


__all__ = ["SweepResult", "SweepRow", "sweep_run", "parse_thresholds", "parse_windows", "parse_cells",
           "rerun_cells", "RerunSummary", "write_outputs", "paper_run"]
