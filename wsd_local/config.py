"""Decoding and runtime settings: one validated dataclass each."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from .errors import ConfigError

#: `wsd` is online weak-to-strong decoding (the switch is found while the drafter
#: writes); `paper` is the reference pipeline (draft everything, check, continue);
#: `base` and `draft` run one model alone, for comparison.
MODES = ("wsd", "paper", "base", "draft")


@dataclass(frozen=True)
class DecodingSettings:
    mode: str = "wsd"
    threshold: float = 0.8  # gamma: window score that hands over to the base model
    window: int = 6  # w: draft tokens in the geometric-mean window
    draft_max_tokens: int = 512
    max_tokens: int = 2048  # answer length in total (kept draft + continuation)
    chunk_tokens: int = 16  # online mode: drafter tokens between two scoring passes
    temperature: float = 0.0  # 0 means greedy
    top_p: float = 1.0
    seed: int = 0
    system: str | None = None

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"unknown mode {self.mode!r}", f"use one of: {', '.join(MODES)}")
        if not (isinstance(self.threshold, (int, float)) and math.isfinite(self.threshold)
                and 0.0 < self.threshold <= 1.0):
            raise ConfigError(f"threshold must be in (0, 1], got {self.threshold}",
                              "the paper's default is 0.8")
        _require_int(self.window, "window", minimum=1, hint="the paper's default is 6")
        _require_int(self.draft_max_tokens, "draft-max-tokens", minimum=0)
        _require_int(self.max_tokens, "max-tokens", minimum=1)
        _require_int(self.chunk_tokens, "chunk-tokens", minimum=1)
        _require_int(self.seed, "seed", minimum=0)
        if not (math.isfinite(self.temperature) and self.temperature >= 0.0):
            raise ConfigError(f"temperature must be >= 0, got {self.temperature}",
                              "0 means greedy decoding")
        if not (math.isfinite(self.top_p) and 0.0 < self.top_p <= 1.0):
            raise ConfigError(f"top-p must be in (0, 1], got {self.top_p}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0

    def with_changes(self, **changes: Any) -> "DecodingSettings":
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "DecodingSettings":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class RuntimeSettings:
    """How models are loaded: context size, threads, GPU offload."""

    n_ctx: int = 4096
    threads: int | None = None  # None: llama.cpp's default for this machine
    n_gpu_layers: int = -1  # -1 offloads every layer when a GPU backend is built in
    log_path: str | None = None  # llama.cpp's log file; None picks the data dir

    def __post_init__(self) -> None:
        _require_int(self.n_ctx, "ctx", minimum=64)
        if self.threads is not None:
            _require_int(self.threads, "threads", minimum=1)
        _require_int(self.n_gpu_layers, "n-gpu-layers", minimum=-1)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _require_int(value: Any, name: str, minimum: int, hint: str | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name} must be a whole number, got {value!r}", hint)
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}", hint)


__all__ = ["DecodingSettings", "RuntimeSettings", "MODES"]
