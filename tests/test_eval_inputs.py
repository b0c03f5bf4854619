"""`wsd eval` input files: every supported shape, line numbers of bad records, the
bundled prompt set, and the command-line shape (no models needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from wsd_local.cli import build_parser, main
from wsd_local.eval.inputs import InputError, bundled_path, load_prompts


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_jsonl_shapes(tmp_path: Path) -> None:
    lines = [
        {"id": "p", "category": "c1", "prompt": "Plain?"},
        {"question_id": 81, "category": "writing", "turns": ["First?", "Second?"]},  # MT-Bench
        {"question_id": "ah1", "cluster": "code", "turns": [{"content": "Arena?"}]},  # Arena-Hard
        {"instruction": "Do X.", "input": "with Y", "dataset": "helpful_base"},  # Alpaca(Eval)
        {"question": "Truthful?", "category": "Misconceptions"},  # TruthfulQA
        {"raw_context": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"},
                         {"role": "user", "content": "Help me?"}]},  # HH (reference format)
        {"chosen": "\n\nHuman: Is it ok?\n\nAssistant: Yes.\n\nHuman: Why?\n\nAssistant: Because."},
        {"messages": [{"role": "user", "content": "One"}, {"role": "user", "content": "Two"}],
         "system": "Be brief."},
    ]
    path = write(tmp_path / "p.jsonl", "".join(json.dumps(x) + "\n" for x in lines))
    prompts = load_prompts(path)
    assert prompts.bad == []
    items = {i.id: i for i in prompts.items}
    assert [i.turns for i in prompts.items] == [1, 2, 1, 1, 1, 1, 1, 2]
    assert items["p"].category == "c1" and items["p"].prompt(0) == "Plain?"
    mt = items["81"]
    assert mt.category == "writing" and mt.prompt(1) == "Second?"
    assert mt.conversation(1, ["A1"]) == [{"role": "user", "content": "First?"},
                                          {"role": "assistant", "content": "A1"},
                                          {"role": "user", "content": "Second?"}]
    assert items["ah1"].category == "code" and items["ah1"].prompt(0) == "Arena?"
    alpaca = items["L4"]
    assert alpaca.prompt(0) == "Do X.\n\nwith Y" and alpaca.dataset == "helpful_base"
    assert items["L5"].prompt(0) == "Truthful?"
    hh = items["L6"]  # a history ending with a user turn: one turn, the history as context
    assert hh.turns == 1 and len(hh.chunks[0]) == 3 and hh.prompt(0) == "Help me?"
    transcript = items["L7"]  # the last assistant reply (the rated answer) is dropped
    assert [m["role"] for m in transcript.chunks[0]] == ["user", "assistant", "user"]
    assert transcript.prompt(0) == "Why?"
    two = items["L8"]
    assert two.chunks[0][0] == {"role": "system", "content": "Be brief."}
    assert two.conversation(1, ["first answer"])[-2:] == [
        {"role": "assistant", "content": "first answer"}, {"role": "user", "content": "Two"}]
    assert len({i.sha for i in prompts.items}) == len(prompts.items)


def test_malformed_jsonl_records_are_reported_with_line_numbers(tmp_path: Path) -> None:
    path = write(tmp_path / "p.jsonl", "\n".join([
        '{"id": "a", "prompt": "fine"}',
        '{"id": "b", "prompt": "broken',
        '',
        '{"id": "c", "text": "no prompt field"}',
        '{"id": "a", "prompt": "same id again"}',
        '{"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}]}',
        '{"messages": [{"role": "robot", "content": "Q"}]}',
        '["not", "an", "object"]',
        '{"id": "d", "prompt": "   "}',
        '{"id": "e", "prompt": "also fine"}',
    ]) + "\n")
    prompts = load_prompts(path)
    assert [i.id for i in prompts.items] == ["a", "e"]
    problems = {b.line: b.problem for b in prompts.bad}
    assert sorted(problems) == [2, 4, 5, 6, 7, 8, 9]
    assert problems[2].startswith("not valid JSON")
    assert "no prompt" in problems[4] and "--field" in problems[4]
    assert problems[5] == "duplicate id 'a' (first on line 1)"
    assert "ends with an assistant message" in problems[6]
    assert "unknown role 'robot'" in problems[7]
    assert "expected a JSON object" in problems[8]
    assert "empty" in problems[9]
    assert prompts.bad[0].describe(path) == f"{path}:2: " + problems[2]


def test_json_array_elements_keep_their_line_numbers(tmp_path: Path) -> None:
    path = write(tmp_path / "alpaca.json", '[\n  {"instruction": "One"},\n  {"instruction":\n'
                                           '     "Two"},\n  {"output": "no instruction"},\n  3\n]\n')
    prompts = load_prompts(path)
    assert [(i.id, i.prompt(0)) for i in prompts.items] == [("L2", "One"), ("L3", "Two")]
    assert [(b.line, b.problem.split(":")[0]) for b in prompts.bad] == [(5, "no prompt"),
                                                                        (6, "expected a JSON object, got int")]
    with pytest.raises(InputError, match="not valid JSON"):
        load_prompts(write(tmp_path / "bad.json", '[{"instruction": "x"},'))


def test_csv_with_field_and_multiline_cells(tmp_path: Path) -> None:
    path = write(tmp_path / "tqa.csv", 'Type,Category,Question,Best Answer\n'
                                       'Adversarial,Misconceptions,"What happens if you\n'
                                       'crack your knuckles?",Nothing\n'
                                       'Adversarial,Law,,Nothing\n'
                                       'Adversarial,Health,Is coffee bad?,No\n')
    prompts = load_prompts(path)  # `Question` found case-insensitively
    assert [(i.line, i.category) for i in prompts.items] == [(2, "Misconceptions"), (5, "Health")]
    assert prompts.items[0].prompt(0) == "What happens if you\ncrack your knuckles?"
    assert [b.line for b in prompts.bad] == [4]
    by_field = load_prompts(path, field_name="Best Answer")
    assert [i.prompt(0) for i in by_field.items] == ["Nothing", "Nothing", "No"]
    missing = load_prompts(path, field_name="nope")
    assert missing.items == [] and missing.bad[0].problem == "no 'nope' field"


def test_missing_file_and_bundled_set(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="prompt file not found: nothere.jsonl .*everyday50"):
        load_prompts("nothere.jsonl")
    prompts = load_prompts("everyday50")
    assert prompts.path == bundled_path("everyday50") and prompts.bad == []
    assert len(prompts.items) == 50
    categories = {i.category for i in prompts.items}
    assert categories == {"everyday", "safety", "multilingual"}
    assert sum(i.turns > 1 for i in prompts.items) == 2
    assert len({i.id for i in prompts.items}) == 50


def test_strict_stops_before_anything_is_written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "p.jsonl", '{"prompt": "ok"}\n{"prompt": \n')
    out = tmp_path / "run.jsonl"
    code = main(["eval", str(path), "-o", str(out), "--strict"])
    err = capsys.readouterr().err
    assert code == 2 and not out.exists()
    assert err.strip().count("\n") == 0  # one line, no traceback
    assert f"{path}:2: not valid JSON" in err and "--strict" in err


def test_command_line_shape(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    run = parser.parse_args(["eval", "prompts.jsonl", "-o", "r.jsonl", "--modes", "paper", "--window", "4"])
    assert (run.eval_command, run.file, run.output, run.modes, run.window) == (
        "run", "prompts.jsonl", Path("r.jsonl"), "paper", 4)
    explicit = parser.parse_args(["eval", "run", "report", "-o", "r.jsonl"])  # a file named `report`
    assert (explicit.eval_command, explicit.file) == ("run", "report")
    report = parser.parse_args(["eval", "report", "r.jsonl", "--html", "r.html"])
    assert (report.eval_command, report.run, report.html) == ("report", Path("r.jsonl"), Path("r.html"))
    sweep = parser.parse_args(["eval", "sweep", "r.jsonl", "--threshold", "0.6:0.9:0.1", "--rerun", "0.7/4"])
    assert (sweep.eval_command, sweep.threshold, sweep.rerun) == ("sweep", "0.6:0.9:0.1", ["0.7/4"])
    export = parser.parse_args(["eval", "export", "r.jsonl", "--format", "mt_bench"])
    assert (export.eval_command, export.format) == ("export", "mt_bench")
    with pytest.raises(SystemExit) as caught:  # a typo is named, not taken for a missing file
        parser.parse_args(["eval", "reprot", "r.jsonl"])
    assert caught.value.code == 2
    assert "'reprot' is neither a subcommand nor a file: did you mean 'report'?" in capsys.readouterr().err


ALPACA_EVAL = [  # AlpacaEval's records: no id, written by json.dump without indent
    {"dataset": "helpful_base", "instruction": "What are the names of some famous actors?",
     "output": "...", "generator": "gpt4"},
    {"dataset": "helpful_base", "instruction": "How did US states get their names?",
     "output": "...", "generator": "gpt4"},
    {"dataset": "koala", "instruction": "Hi, how do I make a cake?", "output": "...", "generator": "gpt4"},
]


@pytest.mark.parametrize("name", ["alpaca_eval.json", "alpaca_eval.jsonl", "alpaca_eval.txt"])
def test_a_json_list_on_one_line_is_a_list_whatever_the_file_is_called(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    with path.open("w", encoding="utf-8") as fh:
        json.dump(ALPACA_EVAL, fh)
    assert path.read_text(encoding="utf-8").count("\n") == 0
    prompts = load_prompts(path)
    assert prompts.bad == []
    assert [i.prompt(0) for i in prompts.items] == [r["instruction"] for r in ALPACA_EVAL]
    assert [i.dataset for i in prompts.items] == [r["dataset"] for r in ALPACA_EVAL]
    ids = [i.id for i in prompts.items]
    assert len(set(ids)) == 3 and all(i.startswith("L1.") for i in ids)


def test_the_same_records_read_the_same_with_or_without_line_breaks(tmp_path: Path) -> None:
    one_line = write(tmp_path / "a.json", json.dumps(ALPACA_EVAL))
    indented = write(tmp_path / "b.json", json.dumps(ALPACA_EVAL, indent=2))
    jsonl = write(tmp_path / "c.jsonl", "".join(json.dumps(r) + "\n" for r in ALPACA_EVAL))
    shapes = [[(i.chunks, i.dataset) for i in load_prompts(p).items] for p in (one_line, indented, jsonl)]
    assert shapes[0] == shapes[1] == shapes[2] and len(shapes[0]) == 3
    single = write(tmp_path / "one.json", json.dumps(ALPACA_EVAL[0], indent=2))  # one record, indented
    assert [i.prompt(0) for i in load_prompts(single).items] == [ALPACA_EVAL[0]["instruction"]]


def test_only_ids_the_file_gave_can_be_duplicates(tmp_path: Path) -> None:
    records = [{"prompt": "a"}, {"prompt": "b"}, {"id": "L2", "prompt": "c"}, {"id": "x", "prompt": "d"},
               {"id": "x", "prompt": "e"}]
    path = write(tmp_path / "p.jsonl", "".join(json.dumps(r) + "\n" for r in records))
    prompts = load_prompts(path)
    # The record on line 2 gives no id and must not take the one the file gave on line 3.
    assert [(i.id, i.prompt(0)) for i in prompts.items] == [("L1", "a"), ("L2~2", "b"), ("L2", "c"), ("x", "d")]
    assert [b.describe(path) for b in prompts.bad] == [f"{path}:5: duplicate id 'x' (first on line 4)"]
    one_line = write(tmp_path / "p.json", json.dumps(records))
    prompts = load_prompts(one_line)
    assert [i.prompt(0) for i in prompts.items] == ["a", "b", "c", "d"]
    assert len({i.id for i in prompts.items}) == 4
    assert [b.describe(one_line) for b in prompts.bad] == [
        f"{one_line}:1: record 5: duplicate id 'x' (first on line 1)"]


def test_deeply_nested_json_is_a_one_line_error(tmp_path: Path) -> None:
    nested = write(tmp_path / "deep.json", "[" * 100_000 + "]" * 100_000)
    with pytest.raises(InputError, match="nested too deeply"):
        load_prompts(nested)
    lines = write(tmp_path / "deep.jsonl", '{"prompt": "ok"}\n{"prompt": ' + "[" * 100_000 + "]" * 100_000 + "}\n")
    prompts = load_prompts(lines)
    assert [i.prompt(0) for i in prompts.items] == ["ok"]
    assert [b.problem for b in prompts.bad] == ["JSON nested too deeply"]
