"""GGUF metadata without loading the model.

`gguf.GGUFReader` builds a numpy view for every array item (5 s on the 135M demo
drafter, over 20 s on Gemma's 262k-token vocabulary), so this module walks the header
itself with `struct` over an mmap, taking value types and block sizes from `gguf`.
Large arrays (token lists, merges) are skipped unless asked for. It also checks that
the tensor data the header promises is in the file, so a truncated download is
reported as such instead of crashing llama.cpp later.

A model file is untrusted: `read_gguf` returns a `GGUFInfo` whose values have the types
its properties rely on, or raises a one-line `ModelError`. Counts are checked against
the bytes left before anything loops over them, and arrays nest at most `_MAX_NESTING`.
"""

from __future__ import annotations

import math
import mmap
import struct
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gguf

from ..errors import ModelError
from .filetypes import file_type_name

GGUF_MAGIC = b"GGUF"
_DEFAULT_ALIGNMENT = 32
# Arrays longer than this are skipped unless their key is asked for (token lists,
# scores, merges); everything else in a model header is small.
_SMALL_ARRAY = 64
_MAX_NESTING = 4  # arrays of arrays: GGUF allows them, models use one level at most
_MAX_COUNT = 2**32  # a context length, a layer count, a size: past this, no real model
_SPECIAL_KINDS = ("bos", "eos", "eot", "eom", "unk", "sep", "pad", "mask")

_SCALAR_FORMATS: dict[int, str] = {
    gguf.GGUFValueType.UINT8: "<B",
    gguf.GGUFValueType.INT8: "<b",
    gguf.GGUFValueType.UINT16: "<H",
    gguf.GGUFValueType.INT16: "<h",
    gguf.GGUFValueType.UINT32: "<I",
    gguf.GGUFValueType.INT32: "<i",
    gguf.GGUFValueType.FLOAT32: "<f",
    gguf.GGUFValueType.BOOL: "<?",
    gguf.GGUFValueType.UINT64: "<Q",
    gguf.GGUFValueType.INT64: "<q",
    gguf.GGUFValueType.FLOAT64: "<d",
}
_U64 = struct.Struct("<Q")


class _Truncated(Exception):
    pass


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]  # GGUF order: fastest-varying dimension first
    type_name: str
    n_elements: int
    n_bytes: int
    offset: int


