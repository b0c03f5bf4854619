"""Answers in the formats evaluation tools read, one file per mode.

- `alpaca_eval`: a JSON list of `{"instruction", "output", "generator"}` (plus
  `dataset` when the prompt file had that column, as AlpacaEval's own set does), the
  model-outputs file AlpacaEval and similar judges take.
- `mt_bench`: FastChat's model-answer JSONL, `{"question_id", "answer_id", "model_id",
  "choices": [{"index": 0, "turns": [...]}], "tstamp"}`, one line per question with
  every turn answered.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..modes import BASE, DRAFTER, find_mode
from .runfile import RunContents, RunFileRefused, write_json_atomic, write_text_atomic

FORMATS = ("alpaca_eval", "mt_bench")


def generator_name(header: dict[str, Any], mode: str, prefix: str | None = None) -> str:
    if prefix:
        return f"{prefix}-{mode}"
    models = header.get("models", {})
    drafter = models.get("drafter", {}).get("name", "drafter")
    base = models.get("base", {}).get("name", "base")
    found = find_mode(mode)
    alone = found.alone if found is not None else None
    if alone is not None:  # the one model that wrote the answers
        return f"{mode}:{ {DRAFTER: drafter, BASE: base}[alone] }"
    return f"{mode}:{drafter}+{base}"


def export_run(contents: RunContents, run: str, fmt: str, folder: Path,
               prefix: str | None = None) -> list[tuple[Path, int, int]]:
    """Write one file per mode of `run`; returns (path, answers written, prompts left
    out) for each (alpaca_eval takes single-turn prompts only)."""
    if fmt not in FORMATS:
        raise RunFileRefused(f"unknown export format {fmt!r}", "use " + " or ".join(FORMATS))
    header = contents.headers[run]
    stem = contents.path.name.removesuffix(".jsonl")
    written = []
    for mode in _modes(contents, run):
        rows = sorted(contents.rows(run, mode), key=lambda r: (r.get("line", 0), r.get("turn", 0)))
        name = generator_name(header, mode, prefix)
        if fmt == "alpaca_eval":
            path = folder / f"{stem}.{mode}.alpaca_eval.json"
            data, left_out = _alpaca(rows, name)
            write_json_atomic(path, data)
        else:
            path = folder / f"{stem}.{mode}.mt_bench.jsonl"
            lines, left_out = _mt_bench(rows, name)
            write_text_atomic(path, "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines))
            data = lines
        written.append((path, len(data), left_out))
    return written


def _modes(contents: RunContents, run: str) -> list[str]:
    return list(dict.fromkeys(r["mode"] for r in contents.rows(run)))


def _alpaca(rows: list[dict[str, Any]], generator: str) -> tuple[list[dict[str, Any]], int]:
    data, left_out = [], 0
    for row in rows:
        if row.get("turns", 1) > 1:
            left_out += row.get("turn", 0) == 0
            continue
        entry = {"instruction": row["prompt"], "output": row["answer"], "generator": generator}
        if row.get("dataset") is not None:
            entry["dataset"] = row["dataset"]
        data.append(entry)
    return data, left_out


def _mt_bench(rows: list[dict[str, Any]], model_id: str) -> tuple[list[dict[str, Any]], int]:
    by_id: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_id.setdefault(row["id"], []).append(row)
    lines, left_out = [], 0
    for ident, turns in by_id.items():
        turns.sort(key=lambda r: r.get("turn", 0))
        if len(turns) != turns[0].get("turns", 1):
            left_out += 1  # not every turn answered yet
            continue
        question_id: Any = int(ident) if ident.isdigit() else ident
        lines.append({"question_id": question_id, "answer_id": f"{turns[0]['run']}-{ident}",
                      "model_id": model_id, "choices": [{"index": 0, "turns": [r["answer"] for r in turns]}],
                      "tstamp": max(r.get("created_at", 0) for r in turns)})
    return lines, left_out


__all__ = ["FORMATS", "export_run", "generator_name"]
