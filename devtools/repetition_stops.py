"""Where the repetition stop ended answers, in two sets of the same answers (two versions
of the stop, or the stop off and on):

    wsd bench --repetition-stop 3 --save-traces before/ ...     # one version
    wsd bench --repetition-stop 3 --save-traces after/ ...      # the other
    python -m devtools.repetition_stops before/ after/
    python -m devtools.repetition_stops before.jsonl after.jsonl   # `wsd eval` runs

A side is a folder of traces (`wsd bench --save-traces`) or a `wsd eval` run file (its
first run). Every answer that a repetition stop ended on either side is listed: its
stop and answer tokens on each side, whether the earlier stop's answer is the start of
the other (greedy decoding writes the same text until a stop), and the last characters
before the stop, to read what repeated.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from wsd_local.trace import Trace

#: Characters shown before a stop.
TAIL_CHARS = 160


@dataclass(frozen=True)
class Ending:
    stop: str
    tokens: int  # answer tokens
    answer: str


def endings(source: Path) -> dict[str, Ending]:
    """The answers of a traces folder or a run file, by name."""
    if source.is_dir():
        traces = {p.stem: Trace.from_json(p.read_text(encoding="utf-8")) for p in sorted(source.glob("*.json"))}
    else:
        from wsd_local.eval.records import load_trace
        from wsd_local.eval.runfile import read_run

        contents = read_run(source)
        first = next(iter(contents.headers), None)
        traces = {}
        for (run, ident, mode, turn), row in contents.answers.items():
            trace = load_trace(row, contents.path) if run == first else None
            if trace is not None:
                traces[f"{ident}-{mode}-{turn + 1}"] = trace
    return {name: Ending(t.stop_reason, t.answer_tokens, t.answer) for name, t in traces.items()}


def report(before: dict[str, Ending], after: dict[str, Ending]) -> list[str]:
    lines = []
    for name in sorted(set(before) & set(after)):
        a, b = before[name], after[name]
        if "repetition" not in (a.stop, b.stop):
            continue
        shorter, longer = sorted((a.answer, b.answer), key=len)
        same = "same text up to the earlier stop" if longer.startswith(shorter) else "texts differ"
        lines.append(f"{name}: before {a.stop} at {a.tokens} tok · after {b.stop} at {b.tokens} tok · {same}")
        stopped = b if b.stop == "repetition" else a
        tail = stopped.answer[-TAIL_CHARS:].replace("\n", "⏎")
        lines.append(f"    …{tail}")
    for label, side in (("before", before), ("after", after)):
        at = sorted(e.tokens for e in side.values() if e.stop == "repetition")
        lines.append(f"{label}: {len(at)} of {len(side)} answers stopped by repetition"
                     + (f", at answer tokens {', '.join(map(str, at))}" if at else ""))
    return lines


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m devtools.repetition_stops BEFORE AFTER "
              "(trace folders or eval run files)", file=sys.stderr)
        return 2
    for line in report(endings(Path(args[0])), endings(Path(args[1]))):
        print(line)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
