"""The numbers of a run: by mode and by category, as tables (rendered by report/html).

Definitions (every number is recomputable from the run file):
- switch fired: a window reached γ (else the whole draft was kept);
- switch position: draft tokens kept, k + 1, in base tokens, where the switch fired;
- switch in repeat: answers whose switch window repeats earlier draft text (records
  written before the field existed do not say: "-");
- kept share: the share of the answer's tokens written by the drafter;
- tokens by model: written by the drafter, written by the base model, and draft tokens
  the base model scored;
- ms per answer token: decoding time over answer tokens, summed over the answers.
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Sequence

from ..modes import COMPARISON_ORDER, find_mode, names

MODE_ORDER = names(COMPARISON_ORDER)
_STOPS = {"max_tokens": "max", "stop_string": "stop", "eos": "eos", "context_full": "ctx"}


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[Any]]
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"title": self.title, "columns": self.columns, "rows": self.rows, "note": self.note}


def table_markdown(table: Table) -> str:
    def cell(value: Any) -> str:
        return str(value).replace("|", "\\|")

    lines = [f"### {table.title}", "", "| " + " | ".join(map(cell, table.columns)) + " |",
             "|" + "|".join(" --- " for _ in table.columns) + "|"]
    lines += ["| " + " | ".join(map(cell, row)) + " |" for row in table.rows]
    if table.note:
        lines += ["", table.note]
    return "\n".join(lines)


def has_switch(mode: str) -> bool:
    """Answers of `mode` (a name read from a run file) have a switch point."""
    found = find_mode(mode)
    return found is not None and found.switches


@dataclass
class Group:
    """Answers of one label (mode, or mode and run) and maybe one category."""

    label: str
    mode: str
    rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def switch_rows(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if r.get("switch_index") is not None and r["switch_index"] >= 0]

    def fired_rate(self) -> float | None:
        rows = self.switch_rows
        return sum(bool(r["switch_fired"]) for r in rows) / len(rows) if rows else None

    def positions(self) -> list[int]:
        """Draft tokens kept where the switch fired (else the whole draft was kept)."""
        return [r["switch_index"] + 1 for r in self.switch_rows if r["switch_fired"]]

    def kept_shares(self) -> list[float]:
        return [r["kept_share"] for r in self.rows]

    def mean_tokens(self, who: str) -> float:
        return statistics.mean(r["tokens"][who] or 0 for r in self.rows) if self.rows else 0.0

    def ms_per_token(self) -> float | None:
        tokens = sum(r["tokens"]["answer"] for r in self.rows)
        seconds = sum(r["timings"].get("total_s", r["timings"].get("wall_s", 0.0)) for r in self.rows)
        return 1000 * seconds / tokens if tokens else None

    def mean_handovers(self) -> float | None:
        """Nudging: hand-overs per answer (None for the modes that switch at most once)."""
        counts = [r["handovers"] for r in self.rows if r.get("handovers") is not None]
        return statistics.mean(counts) if counts else None

    def in_repeat(self) -> int | None:
        """Answers whose switch window repeats earlier draft text (None: not recorded)."""
        said = [r["switch_in_repeat"] for r in self.switch_rows if r.get("switch_in_repeat") is not None]
        return sum(said) if said else None

    def empty(self) -> int:
        """Answers with no text (e.g. a base model that opens a new turn at once)."""
        return sum(not r["answer"].strip() for r in self.rows)

    def stops(self) -> str:
        counts = Counter(_STOPS.get(r.get("stop_reason", ""), r.get("stop_reason", "?")) for r in self.rows)
        return " ".join(f"{k} {v}" for k, v in counts.most_common())


def mode_key(mode: str) -> int:
    return MODE_ORDER.index(mode) if mode in MODE_ORDER else len(MODE_ORDER)


def groups(rows: Sequence[dict[str, Any]], label_of, by_category: bool = False) -> list[tuple[str, Group]]:
    """(category or "", group) in a stable order: categories as they first appear,
    modes in MODE_ORDER."""
    found: dict[tuple[str, str], Group] = {}
    for row in rows:
        category = (row.get("category") or "-") if by_category else ""
        key = (category, label_of(row))
        found.setdefault(key, Group(label_of(row), row["mode"])).rows.append(row)
    categories = list(dict.fromkeys(c for c, _ in found))
    ordered = sorted(found.items(), key=lambda kv: (categories.index(kv[0][0]), mode_key(kv[1].mode), kv[0][1]))
    return [(category, group) for (category, _), group in ordered]


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.0f} %"


def _num(x: float | None, digits: int = 1) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def _position(group: Group) -> str:
    positions = group.positions()
    if not positions:
        return "-"
    return f"{statistics.mean(positions):.1f} / {statistics.median(positions):g}"


def mode_table(rows: Sequence[dict[str, Any]], label_of) -> Table:
    out = []
    for _, g in groups(rows, label_of):
        switch = has_switch(g.mode)
        in_repeat = g.in_repeat() if switch else None
        out.append([g.label, len(g.rows), g.empty(), _pct(g.fired_rate()) if switch else "-",
                    _position(g) if switch else "-", "-" if in_repeat is None else in_repeat,
                    _pct(statistics.mean(g.kept_shares())) if g.rows else "-",
                    _num(g.mean_tokens("drafter")), _num(g.mean_tokens("base")),
                    _num(g.mean_tokens("scored")) if switch else "-",
                    _num(g.mean_tokens("answer")), _num(g.ms_per_token()), _num(g.mean_handovers()),
                    g.stops()])
    return Table("By mode", ["mode", "answers", "empty", "switch fired",
                             "switch position if fired (mean / median)", "switch in repeat",
                             "kept share", "drafter tok",
                             "base tok", "scored tok", "answer tok", "ms / answer tok", "hand-overs",
                             "stops"], out,
                 "switch position: draft tokens kept (k + 1, in base tokens) where a window "
                 "reached γ; switch in repeat: answers whose switch window repeats earlier draft text; "
                 "kept share: the drafter's share of the answer's tokens; tokens are means "
                 "per answer; ms / answer tok: decoding time over answer tokens, all answers; empty: "
                 "answers with no text; hand-overs: nudging's turns passing between the models, mean per "
                 "answer.")


def category_table(rows: Sequence[dict[str, Any]], label_of) -> Table:
    out = []
    for category, g in groups(rows, label_of, by_category=True):
        switch = has_switch(g.mode)
        out.append([category, g.label, len(g.rows), g.empty(), _pct(g.fired_rate()) if switch else "-",
                    _position(g) if switch else "-",
                    _pct(statistics.mean(g.kept_shares())) if g.rows else "-",
                    _num(g.mean_tokens("answer")), _num(g.ms_per_token())])
    return Table("By category", ["category", "mode", "answers", "empty", "switch fired",
                                 "switch position if fired (mean / median)", "kept share", "answer tok",
                                 "ms / answer tok"], out)


def per_answer_ms(rows: Sequence[dict[str, Any]]) -> list[float]:
    return [1000 * r["timings"].get("total_s", 0.0) / r["tokens"]["answer"]
            for r in rows if r["tokens"]["answer"]]


__all__ = ["Table", "table_markdown", "has_switch", "Group", "groups", "mode_table", "category_table", "per_answer_ms", "MODE_ORDER",
           "mode_key"]
