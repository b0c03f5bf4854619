"""A safetensors checkpoint is untrusted input: whatever the bytes of a header or an
index, `SafetensorsIndex` gives an index or a one-line ModelError, never another
exception, and an index cannot name a file outside the checkpoint's folder."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wsd_local.errors import ModelError
from wsd_local.fsutil import path_inside
from wsd_local.models.safetensors_reader import SafetensorsIndex


def safetensors(header: object, data: bytes = b"", length: int | None = None) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw) if length is None else length) + raw + data


def folder_with(tmp: Path, files: dict[str, bytes]) -> Path:
    folder = tmp / "ckpt"
    folder.mkdir(exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


@pytest.mark.parametrize("name", ["../outside.safetensors", "/etc/passwd", "sub/../../x.safetensors",
                                  "..\\x.safetensors", "C:/x.safetensors", "config.json"])
def test_an_index_cannot_name_a_file_outside_the_folder(tmp_path: Path, name: str) -> None:
    (tmp_path / "outside.safetensors").write_bytes(safetensors({"a": {"dtype": "F32", "shape": [1],
                                                                      "data_offsets": [0, 4]}}, b"\0" * 4))
    index = json.dumps({"metadata": {}, "weight_map": {"a": name}}).encode()
    folder = folder_with(tmp_path, {"model.safetensors.index.json": index})
    with pytest.raises(ModelError, match="the index may only name weight files next to it") as caught:
        SafetensorsIndex(folder)
    assert repr(name) in caught.value.one_line()


def test_path_inside_refuses_every_way_out(tmp_path: Path) -> None:
    assert path_inside(tmp_path, "sub/model.gguf") == tmp_path / "sub" / "model.gguf"
    for name in ("", "..", "../x", "a/../../x", "/abs", "a//b", "./x", "a\\..\\x", "C:x", "x\x00y"):
        assert path_inside(tmp_path, name) is None, name


@pytest.mark.parametrize("header, problem", [
    ([1, 2], "header is not a JSON object"),
    ({"a": "F32"}, "is None; only BF16, F16 and F32"),
    ({"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}, "truncated or corrupt"),
    ({"a": {"dtype": "F32", "shape": ["2"], "data_offsets": [0, 8]}}, "truncated or corrupt"),
    ({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 0]}}, "truncated or corrupt"),
    ({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0]}}, "truncated or corrupt"),
    ({"a": {"dtype": "F32", "shape": [2**62, 2**62], "data_offsets": [0, 4]}}, "truncated or corrupt"),
    ({"a": {"dtype": "I64", "shape": [1], "data_offsets": [0, 8]}}, "'I64'; only BF16, F16 and F32"),
], ids=["list", "no-dtype", "negative", "text-dim", "backwards", "one-offset", "huge", "int-dtype"])
def test_crafted_headers_are_one_line_errors(tmp_path: Path, header: object, problem: str) -> None:
    folder = folder_with(tmp_path, {"model.safetensors": safetensors(header, b"\0" * 16)})
    with pytest.raises(ModelError, match=problem):
        SafetensorsIndex(folder)


@st.composite
def headers(draw) -> bytes:
    """Headers shaped like real ones with wrong values in places, or any bytes."""
    if draw(st.booleans()):
        return draw(st.binary(max_size=64))
    number = st.one_of(st.integers(-2**70, 2**70), st.floats(allow_nan=False), st.text(max_size=3), st.none())
    entry = st.fixed_dictionaries({
        "dtype": st.sampled_from(["F32", "F16", "BF16", "I8", 3]),
        "shape": st.one_of(st.lists(st.one_of(st.integers(0, 9), number), max_size=3), number),
        "data_offsets": st.one_of(st.lists(st.one_of(st.integers(0, 64), number), max_size=3), number),
    })
    value = st.one_of(entry, number, st.lists(number, max_size=2))
    header = draw(st.one_of(st.dictionaries(st.text(max_size=6), value, max_size=3), st.lists(number, max_size=2),
                            number))
    raw = json.dumps(header).encode()
    length = draw(st.sampled_from([len(raw), len(raw) + 1, 0, 2**63]))
    return struct.pack("<Q", length) + raw + draw(st.binary(max_size=64))


@settings(max_examples=200, deadline=None)
@given(data=headers())
def test_any_header_gives_an_index_or_a_one_line_error(tmp_path_factory: pytest.TempPathFactory,
                                                        data: bytes) -> None:
    folder = tmp_path_factory.getbasetemp() / "any-safetensors"
    folder.mkdir(exist_ok=True)
    (folder / "model.safetensors").write_bytes(data)
    try:
        with SafetensorsIndex(folder) as index:
            for name in index.tensors:
                index.raw(name)  # every tensor it lists can be mapped
            index.weight_dtype()
    except ModelError as exc:
        assert "\n" not in exc.one_line()


@settings(max_examples=100, deadline=None)
@given(index=st.one_of(st.binary(max_size=40), st.recursive(
    st.one_of(st.none(), st.integers(), st.text(max_size=8)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=10), inner, max_size=3)),
    max_leaves=8).map(lambda v: json.dumps({"weight_map": v}).encode())))
def test_any_index_gives_an_index_or_a_one_line_error(tmp_path_factory: pytest.TempPathFactory,
                                                       index: bytes) -> None:
    folder = tmp_path_factory.getbasetemp() / "any-index"
    folder.mkdir(exist_ok=True)
    (folder / "model.safetensors.index.json").write_bytes(index)
    try:
        SafetensorsIndex(folder)
    except ModelError as exc:
        assert "\n" not in exc.one_line()
