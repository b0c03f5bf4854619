"""Reading a safetensors checkpoint without torch: headers parsed here, tensors as
memory maps (bf16 needs no torch; a tensor costs no memory until touched).

Checkpoints come from anywhere: every header is checked up front (dtype, sizes, the
data really in the file), so whatever the bytes, the result is an index or a one-line
`ModelError`, and an index cannot name a file outside the checkpoint's folder. gguf's
`utility.SafetensorsLocal` reads the same format but trusts the header length the first
8 bytes claim and checks neither dtypes nor data ranges, hence this reader.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import gguf
import numpy as np

from ..errors import ModelError
from ..fsutil import path_inside

# The float types a checkpoint may hold; numpy holds bf16 as its bit pattern (uint16).
_NUMPY = {"BF16": np.uint16, "F16": np.float16, "F32": np.float32}
# A header is JSON of a few hundred bytes per tensor; more than this is not one.
_MAX_HEADER = 100 * 1024 * 1024


@dataclass(frozen=True)
class StTensor:
    name: str
    file: Path
    dtype: str            # BF16 | F16 | F32
    shape: tuple[int, ...]
    start: int            # absolute byte offsets in the file
    end: int


class SafetensorsIndex:
    """Tensor locations across a checkpoint folder's .safetensors files (headers only);
    `raw` maps a tensor's data on demand."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.tensors: dict[str, StTensor] = {}
        self._maps: dict[Path, np.memmap] = {}
        for path in self._files(folder):
            try:
                self._read_header(path)
            except OSError as exc:
                raise ModelError(f"cannot read {path}: {exc.strerror or exc}",
                                 "check the file, or download the checkpoint again") from None

    def __enter__(self) -> "SafetensorsIndex":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def _files(folder: Path) -> list[Path]:
        # A sharded checkpoint names its files in the index; other .safetensors files
        # lying next to them (e.g. Mistral's consolidated.safetensors) are not part of it.
        index = folder / "model.safetensors.index.json"
        if index.is_file():
            try:
                weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
                names = sorted(set(weight_map.values()))
            except (ValueError, KeyError, TypeError, AttributeError, RecursionError, OSError) as exc:
                raise ModelError(f"{index} is unreadable ({exc.__class__.__name__})",
                                 "download the checkpoint again") from None
            files = []
            for name in names:
                path = path_inside(folder, name)
                if path is None or not name.endswith(".safetensors"):
                    raise ModelError(f"{index} names {name!r}, not a .safetensors file in {folder}",
                                     "the index may only name weight files next to it")
                files.append(path)
            missing = [f.name for f in files if not f.is_file()]
            if missing:
                raise ModelError(f"checkpoint files missing in {folder}: {', '.join(missing)}",
                                 "download the checkpoint again")
            return files
        files = sorted(folder.glob("*.safetensors"))
        if not files:
            raise ModelError(f"{folder} has no .safetensors weights",
                             "a checkpoint in Hugging Face layout (config.json + *.safetensors) is needed")
        return files

    def _read_header(self, path: Path) -> None:
        size = path.stat().st_size
        with path.open("rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                raise ModelError(f"{path.name} is not a safetensors file (too short)", "download it again")
            n = int.from_bytes(head, "little")
            if n <= 0 or n > min(size - 8, _MAX_HEADER):
                raise ModelError(f"{path.name} is not a safetensors file (bad header length)", "download it again")
            try:
                header = json.loads(fh.read(n))
            except (ValueError, RecursionError):
                raise ModelError(f"{path.name} is not a safetensors file (header is not JSON)",
                                 "download it again") from None
        if not isinstance(header, dict):
            raise ModelError(f"{path.name} is not a safetensors file (header is not a JSON object)",
                             "download it again")
        base = 8 + n
        for name, meta in header.items():
            if name == "__metadata__":
                continue
            dtype = meta.get("dtype") if isinstance(meta, dict) else None
            if dtype not in _NUMPY:
                raise ModelError(f"tensor {name!r} in {path.name} is {dtype!r}; only BF16, F16 and F32 weights "
                                 "can be converted", "use an unquantized checkpoint")
            shape, begin, end = _layout(meta)
            width = np.dtype(_NUMPY[dtype]).itemsize
            if shape is None or (end - begin) != math.prod(shape) * width or base + end > size:
                raise ModelError(f"{path.name} is truncated or corrupt (tensor {name!r})",
                                 "download the checkpoint again")
            self.tensors[name] = StTensor(name, path, dtype, shape, base + begin, base + end)

    def raw(self, name: str) -> np.ndarray:
        """The tensor's stored values as a read-only memory-mapped array: uint16 for
        BF16 (bit patterns), float16 or float32 otherwise."""
        t = self.tensors[name]
        mm = self._maps.get(t.file)
        if mm is None:
            mm = self._maps[t.file] = np.memmap(t.file, dtype=np.uint8, mode="r")
        return mm[t.start:t.end].view(_NUMPY[t.dtype]).reshape(t.shape)

    def weight_dtype(self) -> str:
        """The float type holding most of the matrix bytes (F32 if there are none)."""
        counts: Counter[str] = Counter()
        for t in self.tensors.values():
            if len(t.shape) >= 2:
                counts[t.dtype] += t.end - t.start
        return counts.most_common(1)[0][0] if counts else "F32"

    def close(self) -> None:
        self._maps.clear()


def _layout(meta: dict) -> tuple[tuple[int, ...] | None, int, int]:
    """(shape, begin, end) of a header entry; shape None when the entry is not whole
    numbers in order (a negative size, offsets backwards, text where numbers belong)."""
    def whole(value: object) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and value >= 0

    shape, offsets = meta.get("shape"), meta.get("data_offsets")
    if not (isinstance(shape, list) and all(whole(d) for d in shape) and len(shape) <= 8
            and isinstance(offsets, list) and len(offsets) == 2 and all(whole(o) for o in offsets)
            and offsets[0] <= offsets[1]):
        return None, 0, 0
    return tuple(shape), offsets[0], offsets[1]


def to_f32(values: np.ndarray, dtype: str) -> np.ndarray:
    """Stored values (as `SafetensorsIndex.raw` gives them) as float32."""
    if dtype == "BF16":
        # gguf's BF16 codec works on bytes: uint16 bit patterns viewed as pairs.
        return gguf.quants.dequantize(values.view(np.uint8), gguf.GGMLQuantizationType.BF16)
    return values.astype(np.float32)
