"""`wsd eval` end to end on the demo models (real llama.cpp): the run file's schema,
resume after a killed run, Ctrl+C, settings refused without --force, the sweep against
the switch rule and a re-decoded cell against a fresh paper run, report plots, exports."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from answer_shapes import assert_same_answer

from wsd_local.answer import describe_switch
from wsd_local.cli import main
from wsd_local.settings import DecodingSettings
from wsd_local.eval.records import load_trace
from wsd_local.eval.runfile import read_run
from wsd_local.eval.sweep import sweep_run
from wsd_local.switch import switch_index

pytestmark = pytest.mark.models

#: Small answers keep the module quick; γ 0.5 lets 16-token drafts switch (on most
#: prompts, on any CPU: test_output_schema needs one switch among the 8 answers).
LIMIT = 16
THRESHOLD = 0.5
RUNTIME = ["--ctx", "2048", "--n-gpu-layers", "0"]
FLAGS = ["--max-tokens", str(LIMIT), "--draft-max-tokens", str(LIMIT), "--threshold", str(THRESHOLD), *RUNTIME]
PROMPTS = "\n".join([
    json.dumps({"id": "wine", "category": "home", "prompt": "How do I get red wine out of a light carpet?"}),
    json.dumps({"id": "hike", "category": "outdoors",
                "prompt": "What should I pack for a three-day hiking trip in autumn?"}),
    '{"id": "broken", "prompt": ',
    json.dumps({"id": "run", "category": "outdoors",
                "turns": ["I want to start running. How should a complete beginner begin?",
                          "I only have twenty minutes on weekdays. How would you change the plan?"]}),
    json.dumps({"id": "wine", "prompt": "A second prompt with the same id"}),
]) + "\n"
ALL_KEYS = {(i, m, t) for m in ("base", "draft", "paper", "wsd")
            for i, t in (("wine", 0), ("hike", 0), ("run", 0), ("run", 1))}


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def answers(path: Path) -> dict[tuple[str, str, int], dict]:
    return {(r["id"], r["mode"], r["turn"]): r for r in read_run(path).answers.values()}


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, isolated_data_dir: Path) -> dict:
    """One uninterrupted run in every mode: the reference the other tests compare with."""
    folder = tmp_path_factory.mktemp("eval")
    prompts = folder / "prompts.jsonl"
    prompts.write_text(PROMPTS, encoding="utf-8")
    out = folder / "run.jsonl"
    code, stdout, stderr = cli("eval", str(prompts), "-o", str(out), "--modes", "base,draft,wsd,paper", *FLAGS)
    assert code == 0, stderr
    return {"folder": folder, "prompts": prompts, "out": out, "stderr": stderr}


def test_output_schema(run: dict) -> None:
    records = lines(run["out"])
    header, rows = records[0], records[1:]
    assert header["type"] == "header" and header["modes"] == ["base", "draft", "wsd", "paper"]
    assert header["settings"]["max_tokens"] == LIMIT and "mode" not in header["settings"]
    assert set(header["models"]) == {"drafter", "base"} and header["input"]["path"] == str(run["prompts"])
    assert {(r["id"], r["mode"], r["turn"]) for r in rows} == ALL_KEYS and len(rows) == len(ALL_KEYS)
    fired = 0
    for r in rows:
        trace = load_trace(r, run["out"])
        trace.check()
        assert r["run"] == header["run"] and r["mode"] == trace.mode
        assert r["answer"] == trace.answer and r["switch_index"] == trace.switch_index
        assert r["switch"] == describe_switch(trace, brief=True)
        assert r["category"] == {"wine": "home"}.get(r["id"], "outdoors")
        assert r["turns"] == (2 if r["id"] == "run" else 1)
        assert r["timings"]["total_s"] > 0 and r["timings"]["wall_s"] >= r["timings"]["total_s"]
        t = r["tokens"]
        if r["mode"] in ("wsd", "paper"):
            assert r["switch_fired"] == trace.switch_fired and t["kept_draft"] == r["switch_index"] + 1
            assert t["answer"] == t["kept_draft"] + trace.counts["base_tokens"]
            assert r["kept_share"] == pytest.approx(t["kept_draft"] / t["answer"], abs=1e-6)
            assert r["kept_chars"] == len(trace.kept_draft)
            fired += r["switch_fired"]
        else:
            assert r["switch_index"] is r["switch_fired"] is r["switch"] is t["kept_draft"] is None
            assert r["kept_share"] == (1.0 if r["mode"] == "draft" else 0.0)
            assert t["answer"] <= LIMIT
    assert fired >= 1, "no window reached the threshold in any of the 8 WSD answers"


def test_malformed_lines_reported_and_skipped(run: dict) -> None:
    assert f"wsd: skipped {run['prompts']}:3: not valid JSON" in run["stderr"]
    assert f"wsd: skipped {run['prompts']}:5: duplicate id 'wine' (first on line 1)" in run["stderr"]


def test_later_turns_follow_the_same_modes_answer(run: dict) -> None:
    rows = answers(run["out"])
    for mode in ("base", "draft", "wsd", "paper"):
        second = load_trace(rows[("run", mode, 1)], run["out"])
        assert second.messages[1] == {"role": "assistant", "content": rows[("run", mode, 0)]["answer"]}
        assert second.messages[2]["content"].startswith("I only have twenty minutes")


def test_same_command_again_does_nothing(run: dict) -> None:
    before = run["out"].read_bytes()
    code, _, err = cli("eval", str(run["prompts"]), "-o", str(run["out"]), *FLAGS)  # modes from the file
    assert code == 0 and "nothing to do: all 16 answers are in" in err
    assert run["out"].read_bytes() == before


def test_other_settings_refused_unless_forced(run: dict, tmp_path: Path) -> None:
    copy = tmp_path / "run.jsonl"
    shutil.copy(run["out"], copy)
    before = copy.read_bytes()
    flags = ["--max-tokens", str(LIMIT + 1)] + FLAGS[2:]
    code, _, err = cli("eval", str(run["prompts"]), "-o", str(copy), *flags)
    assert code == 2 and copy.read_bytes() == before
    error = err.splitlines()[-1]  # after the two skipped-record lines
    assert error.startswith("wsd: error: ") and err.count("error") == 1
    assert f"holds a run with other settings (max-tokens {LIMIT} -> {LIMIT + 1})" in error and "--force" in error
    code, _, err = cli("eval", str(run["prompts"]), "-o", str(copy), "--modes", "base", "--limit", "1",
                       "--force", *flags)
    assert code == 0, err
    contents = read_run(copy)
    assert len(contents.headers) == 2 and len(contents.answers) == len(ALL_KEYS) + 1
    code, report, _ = cli("eval", "report", str(copy))
    assert code == 0 and f"| base [{contents.latest[:6]}] | 1 |" in report


def _start(argv: list[str]) -> subprocess.Popen:
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    return subprocess.Popen([sys.executable, "-m", "wsd_local.cli", *argv], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_answers(proc: subprocess.Popen, path: Path, count: int, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_bytes().count(b"\n") >= 1 + count:
            return
        if proc.poll() is not None:
            raise AssertionError(f"wsd eval ended early: {proc.communicate()[1]}")
        time.sleep(0.05)
    proc.kill()
    raise AssertionError("no answer written in time")


def test_killed_run_resumes_without_decoding_twice(run: dict, tmp_path: Path) -> None:
    out = tmp_path / "killed.jsonl"
    argv = ["eval", str(run["prompts"]), "-o", str(out), "--modes", "wsd", *FLAGS]
    proc = _start(argv)
    _wait_for_answers(proc, out, 1)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    # A crash in the middle of a write leaves a torn last line: add one by hand.
    with open(out, "ab") as f:
        f.write(b'{"type": "answer", "run": "')
    kept = len(read_run(out).answers)
    assert kept >= 1
    code, _, err = cli(*argv)
    assert code == 0, err
    assert "cut off an unfinished last line" in err
    assert f"wsd eval: {4 - kept} answers to write ({kept} already in the file)" in err
    records = lines(out)  # every line whole, one header
    assert [r["type"] for r in records].count("header") == 1
    keys = [(r["id"], r["mode"], r["turn"]) for r in records if r["type"] == "answer"]
    assert len(keys) == len(set(keys)) == 4  # nothing decoded twice
    reference = answers(run["out"])
    for key, row in answers(out).items():
        assert row["answer"] == reference[key]["answer"], key
        assert row["switch_index"] == reference[key]["switch_index"], key


def test_ctrl_c_stops_after_saving_finished_answers(run: dict, tmp_path: Path) -> None:
    out, traces = tmp_path / "stopped.jsonl", tmp_path / "traces"
    proc = _start(["eval", str(run["prompts"]), "-o", str(out), "--modes", "draft,base",
                   "--traces-dir", str(traces), *FLAGS])
    _wait_for_answers(proc, out, 1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "run the same command to resume" in err and "Traceback" not in err
    rows = [r for r in lines(out) if r["type"] == "answer"]
    assert 1 <= len(rows) < 8
    for r in rows:
        assert "trace" not in r and r["stop_reason"] != "cancelled"
        trace = load_trace(r, out)
        assert trace is not None and trace.answer == r["answer"]
        assert (out.parent / r["trace_path"]).is_file()


def test_sweep_recomputes_the_rule_from_stored_probabilities(run: dict) -> None:
    contents = read_run(run["out"])
    thresholds, windows = [0.5, 0.7, 0.8, 0.9], [1, 2, 4, 6, 8]
    result = sweep_run(contents, thresholds, windows)
    paper = [r for r in contents.answers.values() if r["mode"] == "paper"]
    assert len(result.rows) == len(paper) == 4
    for row in result.rows:
        probs = load_trace(row.source, run["out"]).draft_token_probs
        for g in thresholds:
            for w in windows:
                assert row.positions[(g, w)] == switch_index(probs, w, g)
    # At the run's own setting the sweep lands where the decoder switched, in paper mode
    # and in online mode (which scored the draft in chunks, up to its switch), unless a
    # near tie moved the online switch (assert_same_answer says so).
    assert result.own_matches == 4
    rows = answers(run["out"])
    for row in result.rows:
        key = (row.source["id"], row.source["turn"])
        online = load_trace(rows[(key[0], "wsd", key[1])], run["out"])
        paper = load_trace(row.source, run["out"])
        assert row.positions[(THRESHOLD, 6)] == paper.switch_index
        if online.messages == paper.messages:  # a later turn follows its own mode's answer
            assert_same_answer(online, paper, f"{key}: online vs paper")
    code, stdout, _ = cli("eval", "sweep", str(run["out"]), "--threshold", "0.5,0.7,0.8,0.9",
                          "--window", "1,2,4,6,8", "--json")
    assert code == 0
    cells = {(c["threshold"], c["window"]): c for c in json.loads(stdout)["cells"]}
    assert cells[(0.7, 4)]["mean_kept"] == pytest.approx(result.mean_kept((0.7, 4)))


def test_sweep_needs_paper_answers(run: dict, tmp_path: Path) -> None:
    only_wsd = tmp_path / "wsd.jsonl"
    only_wsd.write_text("".join(json.dumps(r) + "\n" for r in lines(run["out"])
                                if r["type"] == "header" or r["mode"] == "wsd"))
    code, _, err = cli("eval", "sweep", str(only_wsd))
    assert code == 2 and err.count("\n") == 1
    assert "the sweep needs paper-mode answers" in err and "--add-paper" in err


def test_add_paper_answers_the_runs_prompts_with_flags_left_out(run: dict, tmp_path: Path) -> None:
    """`wsd eval sweep RUN --add-paper` with no runtime flags (their defaults are None)
    answers in paper mode with the run's settings, into the same file."""
    no_paper = tmp_path / "no_paper.jsonl"
    no_paper.write_text("".join(json.dumps(r) + "\n" for r in lines(run["out"])
                                if r["type"] == "header" or r["mode"] != "paper"))
    code, stdout, err = cli("eval", "sweep", str(no_paper), "--add-paper", "--threshold", str(THRESHOLD),
                            "--window", "6", "--json")
    assert code == 0, err
    assert "usage:" not in err and "Traceback" not in err
    reference, added = answers(run["out"]), answers(no_paper)
    paper = {key: row for key, row in added.items() if key[1] == "paper"}
    assert len(paper) == 4
    for key, row in paper.items():
        assert row["run"] == reference[key]["run"]  # the same run: same settings and models
        assert row["answer"] == reference[key]["answer"], key
    assert json.loads(stdout)["answers"] == 4


