"""The trace's JSON format: version 2 round-trips, version 1 traces still read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from wsd_local.settings import DecodingSettings
from wsd_local.trace import FORMAT_VERSION, Trace

SAMPLE_V1 = Path(__file__).parent / "data" / "trace_sample.json"


def test_version_1_sample_reads_with_its_settings() -> None:
    raw = json.loads(SAMPLE_V1.read_text(encoding="utf-8"))
    assert raw["format_version"] == 1 and "threshold" in raw
    trace = Trace.from_dict(raw)
    # Settings added later read as that version behaved: ids handed over, the base model
    # sampled with the temperature, no repetition stop.
    older = {"handoff": "ids", "sample_base": bool(raw["settings"]["temperature"]), "repetition_stop": 0}
    assert trace.settings == DecodingSettings.from_dict({**raw["settings"], **older})
    assert (trace.mode, trace.threshold, trace.window) == (raw["mode"], raw["threshold"], raw["window"])
    assert trace.forced_switch is None and trace.format_version == FORMAT_VERSION == 2
    trace.check()


def test_version_1_forced_switch_moves_out_of_the_settings() -> None:
    raw = json.loads(SAMPLE_V1.read_text(encoding="utf-8"))
    raw["settings"]["forced_switch"] = 12
    raw["settings"].pop("threshold")  # version 1 had it twice; the top-level copy is enough
    trace = Trace.from_dict(raw)
    assert trace.forced_switch == 12 and trace.threshold == raw["threshold"]


def test_version_2_keeps_each_setting_once_and_round_trips() -> None:
    trace = Trace.from_dict(json.loads(SAMPLE_V1.read_text(encoding="utf-8")))
    trace.forced_switch = 40
    data = json.loads(trace.to_json())
    assert data["format_version"] == 2 and data["forced_switch"] == 40
    assert not {"mode", "threshold", "window"} & set(data)
    assert "forced_switch" not in data["settings"]
    again = Trace.from_json(trace.to_json())
    assert again == trace


def test_unreadable_settings_are_a_value_error() -> None:
    raw = json.loads(SAMPLE_V1.read_text(encoding="utf-8"))
    raw["settings"]["window"] = 0
    with pytest.raises(ValueError, match="window must be >= 1"):
        Trace.from_dict(raw)


def test_compare_traces_sees_behaviour_not_timings(tmp_path: Path) -> None:
    from wsd_local.bench.compare_traces import compare_folders

    trace = Trace.from_dict(json.loads(SAMPLE_V1.read_text(encoding="utf-8")))
    before, after = tmp_path / "before", tmp_path / "after"
    before.mkdir(), after.mkdir()
    (before / "paper-0.json").write_text(SAMPLE_V1.read_text(encoding="utf-8"))  # version 1
    trace.timings = {"total_s": 99.0}
    trace.models["base"].path = "/elsewhere/model.gguf"
    (after / "paper-0.json").write_text(trace.to_json())  # version 2, other timings and path
    assert compare_folders(before, after) == []
    trace.draft_tokens[3].logprob += 1e-9
    (after / "paper-0.json").write_text(trace.to_json())
    assert compare_folders(before, after) == ["paper-0.json: draft_token_probs, draft_tokens differ"]


def test_where_two_answers_part_names_the_first_decision_and_its_margin(tmp_path: Path) -> None:
    """Built by hand from the sample trace: a continuation that takes another token at
    a flagged near tie, and a switch one token later (the window score moved)."""
    from wsd_local.bench.compare_traces import where_they_part
    from wsd_local.bench.partings import parting
    from wsd_local.trace import TokenRecord

    trace = Trace.from_dict(json.loads(SAMPLE_V1.read_text(encoding="utf-8")))
    other = Trace.from_dict(trace.to_dict())
    assert parting(trace, other).where.startswith("scores only")
    other.continuation_tokens[5] = TokenRecord(other.continuation_tokens[5].id + 1, "x", -0.7)
    other.answer += "x"
    other.continuation_near_ties = [5]
    part = parting(trace, other)
    assert (part.switch, part.kept, part.answer) == (False, False, True)
    assert "base token 5" in part.where and "flagged as a near tie" in part.where
    k = trace.switch_index
    moved = Trace.from_dict(trace.to_dict())
    moved.switch_index, moved.kept_draft, moved.answer = k + 1, trace.kept_draft + "y", trace.answer + "y"
    part = parting(trace, moved)
    assert (part.switch, part.kept, part.answer) == (True, True, True)
    assert part.where.startswith(f"switch {k} vs {k + 1}: window score at {k} ")
    before, after = tmp_path / "before", tmp_path / "after"
    before.mkdir(), after.mkdir()
    for name, a, b in (("paper-0.json", trace, other), ("paper-1.json", trace, moved), ("wsd-0.json", trace, trace)):
        (before / name).write_text(a.to_json())
        (after / name).write_text(b.to_json())
    lines = where_they_part(before, after)
    assert [line.split(":")[0] for line in lines[:-1]] == ["paper-0.json", "paper-1.json"]
    assert lines[-1] == "3 answers in both: switch index differs in 1, kept draft in 1, answer in 2"


@pytest.mark.parametrize("temperature,mode,fired", [(0.0, "wsd", True), (0.7, "paper", True), (0.7, "wsd", False)])
def test_settings_and_fields_added_later_describe_what_older_versions_did(temperature, mode, fired) -> None:
    raw = json.loads(SAMPLE_V1.read_text(encoding="utf-8"))
    raw["settings"].update(temperature=temperature, mode=mode)
    raw["mode"], raw["switch_fired"] = mode, fired
    trace = Trace.from_dict(raw)
    assert trace.settings.sample_base == (temperature > 0)  # it sampled the base model too
    assert trace.settings.handoff == "ids" and trace.settings.repetition_stop == 0
    # An online answer that switched had stopped its drafter: scores past it are unknown.
    assert trace.draft_complete == (not (mode == "wsd" and fired))
    again = Trace.from_json(trace.to_json())
    assert again.settings == trace.settings and again.draft_complete == trace.draft_complete
