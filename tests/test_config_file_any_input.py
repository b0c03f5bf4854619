"""config.toml is read on every command: whatever the file holds, loading it gives the
settings or a one-line ConfigError (exit 2), never another exception."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wsd_local import config_file
from wsd_local.cli import main
from wsd_local.errors import ConfigError

SECTIONS = ["models", "decoding", "runtime", "generate", "other"]
KEYS = sorted({k.name for k in config_file.keys()} | {a for k in config_file.keys() for a in k.aliases}
              | {"unknown-key"})

scalars = st.one_of(
    st.booleans(), st.integers(-2**70, 2**70), st.sampled_from([0, 1, -1, 2**31, 2**63 - 1]),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
    st.sampled_from(["wsd", "paper", "base", "nudging", "demo", "x.gguf", "", " ", "\x1b[2J"]),
)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.sampled_from(KEYS), inner, max_size=2), max_leaves=6)


def toml_value(value) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f'"{k}" = {toml_value(v)}' for k, v in value.items()) + "}"
    if isinstance(value, int) and not isinstance(value, bool) and not -2**63 <= value < 2**63:
        return str(value)  # not valid TOML: the parser must refuse it
    return config_file.format_value(value)


@st.composite
def config_texts(draw) -> str:
    if draw(st.integers(0, 4)) == 0:
        return draw(st.text(max_size=80))  # anything at all
    lines = []
    for _ in range(draw(st.integers(0, 3))):
        if draw(st.booleans()):
            lines.append(f"[{draw(st.sampled_from(SECTIONS))}]")
        for _ in range(draw(st.integers(0, 3))):
            lines.append(f'"{draw(st.sampled_from(KEYS))}" = {toml_value(draw(values))}')
    if draw(st.integers(0, 9)) == 0:
        lines.append("a = " + "[" * 2000 + "]" * 2000)  # nested deeper than any parser recurses
    return "\n".join(lines) + "\n"


@settings(max_examples=200, deadline=None)
@given(text=config_texts())
def test_any_config_file_loads_or_is_one_config_error(tmp_path_factory: pytest.TempPathFactory, text: str) -> None:
    path = tmp_path_factory.getbasetemp() / "any-config.toml"
    path.write_text(text, encoding="utf-8")
    try:
        config = config_file.load(path)
    except ConfigError as exc:
        assert "\n" not in exc.one_line() and exc.exit_code == 2
        return
    for key in config_file.keys():  # what the commands read from it
        config.get(key.dotted)
    for section in config_file.sections():
        config.section(section)


@settings(max_examples=30, deadline=None)
@given(data=st.binary(max_size=60))
def test_any_bytes_are_read_or_refused(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    path = tmp_path_factory.getbasetemp() / "raw-config.toml"
    path.write_bytes(data)
    try:
        config_file.load(path)
    except ConfigError as exc:
        assert "\n" not in exc.one_line()


def test_a_deeply_nested_value_is_a_one_line_error(tmp_path, monkeypatch, capsys) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[decoding]\nthreshold = " + "[" * 5000 + "]" * 5000 + "\n", encoding="utf-8")
    monkeypatch.setenv("WSD_CONFIG", str(path))
    assert main(["config", "show"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(path) in err
