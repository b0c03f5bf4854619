"""A GGUF header is untrusted input: whatever its bytes, `read_gguf` gives a GGUFInfo
whose properties all work, or a one-line ModelError, never another exception; and one
bad file in the models folder does not break `wsd models list`."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gguf_bytes import ARRAY, BOOL, FLOAT32, INT32, STRING, UINT32, UINT64, array, header, kv, nested, tensor, text, u32
from wsd_local.cli import main
from wsd_local.errors import ModelError
from wsd_local.gguf_format.reader import GGUFInfo, read_gguf

ARCH = kv("general.architecture", STRING, text("llama"))

CRAFTED = {
    "nested arrays": ([ARCH, kv("x.deep", ARRAY, nested(50))], "arrays nested more than 4 deep in key x.deep"),
    "alignment 0": ([ARCH, kv("general.alignment", UINT32, u32(0))],
                    "general.alignment is 0, expected a power of two"),
    "alignment 48": ([ARCH, kv("general.alignment", UINT32, u32(48))],
                     "general.alignment is 48, expected a power of two"),
    "alignment as text": ([ARCH, kv("general.alignment", STRING, text("32"))],
                          "general.alignment is '32', expected a power of two"),
    "context length as text": ([ARCH, kv("llama.context_length", STRING, text("4096"))],
                               "llama.context_length is '4096', expected an integer"),
    "layer count as float": ([ARCH, kv("llama.block_count", FLOAT32, struct.pack("<f", 2.5))],
                             "llama.block_count is 2.5, expected an integer"),
    "architecture as a number": ([kv("general.architecture", UINT32, u32(5))],
                                 "general.architecture is 5, expected text"),
    "chat template as a list": ([ARCH, kv("tokenizer.chat_template", ARRAY, array(UINT32, [u32(1)]))],
                                "tokenizer.chat_template is [1], expected text"),
    "token id as bool": ([ARCH, kv("tokenizer.ggml.eos_token_id", BOOL, b"\x01")],
                         "tokenizer.ggml.eos_token_id is True, expected an integer"),
    "tokens that are numbers": ([ARCH, kv("tokenizer.ggml.tokens", ARRAY, array(INT32, [u32(1), u32(2)]))],
                                "tokenizer.ggml.tokens is [1, 2], expected a list of strings"),
    "head counts with text": ([ARCH, kv("llama.attention.head_count", ARRAY, array(STRING, [text("8")]))],
                              "llama.attention.head_count is ['8'], expected an integer or a list"),
    "absurd array count": ([ARCH, kv("x.big", ARRAY, array(UINT64, [], count=2**63))], "truncated"),
    "absurd nested count": ([ARCH, kv("x.big", ARRAY, u32(ARRAY) + struct.pack("<Q", 2**40))], "truncated"),
    "absurd string length": ([kv("general.architecture", STRING, struct.pack("<Q", 2**63) + b"llama")],
                             "truncated"),
    "unknown value type": ([ARCH, kv("x.odd", 99, b"\x00" * 8)], "unknown GGUF value type 99 for key x.odd"),
}


def write(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("case", CRAFTED)
def test_a_crafted_header_is_a_one_line_model_error(tmp_path: Path, case: str) -> None:
    kvs, problem = CRAFTED[case]
    path = write(tmp_path, "bad.gguf", header(kvs) + b"\x00" * 64)
    with pytest.raises(ModelError) as caught:
        read_gguf(path)
    assert problem in caught.value.one_line() and "\n" not in caught.value.one_line()


def test_absurd_counts_and_truncated_headers(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="implausible counts"):
        read_gguf(write(tmp_path, "many.gguf", header([], n_kv=2**40) + b"\x00" * 64))
    whole = header([ARCH, kv("llama.context_length", UINT32, u32(4096))], n_tensors=1,
                   tensors=tensor("w", (4, 4), 0, 0)) + b"\x00" * 96
    assert read_gguf(write(tmp_path, "whole.gguf", whole)).context_length == 4096
    for cut in range(24, len(whole) - 64, 7):  # every part of the header, cut short
        with pytest.raises(ModelError, match="truncated"):
            read_gguf(write(tmp_path, f"cut{cut}.gguf", whole[:cut]))


def test_shapes_the_memory_estimate_could_trip_on(tmp_path: Path) -> None:
    """Heads of size zero and a huge layer count give no estimate or a number, without
    dividing by zero or building a list per layer."""
    zero = header([ARCH, kv("llama.block_count", UINT32, u32(2)), kv("llama.embedding_length", UINT32, u32(64)),
                   kv("llama.attention.head_count", ARRAY, array(UINT32, [u32(0), u32(0)]))]) + b"\x00" * 64
    assert read_gguf(write(tmp_path, "zero.gguf", zero)).kv_cache_bytes(2048) is None
    huge = header([ARCH, kv("llama.block_count", UINT32, u32(2**32 - 1)),
                   kv("llama.embedding_length", UINT32, u32(4096)),
                   kv("llama.attention.head_count", UINT32, u32(32))]) + b"\x00" * 64
    info = read_gguf(write(tmp_path, "huge.gguf", huge))
    assert info.kv_cache_bytes(2048) == 2 * 2048 * 32 * (2**32 - 1) * (128 + 128)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_file_is_a_model_error(tmp_path: Path) -> None:
    path = write(tmp_path, "locked.gguf", header([ARCH]) + b"\x00" * 64)
    path.chmod(0)
    try:
        with pytest.raises(ModelError, match="cannot read .*locked.gguf: Permission denied"):
            read_gguf(path)
    finally:
        path.chmod(0o600)


def test_one_bad_file_does_not_break_models_list(empty_models_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    models = empty_models_dir
    for case in ("nested arrays", "alignment 0", "context length as text"):
        write(models, case.replace(" ", "-") + ".gguf", header(CRAFTED[case][0]) + b"\x00" * 64)
    write(models, "fine.gguf", header([ARCH, kv("llama.context_length", UINT32, u32(512))]) + b"\x00" * 64)
    assert main(["models", "list", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["fine"]["status"] == "unregistered" and rows["fine"]["context_length"] == 512
    for case in ("nested arrays", "alignment 0", "context length as text"):
        row = rows[case.replace(" ", "-")]
        assert row["status"] == "broken" and CRAFTED[case][1] in row["notes"]
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert "fine" in out and "general.alignment is 0, expected a power of two" in out


# -- any bytes ---------------------------------------------------------------------------

INTERPRETED = ["general.architecture", "general.name", "general.alignment", "general.file_type",
               "llama.context_length", "llama.block_count", "llama.embedding_length", "llama.vocab_size",
               "llama.attention.head_count", "llama.attention.head_count_kv", "llama.attention.key_length",
               "tokenizer.ggml.tokens", "tokenizer.ggml.eos_token_id", "tokenizer.chat_template",
               "tokenizer.ggml.model"]


@st.composite
def values(draw, depth: int = 0) -> tuple[int, bytes]:
    """(GGUF value type, payload): well-formed values of every type, and some that lie
    about their length or type."""
    kind = draw(st.sampled_from(["u32", "i32", "u64", "f32", "bool", "str", "arr", "junk"]))
    if kind == "u32":
        return UINT32, u32(draw(st.sampled_from([0, 1, 3, 32, 48, 4096, 2**31, 2**32 - 1])))
    if kind == "i32":
        return INT32, struct.pack("<i", draw(st.integers(-2**31, 2**31 - 1)))
    if kind == "u64":
        return UINT64, struct.pack("<Q", draw(st.integers(0, 2**64 - 1)))
    if kind == "f32":
        return FLOAT32, struct.pack("<f", draw(st.floats(width=32, allow_nan=True)))
    if kind == "bool":
        return BOOL, bytes([draw(st.integers(0, 255))])
    if kind == "str":
        return STRING, text(draw(st.binary(max_size=20)))
    if kind == "arr" and depth < 6:
        item_type, _ = draw(values(depth + 1))
        items = [draw(values(depth + 1)) for _ in range(draw(st.integers(0, 3)))]
        same = [payload for t, payload in items if t == item_type]
        count = draw(st.sampled_from([len(same), len(same) + 1, 2**40]))
        return ARRAY, u32(item_type) + struct.pack("<Q", count) + b"".join(same)
    return draw(st.integers(0, 20)), draw(st.binary(max_size=12))


@st.composite
def gguf_files(draw) -> bytes:
    kvs = []
    for _ in range(draw(st.integers(0, 6))):
        key = draw(st.sampled_from(INTERPRETED) | st.text(max_size=8))
        vtype, payload = draw(values())
        kvs.append(kv(key, vtype, payload))
    tensors = b"".join(tensor(draw(st.text(max_size=4)), tuple(draw(st.lists(st.integers(0, 2**40), max_size=3))),
                              draw(st.integers(0, 40)), draw(st.integers(0, 256)))
                       for _ in range(draw(st.integers(0, 2))))
    data = header(kvs, n_tensors=draw(st.integers(0, 2)), version=draw(st.sampled_from([2, 3, 3, 7])),
                  tensors=tensors) + draw(st.binary(max_size=300))
    cut = draw(st.integers(0, len(data)))
    flip = draw(st.integers(0, len(data)))
    data = data[:cut] if draw(st.booleans()) else data
    if flip < len(data) and draw(st.booleans()):
        data = data[:flip] + bytes([data[flip] ^ 0xFF]) + data[flip + 1:]
    return data


def exercise(info: GGUFInfo) -> None:
    """Everything `wsd models info/list` and the memory estimate read."""
    json.dumps(info.summary())
    info.kv_cache_bytes(4096)
    _ = (info.chat_template, info.tokens, info.dominant_tensor_type, info.parameter_count)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=gguf_files())
def test_any_header_is_read_or_refused_in_one_line(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    path = tmp_path_factory.getbasetemp() / "any.gguf"
    path.write_bytes(data)
    for arrays in (None, {"tokenizer.ggml.tokens", "llama.attention.head_count"}):
        try:
            info = read_gguf(path, arrays=arrays)
        except ModelError as exc:
            assert "\n" not in exc.one_line()
            continue
        exercise(info)


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=200))
def test_any_bytes_after_the_magic_are_read_or_refused(tmp_path_factory: pytest.TempPathFactory,
                                                       data: bytes) -> None:
    path = tmp_path_factory.getbasetemp() / "raw.gguf"
    path.write_bytes(b"GGUF" + data)
    try:
        exercise(read_gguf(path))
    except ModelError:
        pass
