"""The mode declarations (wsd_local/modes/): each mode is declared once, and settings,
the engine and the views follow from its declaration."""

from __future__ import annotations

import inspect

import pytest

from wsd_local.bench.compare_traces import differences
from wsd_local.settings import AUTO_REPETITION_STOP, SETTINGS, SETTINGS_BY_NAME, DecodingSettings
from wsd_local.errors import ConfigError
from wsd_local.modes import (BASE, COMPARISON_ORDER, DRAFTER, MODE_NAMES, MODES, Records, find_mode,
                             mode_named)

PROMPT = "Explain why the sky is blue in simple terms."
#: A value other than the default for every setting but `mode`.
OTHER_VALUES = {"threshold": 0.3, "window": 2, "draft_max_tokens": 4, "max_tokens": 8, "chunk_tokens": 3,
                "nudge_threshold": 0.9, "nudge_tokens": 3, "temperature": 0.7, "top_p": 0.5, "seed": 7,
                "system": "Answer in French.", "handoff": "text", "sample_base": True,
                "repetition_stop": 1, "switch_skip_repeats": True}


def test_the_mode_setting_offers_every_declared_mode() -> None:
    spec = SETTINGS_BY_NAME["mode"]
    assert spec.choices == MODE_NAMES == tuple(m.name for m in MODES)
    assert spec.default == MODES[0].name == DecodingSettings().mode
    for mode in MODES:
        assert f"{mode.name}: {mode.description}" in spec.help
    assert len(MODE_NAMES) == len(set(MODE_NAMES))
    assert sorted(m.name for m in COMPARISON_ORDER) == sorted(MODE_NAMES)


def test_an_unknown_mode_is_refused_in_one_line() -> None:
    with pytest.raises(ConfigError, match="unknown mode 'fast' .use one of wsd, paper, base, draft, nudging"):
        mode_named("fast")
    with pytest.raises(ConfigError, match="unknown mode 'fast'"):
        DecodingSettings(mode="fast")
    assert find_mode("fast") is None and find_mode(None) is None and find_mode(3) is None


def test_each_mode_names_a_decoder_with_the_shared_constructor_and_events() -> None:
    for mode in MODES:
        decoder = mode.decoder_class()
        assert callable(getattr(decoder, "events", None)), mode.name
        inspect.signature(decoder).bind(None, None, [], DecodingSettings(mode=mode.name), None,
                                        backend_name="CPU")


def test_declared_settings_are_settings_and_each_one_applies_to_a_mode() -> None:
    names = {spec.name for spec in SETTINGS} - {"mode"}
    assert set(OTHER_VALUES) == names
    for mode in MODES:
        assert set(mode.settings) <= names, mode.name
        assert len(set(mode.settings)) == len(mode.settings), mode.name
    assert set().union(*(m.settings for m in MODES)) == names


def test_what_a_mode_records_fits_the_models_it_uses() -> None:
    for mode in MODES:
        assert mode.models and set(mode.models) <= {DRAFTER, BASE}, mode.name
        assert (mode.records is Records.NOTHING) == (mode.alone is not None), mode.name
        assert mode.switches == (mode.records is Records.SWITCH)
        assert mode.hands_over == (mode.records is Records.HANDOVERS)
        assert not mode.online or mode.switches, mode.name


def test_auto_repetition_stop_follows_the_declarations() -> None:
    """On in every mode but paper (the paper's own pipeline) and nudging (its own loop
    guards, so it does not apply there even when set)."""
    auto = {m.name: DecodingSettings(mode=m.name).resolved().repetition_stop for m in MODES}
    assert auto == {"wsd": AUTO_REPETITION_STOP, "paper": 0, "base": AUTO_REPETITION_STOP,
                    "draft": AUTO_REPETITION_STOP, "nudging": 0}
    assert DecodingSettings(mode="nudging", repetition_stop=5).resolved().repetition_stop == 0
    assert DecodingSettings(mode="paper", repetition_stop=5).resolved().repetition_stop == 5


@pytest.mark.parametrize("name", MODE_NAMES)
def test_settings_a_mode_does_not_declare_leave_its_answer_as_it_was(demo_engine, name: str) -> None:
    mode = mode_named(name)
    settings = DecodingSettings(mode=name, max_tokens=16, draft_max_tokens=24)
    ignored = {k: v for k, v in OTHER_VALUES.items() if not mode.applies(k) and k not in mode.refuses}
    assert ignored and all(getattr(settings, k) != v for k, v in ignored.items())
    first = demo_engine.run(PROMPT, settings)
    again = demo_engine.run(PROMPT, settings.with_changes(**ignored))
    assert again.settings != first.settings
    assert differences(first, again) == ["settings"]
