"""config.toml: keys derived from the settings declarations, precedence (flag > config
file > built-in default), one-line errors naming the key and the file, and `wsd config
show|path|set|unset` keeping what the user wrote."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import tomllib

from wsd_local import config_file
from wsd_local.cli import build_parser, main
from wsd_local.cli.options import apply_config, runtime_from_args, settings_from_args
from wsd_local.settings import SETTINGS, DecodingSettings, RuntimeSettings


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "conf" / "config.toml"
    monkeypatch.setenv("WSD_CONFIG", str(path))
    return path


def parsed(*argv: str):
    """What a command would run with: flags parsed, then the config applied (as main does)."""
    args = build_parser().parse_args(list(argv))
    apply_config(args)
    return args


def test_every_decoding_setting_is_a_config_key() -> None:
    decoding = {k.field_name: k for k in config_file.keys() if k.section == "decoding"}
    assert set(decoding) == {spec.name for spec in SETTINGS}
    for spec in SETTINGS:
        assert decoding[spec.name].name == spec.key and decoding[spec.name].default == spec.default
    runtime = {k.field_name for k in config_file.keys() if k.section == "runtime"}
    assert runtime == {"n_ctx", "threads", "n_gpu_layers"}


def test_precedence_flag_over_config_over_default(config: Path) -> None:
    assert settings_from_args(parsed("generate", "hi")) == DecodingSettings()  # no file: built in
    assert runtime_from_args(parsed("generate", "hi")) == RuntimeSettings()
    config.parent.mkdir()
    config.write_text('[models]\ndrafter = "my-drafter"\nbase = "my-base"\n'
                      "[decoding]\nthreshold = 0.9\nmax_tokens = 300\nmode = \"paper\"\n"
                      "[runtime]\nctx = 8192\nn-gpu-layers = 0\n")
    args = parsed("generate", "hi")
    settings = settings_from_args(args)
    assert (settings.threshold, settings.max_tokens, settings.mode, settings.window) == (0.9, 300, "paper", 6)
    assert (args.drafter, args.base) == ("my-drafter", "my-base")
    assert runtime_from_args(args) == RuntimeSettings(n_ctx=8192, n_gpu_layers=0)
    args = parsed("generate", "hi", "--threshold", "0.7", "--mode", "wsd", "--base", "other", "--ctx", "2048",
                  "--n-gpu-layers", "-1")
    settings = settings_from_args(args)
    assert (settings.threshold, settings.max_tokens, settings.mode) == (0.7, 300, "wsd")
    assert (args.drafter, args.base) == ("my-drafter", "other")
    assert runtime_from_args(args) == RuntimeSettings(n_ctx=2048, n_gpu_layers=-1)
    # The chat app and the bench read it too; the bench keeps its own answer length so
    # its runs compare, and a flag still changes that.
    assert settings_from_args(parsed("chat")).threshold == 0.9
    bench = settings_from_args(parsed("bench"))
    assert (bench.threshold, bench.max_tokens) == (0.9, 256)
    assert settings_from_args(parsed("bench", "--max-tokens", "64")).max_tokens == 64


@pytest.mark.parametrize("text, needle", [
    ("[decoding]\ntreshold = 0.9\n", "unknown key decoding.treshold in {path} (did you mean decoding.threshold?)"),
    ("[decoding]\nthreshold = 1.5\n", "bad value for decoding.threshold in {path}: threshold must be in (0, 1], got 1.5"),
    ("[decoding]\nwindow = \"six\"\n", "bad value for decoding.window in {path}: window must be a whole number"),
    ("[decoding]\nmode = \"fast\"\n", "bad value for decoding.mode in {path}: unknown mode 'fast'"),
    ("[runtime]\nctx = 10\n", "bad value for runtime.ctx in {path}: ctx must be >= 64, got 10"),
    ("[runtime]\nthreshold = 0.5\n", "unknown key runtime.threshold in {path} (did you mean decoding.threshold, under [decoding]?)"),
    ("[models]\nbase = 3\n", "bad value for models.base in {path}: must be a model name or a .gguf path, got 3"),
    ("[generate]\nlog = \"no\"\n", "bad value for generate.log in {path}: generate.log must be true or false"),
    ("[modles]\nbase = \"x\"\n", "unknown section [modles] in {path} (did you mean [models]?)"),
    ("window = 3\n", "key 'window' in {path} is outside any section (put it under [decoding])"),
    ("[decoding]\nmax-tokens = 5\nmax_tokens = 6\n", "decoding.max-tokens is set twice in {path}"),
    ("[decoding\n", "the config file {path} is not valid TOML: "),
])
def test_bad_config_is_one_line_naming_key_and_file_exit_2(config: Path, capsys, text: str, needle: str) -> None:
    config.parent.mkdir()
    config.write_text(text)
    for argv in (["generate", "hi"], ["config", "show"], ["config", "set", "seed", "3"]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("wsd: error: ") and err.count("\n") == 1 and "Traceback" not in err
        assert needle.format(path=config) in err, (argv, err)
    assert config.read_text() == text  # a broken file is never rewritten
    assert main(["config", "path"]) == 0  # still says where the file is
    assert capsys.readouterr().out.strip() == str(config)


def test_set_keeps_comments_and_other_keys(config: Path, capsys) -> None:
    config.parent.mkdir()
    original = ("# my settings\n[decoding]\n# stricter than the paper\nthreshold = 0.85  # tuned\n"
                "window = 4\n\n[runtime]\nthreads = 2\n")
    config.write_text(original)
    assert main(["config", "set", "threshold", "0.9"]) == 0
    assert capsys.readouterr().out == "decoding.threshold = 0.9\n"
    assert main(["config", "set", "decoding.max_tokens", "300"]) == 0
    assert main(["config", "set", "models.base", "llama3.1-8b"]) == 0
    assert main(["config", "set", "system", 'Be "brief".\nReally.']) == 0
    text = config.read_text()
    assert text.startswith("# my settings\n[decoding]\n# stricter than the paper\nthreshold = 0.9  # tuned\n"
                           "window = 4\nmax-tokens = 300\n")
    assert "[runtime]\nthreads = 2\n" in text and text.endswith('[models]\nbase = "llama3.1-8b"\n')
    data = tomllib.loads(text)
    assert data["decoding"] == {"threshold": 0.9, "window": 4, "max-tokens": 300, "system": 'Be "brief".\nReally.'}
    capsys.readouterr()
    # A bad value or unknown key is refused before anything is written.
    assert main(["config", "set", "threshold", "0"]) == 2
    assert "threshold must be in (0, 1], got 0" in capsys.readouterr().err
    assert main(["config", "set", "thresold", "0.5"]) == 2
    assert "unknown config key 'thresold' (did you mean threshold?" in capsys.readouterr().err
    assert config.read_text() == text
    assert main(["config", "unset", "window"]) == 0
    assert "window" not in tomllib.loads(config.read_text())["decoding"]
    assert main(["config", "set", "system", ""]) == 0  # an optional key given "" is removed
    assert "system" not in tomllib.loads(config.read_text())["decoding"]


def test_set_creates_the_file_and_show_reports_origins(config: Path, capsys) -> None:
    assert not config.exists()
    assert main(["config", "set", "n-gpu-layers", "0"]) == 0
    assert config.read_text().startswith(config_file.HEADER)
    capsys.readouterr()
    assert main(["config", "show"]) == 0
    out = capsys.readouterr().out
    assert "n-gpu-layers = 0  # config.toml" in out and "threshold = 0.8  # default" in out
    assert tomllib.loads(out)["runtime"] == {"ctx": 4096, "n-gpu-layers": 0}  # the output is TOML
    assert main(["config", "show", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["values"]["runtime.n-gpu-layers"] == {"value": 0, "from": "config"}
    assert data["values"]["decoding.window"] == {"value": 6, "from": "default"}


def test_set_stores_a_relative_model_path_as_absolute(config: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    (tmp_path / "m.gguf").write_bytes(b"GGUF")
    monkeypatch.chdir(tmp_path)
    assert main(["config", "set", "drafter", "m.gguf"]) == 0
    assert main(["config", "set", "base", "llama3.1-8b"]) == 0  # a name stays a name
    assert tomllib.loads(config.read_text())["models"] == {"drafter": str(tmp_path / "m.gguf"), "base": "llama3.1-8b"}


def test_set_edits_any_valid_layout(config: Path, capsys) -> None:
    """A multi-line string that looks like a key, an inline table: the edit changes the
    one key asked for and nothing else."""
    config.parent.mkdir()
    text = '[decoding]\nsystem = """\nline one\nthreshold = 0.5\n"""\n'
    config.write_text(text)
    assert main(["config", "set", "threshold", "0.9"]) == 0
    data = tomllib.loads(config.read_text())
    assert data["decoding"] == {"system": "line one\nthreshold = 0.5\n", "threshold": 0.9}
    assert config.read_text().startswith(text)
    config.write_text('models = { base = "b" }\n[decoding]\nwindow = 4\n')
    assert main(["config", "set", "drafter", "d"]) == 0
    assert main(["config", "unset", "window"]) == 0
    assert tomllib.loads(config.read_text()) == {"models": {"base": "b", "drafter": "d"}, "decoding": {}}


def test_toml_values_round_trip(config: Path) -> None:
    for value in ("plain", 'quote " and \\ backslash', "new\nline\ttab", "ünïcode ✓", "\x01\x7f",
                  0.1, 1.0, 1e-9, 3, -1, True, False):
        assert tomllib.loads(f"k = {config_file.format_value(value)}") == {"k": value}, value
    for value in ('quote " and \\ backslash', "new\nline\ttab", "ünïcode ✓", "\x01\x7f"):
        assert main(["config", "set", "system", value]) == 0
        assert tomllib.loads(config.read_text())["decoding"]["system"] == value


@pytest.mark.models
def test_generate_uses_the_config_end_to_end(config: Path, capsys, demo_paths) -> None:
    """A real answer: the trace records the threshold and answer limit from the file,
    and a flag overrides the file."""
    config.parent.mkdir()
    config.write_text("[decoding]\nthreshold = 0.55\nmax-tokens = 6\ndraft-max-tokens = 8\n"
                      "[runtime]\nctx = 1024\nn-gpu-layers = 0\n")
    assert main(["generate", "--json", "--no-log", "Name a colour."]) == 0
    trace = json.loads(capsys.readouterr().out)
    assert trace["settings"]["threshold"] == 0.55 and trace["settings"]["max_tokens"] == 6
    assert main(["generate", "--json", "--no-log", "--mode", "draft", "--threshold", "0.65", "Name a colour."]) == 0
    trace = json.loads(capsys.readouterr().out)
    assert trace["settings"]["threshold"] == 0.65 and trace["settings"]["max_tokens"] == 6
