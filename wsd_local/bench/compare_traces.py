"""Compare two folders of traces by behaviour: did a change move any answer?

    wsd bench --save-traces before/ ...     # on the old code
    wsd bench --save-traces after/ ...      # on the new code
    python -m wsd_local.bench.compare_traces before/ after/

Every field that describes what the models did is compared (answer, spans, draft and
continuation tokens with their log-probabilities, switch, stop reason, counts);
timings, creation time, file paths and the format version are not. Traces of any
format version compare (each is read with `Trace.from_json`). Exit code 1 when any
trace differs.

    python -m wsd_local.bench.compare_traces --where native/ portable/

also says, for each trace that differs, where the two answers first part and the margin
the traces record there, and counts the switch indices, kept drafts and answers that
differ (two builds of llama.cpp: docs/BENCHMARKS.md, "Native vs generic kernels").
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from ..trace import Trace
from .partings import parting

IGNORED = {"timings", "created_at", "format_version"}


def behaviour(trace: Trace) -> dict[str, Any]:
    data = trace.to_dict()
    for key in IGNORED:
        data.pop(key, None)
    for identity in data.get("models", {}).values():
        identity.pop("path", None)  # the same file may live in another virtual environment
    return data


def differences(a: Trace, b: Trace) -> list[str]:
    left, right = behaviour(a), behaviour(b)
    return sorted(k for k in set(left) | set(right) if left.get(k) != right.get(k))


def compare_folders(before: Path, after: Path) -> list[str]:
    """One line per trace that differs or is missing on one side."""
    problems = []
    names = sorted({p.name for p in before.glob("*.json")} | {p.name for p in after.glob("*.json")})
    for name in names:
        a, b = before / name, after / name
        if not (a.exists() and b.exists()):
            problems.append(f"{name}: only in {before if a.exists() else after}")
            continue
        diff = differences(Trace.from_json(a.read_text(encoding="utf-8")),
                           Trace.from_json(b.read_text(encoding="utf-8")))
        if diff:
            problems.append(f"{name}: {', '.join(diff)} differ")
    return problems


def where_they_part(before: Path, after: Path) -> list[str]:
    """For every trace in both folders whose answer, switch or draft differs: where the two
    first part; then how many switch indices, kept drafts and answers differ."""
    lines, switches, kept, answers, both = [], 0, 0, 0, 0
    for a_path in sorted(before.glob("*.json")):
        b_path = after / a_path.name
        if not b_path.exists():
            continue
        both += 1
        a, b = (Trace.from_json(p.read_text(encoding="utf-8")) for p in (a_path, b_path))
        if not differences(a, b):
            continue
        part = parting(a, b)
        switches, kept, answers = switches + part.switch, kept + part.kept, answers + part.answer
        lines.append(f"{a_path.name}: {part.where}")
    lines.append(f"{both} answers in both: switch index differs in {switches}, kept draft in {kept}, "
                 f"answer in {answers}")
    return lines


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    where = "--where" in args
    args = [a for a in args if a != "--where"]
    if len(args) != 2:
        print("usage: python -m wsd_local.bench.compare_traces [--where] BEFORE_DIR AFTER_DIR", file=sys.stderr)
        return 2
    before, after = Path(args[0]), Path(args[1])
    problems = compare_folders(before, after)
    count = len(list(before.glob("*.json")))
    for line in problems:
        print(line)
    print(f"{count} traces compared: {'all identical' if not problems else f'{len(problems)} differ'}")
    if where:
        for line in where_they_part(before, after):
            print(line)
    return 1 if problems else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
