"""GGUF headers written byte by byte, well-formed or not, for the tests of the header
reader against hostile files (tests/test_gguf_hostile.py)."""

from __future__ import annotations

import struct

STRING, ARRAY, UINT32, INT32, UINT64, FLOAT32, BOOL = 8, 9, 4, 5, 10, 6, 7


def text(value: str | bytes) -> bytes:
    raw = value.encode() if isinstance(value, str) else value
    return struct.pack("<Q", len(raw)) + raw


def u32(value: int) -> bytes:
    return struct.pack("<I", value)


def array(item_type: int, items: list[bytes], count: int | None = None) -> bytes:
    return u32(item_type) + struct.pack("<Q", len(items) if count is None else count) + b"".join(items)


def kv(key: str, vtype: int, payload: bytes) -> bytes:
    return text(key) + u32(vtype) + payload


def header(kvs: list[bytes], n_kv: int | None = None, n_tensors: int = 0, version: int = 3,
           tensors: bytes = b"") -> bytes:
    return (b"GGUF" + struct.pack("<IQQ", version, n_tensors, len(kvs) if n_kv is None else n_kv)
            + b"".join(kvs) + tensors)


def tensor(name: str, shape: tuple[int, ...], ggml_type: int = 0, offset: int = 0) -> bytes:
    return text(name) + u32(len(shape)) + b"".join(struct.pack("<Q", d) for d in shape) + u32(ggml_type) \
        + struct.pack("<Q", offset)


def nested(depth: int) -> bytes:
    """An array of arrays `depth` deep, with one u32 at the bottom."""
    payload = array(UINT32, [u32(7)])
    for _ in range(depth - 1):
        payload = u32(ARRAY) + struct.pack("<Q", 1) + payload
    return payload