@dataclass
class GGUFInfo:
    """What `wsd models info` shows, read from the header only."""

    path: Path
    file_size: int
    version: int
    metadata: dict[str, Any]
    tensors: list[TensorInfo]
    skipped_arrays: dict[str, int] = field(default_factory=dict)  # key -> length

    # -- general ----------------------------------------------------------------------
    @property
    def architecture(self) -> str:
        return str(self.metadata.get("general.architecture", "unknown"))

    @property
    def name(self) -> str | None:
        value = self.metadata.get("general.name")
        return str(value) if value else None

    def arch_value(self, key: str) -> Any:
        return self.metadata.get(f"{self.architecture}.{key}")

    def _arch_int(self, key: str) -> int | None:
        value = self.arch_value(key)
        return int(value) if value is not None else None

    def _text(self, key: str) -> str | None:
        value = self.metadata.get(key)
        return str(value) if value is not None else None

    @property
    def context_length(self) -> int | None:
        return self._arch_int("context_length")

    @property
    def block_count(self) -> int | None:
        return self._arch_int("block_count")

    @property
    def embedding_length(self) -> int | None:
        return self._arch_int("embedding_length")

    def kv_cache_bytes(self, n_ctx: int) -> int | None:
        """Bytes of llama.cpp's KV cache for a context of n_ctx tokens (16-bit keys and
        values in every layer), from the attention shape in the header; None when the
        header does not say. llama.cpp needs its compute buffers on top."""
        layers, embedding = self.block_count, self.embedding_length
        heads = self.arch_value("attention.head_count")
        kv_heads = self.arch_value("attention.head_count_kv")
        kv_heads = heads if kv_heads is None else kv_heads
        if not layers or not embedding or not heads:
            return None
        head = int(heads[0] if isinstance(heads, list) else heads)
        if head <= 0:
            return None
        key_length = int(self.arch_value("attention.key_length") or embedding // head)
        value_length = int(self.arch_value("attention.value_length") or embedding // head)
        if isinstance(kv_heads, list):
            kv_total = sum(int(h) for h in kv_heads[:layers])
        else:
            kv_total = int(kv_heads) * layers
        return 2 * n_ctx * kv_total * (key_length + value_length)

    @property
    def parameter_count(self) -> int:
        return sum(t.n_elements for t in self.tensors)

    @property
    def quantization(self) -> str:
        """The file type llama.cpp recorded (Q4_K_M, Q8_0, BF16, ...); without one, the
        tensor type holding most of the bytes."""
        try:
            name = file_type_name(int(self.metadata["general.file_type"]))
        except (KeyError, TypeError, ValueError):
            name = None
        return name or self.dominant_tensor_type or "unknown"

    @property
    def dominant_tensor_type(self) -> str | None:
        weights: Counter[str] = Counter()
        for tensor in self.tensors:
            weights[tensor.type_name] += tensor.n_bytes
        return weights.most_common(1)[0][0] if weights else None

    # -- tokenizer --------------------------------------------------------------------
    @property
    def vocab_size(self) -> int | None:
        if "tokenizer.ggml.tokens" in self.skipped_arrays:
            return self.skipped_arrays["tokenizer.ggml.tokens"]
        tokens = self.metadata.get("tokenizer.ggml.tokens")
        return len(tokens) if tokens is not None else self._arch_int("vocab_size")

    @property
    def tokenizer_model(self) -> str | None:
        return self._text("tokenizer.ggml.model")

    @property
    def tokenizer_pre(self) -> str | None:
        return self._text("tokenizer.ggml.pre")

    @property
    def chat_template(self) -> str | None:
        value = self.metadata.get("tokenizer.chat_template")
        return str(value) if value else None

    @property
    def special_token_ids(self) -> dict[str, int]:
        """bos/eos/eot/eom/unk/sep/pad/mask ids present in the header."""
        ids = {kind: self.metadata.get(f"tokenizer.ggml.{kind}_token_id") for kind in _SPECIAL_KINDS}
        return {kind: int(tid) for kind, tid in ids.items() if tid is not None}

    @property
    def tokens(self) -> list[str] | None:
        value = self.metadata.get("tokenizer.ggml.tokens")
        return list(value) if value is not None else None

    def special_tokens(self) -> dict[str, str]:
        """Special token ids with their text, where the token list was read."""
        tokens = self.tokens or []
        return {kind: f"{tid} {tokens[tid]!r}" if 0 <= tid < len(tokens) else str(tid)
                for kind, tid in self.special_token_ids.items()}

    def summary(self) -> dict[str, Any]:
        """A JSON-friendly digest (what `wsd models info --json` prints)."""
        return {
            "path": str(self.path),
            "file_size": self.file_size,
            "gguf_version": self.version,
            "architecture": self.architecture,
            "name": self.name,
            "parameters": self.parameter_count,
            "quantization": self.quantization,
            "context_length": self.context_length,
            "block_count": self.block_count,
            "embedding_length": self.embedding_length,
            "vocab_size": self.vocab_size,
            "tokenizer_model": self.tokenizer_model,
            "tokenizer_pre": self.tokenizer_pre,
            "special_tokens": self.special_tokens(),
            "has_chat_template": self.chat_template is not None,
            "tensor_count": len(self.tensors),
        }


class _Cursor:
    """Sequential little-endian reads from a buffer; raises _Truncated past the end."""

    def __init__(self, buf: mmap.mmap | bytes) -> None:
        self.buf = buf
        self.pos = 0
        self.size = len(buf)

    def take(self, fmt: str) -> Any:
        n = struct.calcsize(fmt)
        if self.pos + n > self.size:
            raise _Truncated
        (value,) = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += n
        return value

    def string(self) -> str:
        n = self.take("<Q")
        if self.pos + n > self.size:
            raise _Truncated
        raw = self.buf[self.pos:self.pos + n]
        self.pos += n
        return bytes(raw).decode("utf-8", errors="replace")

    def _string_array(self, count: int, keep: bool) -> tuple[list[str] | None, int | None]:
        # Token lists and merges hold 100k-400k strings: this tight loop keeps a
        # Llama-3 header under 0.2 s.
        buf, pos, size = self.buf, self.pos, self.size
        length_at = _U64.unpack_from
        out: list[str] | None = [] if keep else None
        try:
            for _ in range(count):
                (n,) = length_at(buf, pos)
                pos += 8
                if out is not None:
                    out.append(buf[pos:pos + n].decode("utf-8", errors="replace"))
                pos += n
        except struct.error:
            raise _Truncated from None
        if pos > size:
            raise _Truncated
        self.pos = pos
        return (out, None) if keep else (None, count)

    def value(self, vtype: int, key: str, want: set[str] | None, depth: int = 0) -> tuple[Any, int | None]:
        """(value, skipped length); arrays not wanted and longer than _SMALL_ARRAY are
        stepped over and reported by length only."""
        if vtype == gguf.GGUFValueType.STRING:
            return self.string(), None
        if vtype in _SCALAR_FORMATS:
            return self.take(_SCALAR_FORMATS[vtype]), None
        if vtype != gguf.GGUFValueType.ARRAY:
            raise ValueError(f"unknown GGUF value type {vtype} for key {key}")
        if depth >= _MAX_NESTING:
            raise ValueError(f"arrays nested more than {_MAX_NESTING} deep in key {key}")
        item_type = self.take("<I")
        count = self.take("<Q")
        # Every item takes some bytes: a count the rest of the file cannot hold is a
        # truncated (or forged) header, said before anything loops over it.
        if count * _smallest_item(item_type) > self.size - self.pos:
            raise _Truncated
        keep = count <= _SMALL_ARRAY or (want is not None and key in want)
        if item_type == gguf.GGUFValueType.STRING:
            return self._string_array(count, keep)
        if item_type in _SCALAR_FORMATS:
            fmt = _SCALAR_FORMATS[item_type]
            width = struct.calcsize(fmt)
            if self.pos + width * count > self.size:
                raise _Truncated
            values = list(struct.unpack_from(f"<{count}{fmt[1]}", self.buf, self.pos)) if keep else None
            self.pos += width * count
            return (values, None) if keep else (None, count)
        if keep:  # nested arrays: rare, small
            return [self.value(item_type, key, want, depth + 1)[0] for _ in range(count)], None
        for _ in range(count):
            self.value(item_type, key, want, depth + 1)
        return None, count


def _smallest_item(vtype: int) -> int:
    """Bytes the smallest value of a type takes (a string: its length; an array: its
    item type and count); 1 for a type the item reader will refuse."""
    if vtype in _SCALAR_FORMATS:
        return struct.calcsize(_SCALAR_FORMATS[vtype])
    return {gguf.GGUFValueType.STRING: 8, gguf.GGUFValueType.ARRAY: 12}.get(vtype, 1)


def read_gguf(path: str | Path, arrays: set[str] | None = None) -> GGUFInfo:
    """Parse the header of a GGUF file. `arrays`: keys of long arrays to read in full
    (e.g. {"tokenizer.ggml.tokens"}); other long arrays are skipped.

    Raises ModelError with one line for a missing file, a folder, a file that is not
    GGUF, or a truncated one."""
    path = Path(path).expanduser()
    if not path.exists():
        raise ModelError(f"model file not found: {path}", "check the path, or `wsd models list`")
    if path.is_dir():
        raise ModelError(f"{path} is a directory, not a GGUF file",
                         "give the path of a .gguf file inside it")
    if not path.is_file():
        raise ModelError(f"{path} is not a regular file", "give the path of a .gguf model file")
    try:
        return _read(path, arrays)
    except OSError as exc:
        raise ModelError(f"cannot read {path}: {exc.strerror or exc}",
                         "check the file's permissions, or download it again") from None


def _read(path: Path, arrays: set[str] | None) -> GGUFInfo:
    size = path.stat().st_size
    with path.open("rb") as fh:
        if fh.read(4) != GGUF_MAGIC:
            raise ModelError(f"{path} is not a GGUF file (no GGUF magic number)",
                             "give a .gguf model file; `wsd models convert` turns a safetensors checkpoint into one")
        if size < 24:
            raise ModelError(f"{path} is truncated ({size} bytes)",
                             "the download or conversion did not finish; run it again")
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            try:
                return _parse(path, buf, size, arrays)
            except _Truncated:
                raise ModelError(f"{path} is truncated (the header or tensor data ends early)",
                                 "the download or conversion did not finish; run it again") from None
            except (ValueError, UnicodeDecodeError, struct.error, OverflowError) as exc:
                raise ModelError(f"{path} is not a readable GGUF file ({exc})",
                                 "download or convert the model again") from None


def _parse(path: Path, buf: mmap.mmap, size: int, arrays: set[str] | None) -> GGUFInfo:
    cur = _Cursor(buf)
    cur.pos = 4
    version = cur.take("<I")
    if version not in (2, 3):
        raise ValueError(f"GGUF version {version} is not supported (2 or 3 expected)")
    n_tensors = cur.take("<Q")
    n_kv = cur.take("<Q")
    # Sanity bounds so a corrupt count fails fast instead of looping for hours.
    if n_tensors > 1_000_000 or n_kv > 1_000_000:
        raise ValueError(f"implausible counts ({n_tensors} tensors, {n_kv} keys)")
    metadata: dict[str, Any] = {}
    skipped: dict[str, int] = {}
    for _ in range(n_kv):
        key = cur.string()
        vtype = cur.take("<I")
        value, skipped_len = cur.value(vtype, key, arrays)
        if skipped_len is not None:
            skipped[key] = skipped_len
        else:
            metadata[key] = value
    raw_tensors = []
    for _ in range(n_tensors):
        name = cur.string()
        n_dims = cur.take("<I")
        if n_dims > 8:
            raise ValueError(f"tensor {name} has {n_dims} dimensions")
        shape = tuple(cur.take("<Q") for _ in range(n_dims))
        ttype = cur.take("<I")
        offset = cur.take("<Q")
        raw_tensors.append((name, shape, ttype, offset))
    _check_interpreted_keys(metadata, arrays)
    alignment = metadata.get("general.alignment", _DEFAULT_ALIGNMENT)
    data_start = -(-cur.pos // alignment) * alignment
    tensors: list[TensorInfo] = []
    end = data_start
    for name, shape, ttype, offset in raw_tensors:
        n_elements = math.prod(shape)
        try:
            qtype = gguf.GGMLQuantizationType(ttype)
            block, type_size = gguf.GGML_QUANT_SIZES[qtype]
            type_name = qtype.name
            n_bytes = n_elements // block * type_size
        except (ValueError, KeyError):
            type_name, n_bytes = f"type{ttype}", 0
        tensors.append(TensorInfo(name, shape, type_name, n_elements, n_bytes, offset))
        end = max(end, data_start + offset + n_bytes)
    if end > size:
        raise _Truncated
    return GGUFInfo(path=path, file_size=size, version=version, metadata=metadata,
                    tensors=tensors, skipped_arrays=skipped)


def _check_interpreted_keys(metadata: dict[str, Any], arrays: set[str] | None) -> None:
    """Raise ValueError (one line) unless every key GGUFInfo interprets has the shape
    it relies on: text where text belongs, integers in range where counts do."""
    def is_int(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)

    def need(key: str, ok: bool, expected: str) -> None:
        if key in metadata and not ok:
            value = metadata[key]
            shown = repr(value) if not isinstance(value, (list, str)) or len(value) < 40 else type(value).__name__
            raise ValueError(f"{key} is {shown}, expected {expected}")

    def count(value: Any) -> bool:
        return is_int(value) and 0 <= value < _MAX_COUNT

    alignment = metadata.get("general.alignment")
    need("general.alignment", is_int(alignment) and alignment > 0 and alignment & (alignment - 1) == 0,
         "a power of two")
    for key in ("general.architecture", "general.name", "tokenizer.ggml.model", "tokenizer.ggml.pre",
                "tokenizer.chat_template"):
        need(key, isinstance(metadata.get(key), str), "text")
    need("general.file_type", is_int(metadata.get("general.file_type")), "an integer")
    arch = metadata.get("general.architecture", "unknown")
    for name in ("context_length", "block_count", "embedding_length", "vocab_size",
                 "attention.key_length", "attention.value_length"):
        need(f"{arch}.{name}", count(metadata.get(f"{arch}.{name}")), f"an integer from 0 to {_MAX_COUNT - 1}")
    for name in ("attention.head_count", "attention.head_count_kv"):  # one count, or one per layer
        value = metadata.get(f"{arch}.{name}")
        need(f"{arch}.{name}", count(value) or (isinstance(value, list) and all(count(v) for v in value)),
             "an integer or a list of integers from 0 up")
    for kind in _SPECIAL_KINDS:
        need(f"tokenizer.ggml.{kind}_token_id", is_int(metadata.get(f"tokenizer.ggml.{kind}_token_id")),
             "an integer")
    tokens = metadata.get("tokenizer.ggml.tokens")
    need("tokenizer.ggml.tokens", isinstance(tokens, list) and all(isinstance(t, str) for t in tokens),
         "a list of strings")


def format_count(n: int | None) -> str:
    """1_234_567_890 -> '1.23B' (parameter counts, sizes in the tables)."""
    if n is None:
        return "-"
    for unit, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.3g}{unit}"
    return str(n)


def format_bytes(n: int | float | None) -> str:
    if n is None:
        return "-"
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{int(n)} B"
