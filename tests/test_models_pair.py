"""Pair check: shared tokenizer decided on the vocabularies, role warnings."""

from __future__ import annotations

from pathlib import Path

import pytest

from devtools import tiny
from wsd_local.models.pair import check_pair

pytest.importorskip("tokenizers")


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("pair")
    return {
        "drafter": tiny.make_tiny_gguf(root, "Q8_0", seed=0),
        "base": tiny.make_tiny_gguf(root, "F32", seed=1, chat_template=False),
        "chatty_base": tiny.make_tiny_gguf(root, "F32", seed=2),
        "bare_drafter": tiny.make_tiny_gguf(root, "Q8_0", seed=3, chat_template=False),
    }


def test_same_tokenizer_different_weights_and_names(models: dict[str, Path]) -> None:
    report = check_pair(models["drafter"], models["base"])
    assert report.shared_tokenizer
    assert report.reason == "identical 320-token vocabularies"
    assert report.drafter_tokenizer == report.base_tokenizer == "gpt2/llama-bpe"
    assert report.warnings == []
    assert report.drafter_has_chat_template and not report.base_has_chat_template


def test_demo_pair_does_not_share(demo_paths: dict[str, Path]) -> None:
    report = check_pair(demo_paths["drafter"], demo_paths["base"])
    assert not report.shared_tokenizer
    assert "gpt2 vs llama" in report.reason
    assert (report.drafter_vocab, report.base_vocab) == (49152, 262144)
    assert report.warnings == []


def test_same_type_different_vocabulary(models: dict[str, Path], demo_paths: dict[str, Path]) -> None:
    # Both byte-level BPE ("gpt2"), but 49152 vs 320 tokens.
    report = check_pair(demo_paths["drafter"], models["base"])
    assert not report.shared_tokenizer
    assert "different vocabulary sizes (49152 vs 320)" in report.reason


def test_role_warnings(models: dict[str, Path]) -> None:
    report = check_pair(models["bare_drafter"], models["chatty_base"])
    assert report.shared_tokenizer
    assert len(report.warnings) == 2
    assert "has a chat template" in report.warnings[0] and "pretrained base" in report.warnings[0]
    assert "has no chat template" in report.warnings[1]
