"""`wsd doctor` and `wsd --version [--verbose]`: one command to check an installation."""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path

import pytest

import wsd_local
from wsd_local.cli import main


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("WSD_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("WSD_CONFIG", str(tmp_path / "config.toml"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    return tmp_path


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"wsd-local {metadata.version('wsd-local')}\n"
    assert metadata.version("wsd-local") == wsd_local.__version__  # one version, in wsd_local/__init__.py


def test_version_verbose_is_the_short_report(isolated: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import llama_cpp

    assert main(["--version", "--verbose"]) == 0
    out = capsys.readouterr().out
    labels = [line.split("  ")[0] for line in out.splitlines()]
    assert labels == ["wsd-local", "python", "llama-cpp-python", "textual", "gguf", "huggingface_hub", "numpy",
                      "platformdirs", "compute backend", "data folder", "models folder", "config file"]
    offload = "yes" if llama_cpp.llama_supports_gpu_offload() else "no"
    assert f"(GPU offload: {offload})" in out
    assert f"llama-cpp-python  {metadata.version('llama-cpp-python')}\n" in out
    assert f"{isolated / 'data'}  (from WSD_DATA_DIR)" in out
    assert f"{isolated / 'config.toml'}  (from WSD_CONFIG)  (not created yet" in out


def test_doctor_reports_config_demo_files_and_cache(isolated: Path, capsys: pytest.CaptureFixture[str],
                                                    demo_paths: dict[str, Path]) -> None:
    from wsd_local.backend.llama import active_backend_name

    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert f"compute backend     {active_backend_name()} (GPU offload:" in out
    assert "llama.cpp build     CPU : " in out  # llama.cpp's own system line (which CPU features it uses)
    assert f"demo drafter        smollm2-135m: {demo_paths['drafter']}" in out
    assert "demo base           gemma3-270m: " in out
    assert f"Hugging Face cache  {isolated / 'hf' / 'hub'}  (0 GGUF files" in out
    assert out.rstrip().endswith("no problems found (`wsd doctor --smoke` also loads the models and decodes one token)")
    assert main(["config", "set", "threshold", "0.9"]) == 0
    capsys.readouterr()
    assert main(["doctor", "--json"]) == 0
    lines = {line["label"]: line for line in json.loads(capsys.readouterr().out)}
    assert lines["config"]["value"] == "decoding.threshold = 0.9" and not lines["config"]["problem"]


def test_doctor_names_a_broken_config_as_a_problem(isolated: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (isolated / "config.toml").write_text("[decoding]\nwindow = -2\n")
    assert main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert f"bad value for decoding.window in {isolated / 'config.toml'}: window must be >= 1" in out
    assert "<- problem" in out and "1 problem found" in out


def test_doctor_reads_the_config_once(isolated: Path, capsys: pytest.CaptureFixture[str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from wsd_local import config_file

    calls = []
    real_load = config_file.load
    monkeypatch.setattr(config_file, "load", lambda *a, **k: calls.append(1) or real_load(*a, **k))
    (isolated / "config.toml").write_text("[decoding]\nthreshold = 0.9\n")
    main(["doctor", "--json"])
    lines = {line["label"]: line for line in json.loads(capsys.readouterr().out)}
    assert lines["config"]["value"] == "decoding.threshold = 0.9"
    assert len(calls) == 1


@pytest.mark.models
def test_doctor_smoke_decodes_one_token(isolated: Path, capsys: pytest.CaptureFixture[str], demo_paths) -> None:
    (isolated / "config.toml").write_text("[runtime]\nn-gpu-layers = 0\n")
    assert main(["doctor", "--smoke"]) == 0
    smoke = [line for line in capsys.readouterr().out.splitlines() if line.startswith("smoke decode")]
    assert len(smoke) == 1 and "ok: smollm2-135m + gemma3-270m on " in smoke[0] and "answered " in smoke[0]
