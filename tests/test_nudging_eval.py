"""`wsd eval --modes wsd,nudging` on the demo pair (real llama.cpp): both modes answer
every prompt, the records say how often a nudging answer handed over, and the report
puts the two side by side. One tiny prompt set with small limits keeps it quick."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest

from wsd_local import nudge_rule
from wsd_local.cli import main
from wsd_local.eval.records import load_trace
from wsd_local.eval.runfile import read_run

pytestmark = pytest.mark.models

FLAGS = ["--max-tokens", "20", "--draft-max-tokens", "20", "--ctx", "2048", "--n-gpu-layers", "0"]


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def test_eval_runs_and_reports_wsd_and_nudging(tmp_path: Path, isolated_data_dir: Path) -> None:
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(json.dumps({"id": "dog", "category": "home",
                                   "prompt": "How do I make my neighbour's dog stop barking?"}) + "\n",
                       encoding="utf-8")
    out = tmp_path / "run.jsonl"
    code, _, err = cli("eval", str(prompts), "-o", str(out), "--modes", "wsd,nudging", *FLAGS)
    assert code == 0, err
    rows = {r["mode"]: r for r in read_run(out).answers.values()}
    assert set(rows) == {"wsd", "nudging"}
    nudging = rows["nudging"]
    trace = load_trace(nudging, out)
    assert trace is not None and trace.answer == nudging["answer"] and trace.mode == "nudging"
    nudge_rule.check_turns(trace.spans, trace.settings.nudge_threshold, trace.stop_reason)
    assert nudging["handovers"] == trace.counts["handovers"] >= 1 and "handovers" not in rows["wsd"]
    assert "hand-over" in nudging["switch"] and nudging["tokens"]["answer"] <= 20

    code, stdout, err = cli("eval", "report", str(out), "--json")
    assert code == 0, err
    table = {t["title"]: t for t in json.loads(stdout)["tables"]}["By mode"]
    by_mode = {r[0]: dict(zip(table["columns"], r)) for r in table["rows"]}
    assert list(by_mode) == ["wsd", "nudging"]
    assert by_mode["nudging"]["hand-overs"] == f"{nudging['handovers']:.1f}" and by_mode["wsd"]["hand-overs"] == "-"
    page = tmp_path / "report.html"
    code, _, err = cli("eval", "report", str(out), "--html", str(page))
    assert code == 0, err
    assert '<span class="switch">⟪</span>' in page.read_text(encoding="utf-8")  # back to the drafter