def test_rerun_of_a_cell_equals_a_fresh_paper_run(run: dict, demo_engine) -> None:
    code, _, err = cli("eval", "sweep", str(run["out"]), "--threshold", "0.7", "--window", "4",
                       "--rerun", "0.7/4", *RUNTIME)
    assert code == 0, err
    rerun_file = run["out"].with_name("run.rerun.jsonl")
    reruns = answers(rerun_file)
    assert len(reruns) == 4
    contents = read_run(run["out"])
    cell = sweep_run(contents, [0.7], [4])
    for row in cell.rows:
        rerun = reruns[(row.source["id"], "paper", row.source["turn"])]
        assert rerun["switch_index"] == row.positions[(0.7, 4)]
        assert rerun["rerun_of"]["switch_index"] == row.source["switch_index"]
        assert load_trace(rerun, rerun_file).forced_switch is None
    settings = DecodingSettings(mode="paper", threshold=0.7, window=4, max_tokens=LIMIT, draft_max_tokens=LIMIT)
    fresh = demo_engine.run("How do I get red wine out of a light carpet?", settings)
    assert_same_answer(load_trace(reruns[("wine", "paper", 0)], rerun_file), fresh, "re-run of a cell vs paper")


def test_report_tables_plots_and_page(run: dict, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    code, stdout, err = cli("eval", "report", str(run["out"]), "--html", str(page))
    assert code == 0, err
    assert "### By mode" in stdout and "### By category" in stdout
    assert "| outdoors | wsd |" in stdout and "| home | paper |" in stdout
    folder = tmp_path / "report_plots"
    for name in ("switch_positions", "window_scores", "time_per_token", "sweep"):
        png, svg = folder / f"{name}.png", folder / f"{name}.svg"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
        assert ET.parse(svg).getroot().tag.endswith("svg")
    text = page.read_text(encoding="utf-8")
    assert text.count("data:image/png;base64,") == 4 and "<table>" in text
    assert 'href="report_plots/sweep.svg"' in text
    assert "<h2>Answers</h2>" in text and text.count("<details>") == 4  # one per prompt turn
    assert '<span class="switch">⟫</span>' in text  # the drafter's and the base model's spans
    code, stdout, _ = cli("eval", "report", str(run["out"]), "--json")
    tables = {t["title"]: t for t in json.loads(stdout)["tables"]}
    assert [row[0] for row in tables["By mode"]["rows"]] == ["base", "draft", "paper", "wsd"]


def test_exports_load_as_the_tools_expect(run: dict, tmp_path: Path) -> None:
    code, _, err = cli("eval", "export", str(run["out"]), "--format", "alpaca_eval", "-o", str(tmp_path))
    assert code == 0 and "1 multi-turn prompts left out" in err
    for mode in ("base", "draft", "wsd", "paper"):
        data = json.loads((tmp_path / f"run.{mode}.alpaca_eval.json").read_text(encoding="utf-8"))
        assert isinstance(data, list) and len(data) == 2
        assert all(set(x) == {"instruction", "output", "generator"} for x in data)
        assert all(isinstance(x[k], str) for x in data for k in x)
        assert data[0]["instruction"] == "How do I get red wine out of a light carpet?"
        assert len({x["generator"] for x in data}) == 1 and mode in data[0]["generator"]
    code, _, _ = cli("eval", "export", str(run["out"]), "--format", "mt_bench", "-o", str(tmp_path))
    rows = [json.loads(x) for x in (tmp_path / "run.wsd.mt_bench.jsonl").read_text().splitlines()]
    two_turns = next(r for r in rows if r["question_id"] == "run")
    assert len(two_turns["choices"][0]["turns"]) == 2 and len(rows) == 3
