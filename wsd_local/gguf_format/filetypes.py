"""GGUF file types (llama.cpp's `llama_ftype`, stored as `general.file_type`): the one
table the program uses to name them, and the types `wsd models convert` can produce.

The table is derived from `gguf.LlamaFileType`, so a type that llama.cpp adds arrives
with the gguf package. Names are spelled as `llama-quantize` spells them: the enum's
MOSTLY_/ALL_ prefixes dropped (MOSTLY_Q4_K_M -> Q4_K_M, ALL_F32 -> F32).
"""

from __future__ import annotations

import gguf

# Every file type, by name. GUESSED is llama.cpp's "no type recorded", not a type.
FILE_TYPES: dict[str, gguf.LlamaFileType] = {
    ftype.name.removeprefix("MOSTLY_").removeprefix("ALL_"): ftype
    for ftype in gguf.LlamaFileType
    if ftype is not gguf.LlamaFileType.GUESSED
}
_NAMES: dict[int, str] = {int(ftype): name for name, ftype in FILE_TYPES.items()}

# Targets of `wsd models convert --quant`, each with its size per weight relative to
# bf16: the converter checks free disk space with it before writing anything.
CONVERT_TARGETS: dict[str, float] = {
    "F32": 2.0, "F16": 1.0, "BF16": 1.0, "Q8_0": 0.54, "Q6_K": 0.42, "Q5_K_M": 0.36,
    "Q5_K_S": 0.35, "Q5_0": 0.35, "Q4_K_M": 0.31, "Q4_K_S": 0.29, "Q4_0": 0.29, "Q3_K_M": 0.25,
}
# Targets the converter writes itself (no llama.cpp quantizer run).
FLOAT_TYPES = ("F32", "F16", "BF16")


def file_type_name(value: int) -> str | None:
    """The name of a `general.file_type` value (Q4_K_M, BF16, ...); None for GUESSED or
    a value this gguf package does not know."""
    return _NAMES.get(value)
