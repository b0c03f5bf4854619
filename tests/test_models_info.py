"""GGUF metadata without loading the model (wsd_local.gguf_format.reader)."""

from __future__ import annotations

from pathlib import Path

import gguf
import pytest

from wsd_local.errors import ModelError
from devtools import tiny
from wsd_local.gguf_format.reader import format_bytes, format_count, read_gguf

pytest.importorskip("tokenizers")


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny.make_tiny_gguf(tmp_path_factory.mktemp("info"), "Q8_0")


def test_demo_drafter(demo_paths: dict[str, Path]) -> None:
    info = read_gguf(demo_paths["drafter"], arrays={"tokenizer.ggml.tokens"})
    assert info.architecture == "llama"
    assert info.quantization == "Q4_1"
    assert info.context_length == 8192
    assert info.vocab_size == 49152
    assert info.tokenizer_model == "gpt2" and info.tokenizer_pre == "smollm"
    assert info.chat_template and "<|im_start|>" in info.chat_template
    assert 130e6 < info.parameter_count < 140e6
    assert info.special_tokens()["eos"] == "2 '<|im_end|>'"


def test_demo_base(demo_paths: dict[str, Path]) -> None:
    info = read_gguf(demo_paths["base"])
    assert info.architecture == "gemma3"
    assert info.quantization == "Q4_K_M"
    assert info.context_length == 32768
    assert info.vocab_size == 262144  # from the skipped array's length
    assert info.chat_template is None
    assert "tokenizer.ggml.tokens" not in info.metadata  # long arrays skipped unless asked for
    assert 260e6 < info.parameter_count < 280e6


def test_reader_agrees_with_gguf_package(tiny_gguf: Path) -> None:
    """Our header walk returns what gguf.GGUFReader returns (keys, values, tensors)."""
    ours = read_gguf(tiny_gguf, arrays={"tokenizer.ggml.tokens", "tokenizer.ggml.token_type",
                                        "tokenizer.ggml.merges"})
    reader = gguf.GGUFReader(tiny_gguf)
    for key, field in reader.fields.items():
        if key.startswith("GGUF."):
            continue
        expected = field.contents()
        got = ours.metadata[key]
        if isinstance(expected, float):
            assert got == pytest.approx(expected), key
        else:
            assert got == expected, key
    assert len(ours.tensors) == len(reader.tensors)
    base = reader.tensors[0].data_offset - ours.tensors[0].offset
    for mine, theirs in zip(ours.tensors, reader.tensors):
        assert mine.name == theirs.name
        assert mine.type_name == theirs.tensor_type.name
        assert list(mine.shape) == [int(d) for d in theirs.shape]
        assert mine.n_elements == int(theirs.n_elements) and mine.n_bytes == int(theirs.n_bytes)
        assert mine.offset + base == theirs.data_offset
    assert ours.quantization == "Q8_0"
    summary = ours.summary()
    assert summary["has_chat_template"] and summary["tokenizer_pre"] == "llama-bpe"


def test_bad_files(tmp_path: Path, tiny_gguf: Path) -> None:
    with pytest.raises(ModelError, match="model file not found"):
        read_gguf(tmp_path / "nope.gguf")
    with pytest.raises(ModelError, match="is a directory, not a GGUF file"):
        read_gguf(tmp_path)
    text = tmp_path / "notes.gguf"
    text.write_text("just some text, not a model\n")
    with pytest.raises(ModelError, match="not a GGUF file"):
        read_gguf(text)
    empty = tmp_path / "empty.gguf"
    empty.write_bytes(b"")
    with pytest.raises(ModelError, match="not a GGUF file"):
        read_gguf(empty)
    data = tiny_gguf.read_bytes()
    for cut in (10, 2000, len(data) - 100):  # inside the header, the metadata, the tensor data
        part = tmp_path / f"cut{cut}.gguf"
        part.write_bytes(data[:cut])
        with pytest.raises(ModelError, match="truncated"):
            read_gguf(part)


def test_errors_are_one_line(tmp_path: Path) -> None:
    text = tmp_path / "x.gguf"
    text.write_text("hello")
    with pytest.raises(ModelError) as err:
        read_gguf(text)
    assert "\n" not in err.value.one_line()


def test_formatting() -> None:
    assert format_count(134_515_008) == "135M"
    assert format_count(3_212_749_824) == "3.21B"
    assert format_count(None) == "-"
    assert format_bytes(98_362_432) == "98.4 MB"
    assert format_bytes(512) == "512 B"


def test_file_type_names_come_from_gguf() -> None:
    """One table (wsd_local.gguf_format.filetypes) names file types for `info`, the backend
    and the converter, in llama-quantize's spelling."""
    from wsd_local.gguf_format.filetypes import CONVERT_TARGETS, FILE_TYPES, FLOAT_TYPES, file_type_name

    assert file_type_name(0) == "F32" and file_type_name(15) == "Q4_K_M" and file_type_name(32) == "BF16"
    assert file_type_name(int(gguf.LlamaFileType.GUESSED)) is None and file_type_name(4) is None
    assert FILE_TYPES["Q8_0"] == gguf.LlamaFileType.MOSTLY_Q8_0
    assert set(CONVERT_TARGETS) <= set(FILE_TYPES) and set(FLOAT_TYPES) <= set(CONVERT_TARGETS)
