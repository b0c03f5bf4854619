"""One declaration per idea: the settings table drives flags, form, schema and validation;
the actions table drives bindings, palette, help, the empty-chat hint and the README."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from wsd_local.cli.options import add_decoding_options, settings_from_args
from wsd_local.settings import SETTINGS, DecodingSettings, settings_json_schema
from wsd_local.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def parser(defaults: DecodingSettings | None = None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    add_decoding_options(p, defaults)
    return p


def test_every_setting_has_a_flag_with_its_help_and_default() -> None:
    text = parser().format_help()
    for spec in SETTINGS:
        assert spec.flag in text, spec.name
        assert spec.help.split(";")[0][:30] in " ".join(text.split()), spec.name
    assert "(default: 0.8)" in " ".join(text.split())


def test_flags_override_the_commands_defaults_and_only_given_flags_count() -> None:
    defaults = DecodingSettings(max_tokens=256)
    args = parser(defaults).parse_args(["--threshold", "0.7", "--mode", "paper"])
    settings = settings_from_args(args)
    assert settings == defaults.with_changes(threshold=0.7, mode="paper")
    assert settings_from_args(parser(defaults).parse_args([])) == defaults


def test_form_parse_and_check_share_the_rules() -> None:
    threshold = next(s for s in SETTINGS if s.name == "threshold")
    assert threshold.parse("0.5") == 0.5
    for bad in ("0", "1.5", "abc", "nan"):
        with pytest.raises(ConfigError):
            threshold.parse(bad)
    system = next(s for s in SETTINGS if s.name == "system")
    assert system.parse("") is None and system.parse("Be brief.") == "Be brief."


def test_json_schema_lists_each_setting_with_its_range() -> None:
    schema = settings_json_schema()
    props = schema["properties"]
    assert set(props) == {s.name for s in SETTINGS}
    assert props["threshold"]["exclusiveMinimum"] == 0 and props["threshold"]["maximum"] == 1
    assert props["mode"]["enum"] == ["wsd", "paper", "base", "draft", "nudging"]
    assert props["window"]["type"] == "integer" and props["window"]["minimum"] == 1


def test_request_settings_name_the_unknown_key() -> None:
    base = DecodingSettings(max_tokens=64)
    assert DecodingSettings.from_request({"threshold": 0.6, "draft-max-tokens": 10}, base) == \
        base.with_changes(threshold=0.6, draft_max_tokens=10)
    with pytest.raises(ConfigError, match="unknown setting 'treshold'"):
        DecodingSettings.from_request({"treshold": 0.6})
    with pytest.raises(ConfigError, match="window must be >= 1"):
        DecodingSettings.from_request({"window": 0})


def test_readme_key_table_is_the_generated_one() -> None:
    from tui.actions import readme_key_table

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert readme_key_table() in readme, "regenerate the README's key table: python -m tui.actions"


def test_bindings_palette_help_and_hint_come_from_the_actions_table() -> None:
    from tui.actions import ANSWER, CHAT, CHAT_ACTIONS, CHAT_LIST, empty_chat_hint, palette_actions
    from tui.screens.chat import EMPTY_HINT, ChatScreen
    from tui.screens.help import help_text
    from tui.widgets.answer import AnswerWidget
    from tui.widgets.sidebar import ChatList

    owners = {CHAT: ChatScreen, CHAT_LIST: ChatList, ANSWER: AnswerWidget}  # each scope's widget
    for action in CHAT_ACTIONS:
        if action.action and action.keys:
            owner = owners[action.scope]
            bound = {(b.key, b.action) for b in owner.BINDINGS}
            assert (action.keys, action.action) in bound
            assert hasattr(owner, f"action_{action.action}"), action.action
    for action in palette_actions():
        name = action.action.split("(")[0]
        assert hasattr(ChatScreen, f"action_{name}"), name
    from rich.console import Console

    console = Console(width=200, record=True)
    console.print(help_text())
    shown = " ".join(console.export_text().split())
    for action in CHAT_ACTIONS:
        assert " ".join(action.description.split())[:40] in shown, action.description
    assert empty_chat_hint() in EMPTY_HINT.plain
    assert "ctrl+t inspects one" in empty_chat_hint()
