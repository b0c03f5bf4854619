"""Settings validation and the CLI's one-line errors (no model needed)."""

import pytest

from wsd_local.cli import main
from wsd_local.settings import DecodingSettings, RuntimeSettings
from wsd_local.errors import ConfigError


@pytest.mark.parametrize("changes", [
    {"threshold": 0.0}, {"threshold": 1.5}, {"threshold": -0.1}, {"threshold": float("nan")},
    {"window": 0}, {"draft_max_tokens": -1}, {"max_tokens": -5}, {"max_tokens": 0},
    {"temperature": -1.0}, {"top_p": 0.0}, {"mode": "fast"}, {"seed": -1}, {"window": 2.5},
])
def test_invalid_settings_raise_one_line_config_errors(changes):
    with pytest.raises(ConfigError) as info:
        DecodingSettings(**changes)
    assert "\n" not in str(info.value)


def test_threshold_one_is_valid_and_settings_round_trip():
    s = DecodingSettings(threshold=1.0, window=1)
    assert DecodingSettings.from_dict(s.to_dict()) == s


def test_runtime_rejects_tiny_context():
    with pytest.raises(ConfigError):
        RuntimeSettings(n_ctx=10)


@pytest.mark.parametrize("argv, needle", [
    (["generate", "hi", "--threshold", "0"], "threshold must be in (0, 1]"),
    (["generate", "hi", "--threshold", "1.01"], "threshold must be in (0, 1]"),
    (["generate", "hi", "--window", "0"], "window must be >= 1"),
    (["generate", "hi", "--max-tokens", "-3"], "max-tokens must be >= 1"),
    (["generate", "hi", "--draft-max-tokens", "-1"], "draft-max-tokens must be >= 0"),
    (["generate", "   "], "the prompt is empty"),
    (["generate"], "no prompt given"),
    (["generate", "hi", "--drafter", "/nonexistent/model.gguf"], "model file not found"),
])
def test_cli_bad_input_is_one_line_and_exit_2(argv, needle, capsys):
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2
    assert needle in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_cli_argparse_errors_are_one_line(capsys):
    with pytest.raises(SystemExit) as info:
        main(["generate", "hi", "--threshold", "abc"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "invalid float value" in err


def test_cli_rejects_files_that_are_not_usable_gguf(tmp_path, capsys):
    """A text file, a truncated GGUF and a directory: one line each, exit 2, no model load."""
    from wsd_local.models import demo

    text_file = tmp_path / "notes.gguf"
    text_file.write_text("not a model\n")
    truncated = tmp_path / "cut.gguf"
    with open(demo.drafter_path(), "rb") as src:
        truncated.write_bytes(src.read(2_000_000))
    for path, needle in ((text_file, "not a GGUF file"), (truncated, "truncated"),
                         (tmp_path, "is a directory")):
        code = main(["generate", "hi", "--drafter", str(path)])
        err = capsys.readouterr().err
        assert code == 2 and needle in err, err
        assert err.count("\n") == 1 and "Traceback" not in err
