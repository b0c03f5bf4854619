"""The run file's guarantees (whole lines only, torn tail cut, one writer, last line
wins), the sweep's grid parsing and the plots' missing-extra message. No models: the
records here are written by hand, and the disk-full and missing-matplotlib cases fake
the failure (error paths only)."""

from __future__ import annotations

import builtins
import json
import os
from pathlib import Path

import pytest

from wsd_local.errors import ConfigError
from wsd_local.eval import runfile
from wsd_local.eval.runfile import RunFileError, RunFileRefused, RunWriter, read_run
from wsd_local.eval.sweep import parse_cells, parse_thresholds, parse_windows

HEADER = {"type": "header", "format": "wsd-eval", "version": 1, "run": "fp1", "purpose": "run",
          "settings": {}, "modes": ["wsd"], "models": {}}


def answer(ident: str, text: str, mode: str = "wsd", turn: int = 0) -> dict:
    return {"type": "answer", "run": "fp1", "id": ident, "mode": mode, "turn": turn, "answer": text}


def test_torn_last_line_is_cut_and_earlier_lines_kept(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    with RunWriter(path) as writer:
        writer.append(HEADER)
        writer.append(answer("a", "first"))
    whole = path.read_bytes()
    torn = b'{"type": "answer", "run": "fp1", "id": "b", "ans'
    with open(path, "ab") as f:  # what a crash in the middle of a write would leave
        f.write(torn)
    contents = read_run(path)
    assert contents.torn_tail == len(torn) and list(contents.answers) == [("fp1", "a", "wsd", 0)]
    with RunWriter(path) as writer:
        assert writer.dropped_tail == len(torn)
        assert path.read_bytes() == whole
        writer.append(answer("b", "second"))
    assert [json.loads(x)["type"] for x in path.read_text().splitlines()] == ["header", "answer", "answer"]


def test_last_answer_wins_errors_clear_and_bad_lines_are_listed(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    error = {"type": "error", "run": "fp1", "id": "a", "mode": "wsd", "turn": 0, "error": "too long"}
    lines = [HEADER, answer("a", "old"), error, answer("a", "new"), "not json", {"type": "what"}]
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
    contents = read_run(path)
    assert contents.answers[("fp1", "a", "wsd", 0)]["answer"] == "new"
    assert contents.errors == {} and contents.bad_lines == [5, 6] and contents.latest == "fp1"
    path.write_text(json.dumps(answer("a", "x")) + "\n")
    with pytest.raises(RunFileRefused, match="no header"):
        read_run(path)


def test_one_writer_at_a_time(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    with RunWriter(path):
        with pytest.raises(RunFileError, match="another `wsd eval` is writing"):
            RunWriter(path).open()
    RunWriter(path).open().close()  # free again


def test_disk_full_leaves_whole_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake: os.write writes half the line and stops, as on a full disk."""
    path = tmp_path / "run.jsonl"
    with RunWriter(path) as writer:
        writer.append(HEADER)
        before = path.read_bytes()
        real_write = os.write
        monkeypatch.setattr(runfile.os, "write", lambda fd, data: real_write(fd, data[: len(data) // 2]))
        with pytest.raises(RunFileError, match="the disk is full.*answers written before are kept"):
            writer.append(answer("a", "x" * 100))
    assert path.read_bytes() == before


def test_grid_parsing() -> None:
    assert parse_thresholds("0.6:0.95:0.05") == [0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95]
    assert parse_thresholds("0.7, 0.9") == [0.7, 0.9]
    assert parse_windows("2,4,6") == [2, 4, 6] and parse_windows("2:5") == [2, 3, 4, 5]
    assert parse_cells("0.7/6,0.9/4") == [(0.7, 6), (0.9, 4)]
    for bad in ("0.5:1.2:0.1", "a:b", "0", "0.5:0.9:0"):
        with pytest.raises(ConfigError, match="--threshold"):
            parse_thresholds(bad)
    with pytest.raises(ConfigError, match="--window"):
        parse_windows("0,2")
    with pytest.raises(ConfigError, match="γ/w"):
        parse_cells("0.7-6")


def test_plots_without_matplotlib_say_which_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake: matplotlib cannot be imported."""
    from wsd_local.eval.plots import PlotsUnavailable, pyplot

    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.split(".")[0] == "matplotlib":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    with pytest.raises(PlotsUnavailable) as caught:
        pyplot()
    assert caught.value.one_line() == ("plots need matplotlib, which is not installed "
                                       "(pip install 'wsd-local[eval]')")


def test_report_numbers_follow_their_definitions() -> None:
    from wsd_local.eval.stats import category_table, mode_table

    def row(mode: str, category: str, k: int | None, fired: bool | None, kept: int, base: int,
            seconds: float, in_repeat: bool = False) -> dict:
        answer_tokens = kept + base if mode != "draft" else kept
        return {"mode": mode, "category": category, "answer": "" if mode == "base" else "text", "switch_index": k, "switch_fired": fired,
                "switch_in_repeat": in_repeat if k is not None else None,
                "kept_share": kept / answer_tokens, "stop_reason": "max_tokens",
                "tokens": {"drafter": 30 if mode != "base" else 0, "base": base, "scored": 20,
                           "kept_draft": kept if k is not None else None, "answer": answer_tokens},
                "timings": {"total_s": seconds}}

    rows = [row("wsd", "a", 9, True, 10, 30, 2.0), row("wsd", "b", 19, False, 20, 20, 2.0),
            row("wsd", "a", 29, True, 30, 10, 4.0, in_repeat=True), row("base", "a", None, None, 0, 40, 1.0)]
    table = mode_table(rows, lambda r: r["mode"])
    by_mode = {r[0]: dict(zip(table.columns, r)) for r in table.rows}
    assert list(by_mode) == ["base", "wsd"]
    wsd = by_mode["wsd"]
    assert wsd["answers"] == 3 and wsd["switch fired"] == "67 %"
    assert wsd["switch position if fired (mean / median)"] == "20.0 / 20"  # fired only: 10 and 30
    assert wsd["kept share"] == "50 %"  # (0.25 + 0.5 + 0.75) / 3
    assert wsd["ms / answer tok"] == "66.7"  # 8 s over 120 tokens
    assert by_mode["base"]["switch fired"] == "-" and by_mode["base"]["kept share"] == "0 %"
    assert (by_mode["base"]["empty"], wsd["empty"]) == (1, 0)
    assert (wsd["switch in repeat"], by_mode["base"]["switch in repeat"]) == (1, "-")
    older = [{k: v for k, v in r.items() if k != "switch_in_repeat"} for r in rows]  # before the field
    assert mode_table(older, lambda r: r["mode"]).rows[1][5] == "-"
    categories = category_table(rows, lambda r: r["mode"])
    assert [(r[0], r[1], r[2]) for r in categories.rows] == [("a", "base", 1), ("a", "wsd", 2), ("b", "wsd", 1)]
