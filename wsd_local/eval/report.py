"""`wsd eval report`: a run's numbers as Markdown (or JSON), plots and an HTML page.

A file can hold several runs (other settings added with --force, or re-runs from the
sweep): each answer is labelled with its mode, plus its run's fingerprint when there is
more than one, and the runs table says how their settings differ.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..modes import PAPER_MODE
from ..trace import Trace
from .records import load_trace
from .runfile import RunContents
from .stats import Table, category_table, has_switch, mode_key, mode_table, table_markdown

#: The grid of the settings study shown in the report (the sweep command takes any).
REPORT_THRESHOLDS = [round(0.5 + 0.05 * i, 2) for i in range(10)]
REPORT_WINDOWS = [1, 2, 4, 6, 8, 10, 12]


def settings_text(settings: dict[str, Any]) -> str:
    s = settings
    sampling = "greedy" if not s.get("temperature") else f"temperature {s['temperature']:g}, top-p {s.get('top_p', 1):g}"
    system = " · system prompt" if s.get("system") else ""
    repetition = f" · repetition stop {s['repetition_stop']}" if s.get("repetition_stop") else ""
    skip = " · switch skips repeats" if s.get("switch_skip_repeats") else ""
    return (f"γ {s['threshold']:g} · w {s['window']} · max {s['max_tokens']} · draft max "
            f"{s['draft_max_tokens']} · chunk {s['chunk_tokens']} · {sampling}{system}{repetition}{skip}")


@dataclass
class Report:
    contents: RunContents
    sweep: Any = None  # SweepResult over the paper answers, when there are some
    _traces: dict[int, Trace | None] = field(default_factory=dict, repr=False)

    @property
    def runs(self) -> list[str]:
        """Runs with answers, in the file's order."""
        with_rows = {r["run"] for r in self.contents.answers.values()}
        return [fp for fp in self.contents.headers if fp in with_rows]

    def label_of(self, row: dict[str, Any]) -> str:
        return row["mode"] if len(self.runs) == 1 else f"{row['mode']} [{row['run'][:6]}]"

    def labels(self) -> list[str]:
        found = {self.label_of(r): r["mode"] for r in self.contents.answers.values()}
        return sorted(found, key=lambda label: (mode_key(found[label]), label))

    def rows_of(self, label: str) -> list[dict[str, Any]]:
        return [r for r in self.contents.answers.values() if self.label_of(r) == label]

    def switch_groups(self) -> list[tuple[str, list[dict[str, Any]]]]:
        return [(label, [r for r in self.rows_of(label)
                         if r.get("switch_index") is not None and r["switch_index"] >= 0])
                for label in self.labels() if has_switch(label.split()[0])]

    def has_switch_rows(self) -> bool:
        return any(rows for _, rows in self.switch_groups())

    def trace(self, row: dict[str, Any]) -> Trace | None:
        key = id(row)
        if key not in self._traces:
            self._traces[key] = load_trace(row, self.contents.path)
        return self._traces[key]

    # -- tables ---------------------------------------------------------------------
    def runs_table(self) -> Table:
        rows = []
        for fp in self.runs:
            header = self.contents.headers[fp]
            models = header.get("models", {})
            rows.append([fp, header.get("purpose", "run"), len(self.contents.rows(fp)),
                         settings_text(header["settings"]), models.get("drafter", {}).get("name", "-"),
                         models.get("base", {}).get("name", "-")])
        return Table("Runs", ["run", "kind", "answers", "settings", "drafter", "base"], rows)

    def tables(self) -> list[Table]:
        rows = list(self.contents.answers.values())
        return [self.runs_table(), mode_table(rows, self.label_of), category_table(rows, self.label_of)]

    def summary(self) -> str:
        answers = list(self.contents.answers.values())
        prompts = len({(r["run"], r["id"]) for r in answers})
        lines = [f"{self.contents.path}: {len(answers)} answers to {prompts} prompts"]
        if self.contents.errors:
            lines.append(f"{len(self.contents.errors)} answers failed (see the error lines; a resume "
                         "tries them again)")
        if self.sweep is None:
            lines.append("No paper-mode answers: no settings study (`wsd eval sweep RUN --add-paper`).")
        else:
            lines.append(self.sweep.summary())
        return "\n".join(lines)

    def answers_html(self) -> str:
        """Every prompt with its answers side by side (collapsed), spans and switch shown
        as the chat shows them (`LiveAnswer`, `describe_switch`)."""
        from html import escape

        from ..answer import LiveAnswer, describe_handovers, describe_switch
        from .html import answer_html

        by_prompt: dict[tuple[str, int], list[dict[str, Any]]] = {}
        for row in sorted(self.contents.answers.values(), key=lambda r: (r.get("line", 0), r.get("turn", 0))):
            by_prompt.setdefault((row["id"], row.get("turn", 0)), []).append(row)
        parts = ["<h2>Answers</h2>"]
        for (ident, turn), rows in by_prompt.items():
            first = rows[0]
            turn_text = f" · turn {turn + 1}/{first['turns']}" if first.get("turns", 1) > 1 else ""
            answers = []
            for row in sorted(rows, key=lambda r: (mode_key(r["mode"]), self.label_of(r))):
                trace = self.trace(row)
                if trace is None:
                    answers.append(answer_html(self.label_of(row), [("base", row["answer"])], "", row.get("switch")))
                    continue
                live = LiveAnswer.from_trace(trace)
                answers.append(answer_html(self.label_of(row), [(s.model, s.text) for s in live.spans()],
                                           live.discarded, describe_switch(trace) or describe_handovers(trace)))
            parts.append(f"<details><summary>{escape(ident)}{turn_text} · {escape(first.get('category') or '-')}"
                         f" · {escape(first['prompt'][:120])}</summary>{''.join(answers)}</details>")
        return "\n".join(parts)

    def markdown(self) -> str:
        return "\n\n".join([self.summary(), *(table_markdown(t) for t in self.tables())])

    def to_json(self) -> str:
        return json.dumps({"run_file": str(self.contents.path), "summary": self.summary(),
                           "tables": [t.to_dict() for t in self.tables()]}, indent=1, ensure_ascii=False)


def build_report(contents: RunContents) -> Report:
    from .sweep import sweep_run

    report = Report(contents)
    if contents.rows(mode=PAPER_MODE.name):  # the study reads paper-mode drafts
        report.sweep = sweep_run(contents, REPORT_THRESHOLDS, REPORT_WINDOWS)
    return report


def write_outputs(report: Report, html: Path | None, plots_dir: Path | None) -> list[Path]:
    """Plots (PNG + SVG) to `plots_dir` (default with --html: next to the page), and
    the page; returns the files written."""
    if html is None and plots_dir is None:
        return []
    from .html import write_page
    from .plots import report_figures

    folder = plots_dir or html.with_name(html.stem + "_plots")  # type: ignore[union-attr]
    figures = report_figures(report, folder)
    written = [p for (png, svg), _ in figures for p in (png, svg)]
    if html is not None:
        tables = report.tables() + (report.sweep.tables()[:2] if report.sweep is not None else [])
        write_page(html, f"wsd eval · {report.contents.path.name}", [report.summary()], tables, figures,
                   report.answers_html())
        written.append(html)
    return written


__all__ = ["Report", "build_report", "write_outputs", "table_markdown", "settings_text"]
