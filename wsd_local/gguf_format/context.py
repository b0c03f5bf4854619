"""What a context size asks of the machine, known before llama.cpp allocates it.

A context far beyond what a model was trained for, or beyond the machine's memory,
makes llama.cpp fail while creating the context ("Failed to create llama_context"),
or the machine swap. `ContextNeeds` reads the model's trained context and attention
shape from the GGUF header (no loading) so the error can say what is wrong.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError, ModelError
from .reader import format_bytes, read_gguf


def physical_memory() -> int | None:
    """Bytes of RAM in this machine, or None where the system does not say."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


@dataclass(frozen=True)
class ContextNeeds:
    n_ctx: int
    trained: int | None  # the model's training context (`<arch>.context_length`)
    kv_bytes: int | None  # KV cache for n_ctx tokens

    @classmethod
    def of(cls, path: Path, n_ctx: int) -> "ContextNeeds":
        try:
            info = read_gguf(path)
        except ModelError:  # llama.cpp will say what is wrong with the file
            return cls(n_ctx, None, None)
        return cls(n_ctx, info.context_length, info.kv_cache_bytes(n_ctx))

    def describe(self) -> str:
        """e.g. "trained for 32768 tokens; its KV cache would need 1.84 TB"."""
        parts = []
        if self.trained:
            parts.append(f"trained for {self.trained} tokens")
        if self.kv_bytes:
            parts.append(f"its KV cache would need {format_bytes(self.kv_bytes)}")
        return "; ".join(parts) or "context size unknown"

    def check_fits_memory(self, name: str, memory: int | None = None) -> None:
        """ConfigError when the KV cache alone is larger than the machine's memory."""
        memory = memory if memory is not None else physical_memory()
        if not memory or not self.kv_bytes or self.kv_bytes <= memory:
            return
        fitting = self.n_ctx * memory // (2 * self.kv_bytes)  # half the memory for the cache
        suggestion = min(self.trained, fitting) if self.trained else fitting
        raise ConfigError(
            f"--ctx {self.n_ctx} is too large for {name} ({self.describe()}, more than this "
            f"machine's {format_bytes(memory)} of memory)",
            f"use --ctx {max(suggestion, 64)} or less")


__all__ = ["ContextNeeds", "physical_memory"]
