"""A Hugging Face LlamaForCausalLM checkpoint as llama.cpp's "llama" architecture wants
it: the shape from config.json, and a plan of the GGUF tensors to write.

llama.cpp's conventions (as its convert_hf_to_gguf.py follows them, checked against a
numpy forward pass in tests/test_models_convert.py): tensor names from gguf's
`TensorNameMap`; q/k rows permuted from rotate-half RoPE to interleaved pairs; "llama3"
RoPE scaling as a `rope_freqs.weight` tensor; tied embeddings without output.weight.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import gguf
import numpy as np

from ..errors import ModelError
from .safetensors_reader import SafetensorsIndex, to_f32

ARCH = gguf.MODEL_ARCH.LLAMA
SUPPORTED_ARCHITECTURES = ("LlamaForCausalLM",)

_MT = gguf.MODEL_TENSOR
# One block's tensors in writing order, and those that may carry a bias.
_BLOCK = (_MT.ATTN_NORM, _MT.ATTN_Q, _MT.ATTN_K, _MT.ATTN_V, _MT.ATTN_OUT,
          _MT.FFN_NORM, _MT.FFN_GATE, _MT.FFN_UP, _MT.FFN_DOWN)
_BIASED = {_MT.ATTN_Q, _MT.ATTN_K, _MT.ATTN_V, _MT.ATTN_OUT, _MT.FFN_GATE, _MT.FFN_UP, _MT.FFN_DOWN}
# transformers names a Llama's weights model.* and lm_head.*; TensorNameMap also knows
# other layouts' names (Meta's layers.N.attention.wq, ...) whose q/k rows are not in
# rotate-half order, so those are refused.
_HF_PREFIXES = ("model.", "lm_head.")
# Bounds on config.json's sizes, checked before anything is sized by them: far above
# any Llama released, far below what would exhaust memory.
_LIMITS = {"vocab_size": 1 << 22, "hidden_size": 1 << 17, "num_hidden_layers": 1024,
           "num_attention_heads": 4096, "num_key_value_heads": 4096, "head_dim": 4096,
           "intermediate_size": 1 << 20, "max_position_embeddings": 1 << 24}


# -- config.json --------------------------------------------------------------------------

@dataclass
class LlamaConfig:
    vocab_size: int
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    ffn: int
    ctx: int
    rms_eps: float
    rope_theta: float
    rope_scaling: dict[str, Any] | None
    rope_kind: str | None           # None, "llama3" or "linear"
    tied: bool

    @classmethod
    def from_json(cls, raw: dict[str, Any], folder: Path) -> "LlamaConfig":
        if not isinstance(raw, dict):
            raise ModelError(f"config.json in {folder} is not a JSON object", "download the checkpoint again")
        archs = raw.get("architectures") or [raw.get("model_type", "unknown")]
        if not isinstance(archs, list):
            archs = [archs]
        if not any(a in SUPPORTED_ARCHITECTURES for a in archs):
            raise ModelError(f"unsupported architecture {', '.join(map(str, archs))} in {folder}",
                             "only LlamaForCausalLM (the Llama family, e.g. Pilot-3B) can be converted; "
                             "look for a ready-made GGUF of this model")
        _check_shape(raw, folder)
        try:
            hidden = int(raw["hidden_size"])
            heads = int(raw["num_attention_heads"])
            rope_scaling = raw.get("rope_scaling") or None
            cfg = cls(
                vocab_size=int(raw["vocab_size"]), hidden=hidden,
                layers=int(raw["num_hidden_layers"]), heads=heads,
                kv_heads=int(raw.get("num_key_value_heads") or heads),
                head_dim=int(raw.get("head_dim") or hidden // heads),
                ffn=int(raw["intermediate_size"]),
                ctx=int(raw.get("max_position_embeddings") or 4096),
                rms_eps=float(raw.get("rms_norm_eps", 1e-6)),
                rope_theta=float(raw.get("rope_theta", 10000.0)),
                rope_scaling=rope_scaling, rope_kind=_rope_kind(rope_scaling),
                tied=bool(raw.get("tie_word_embeddings", False)),
            )
        except (KeyError, TypeError, ValueError, ZeroDivisionError, AttributeError) as exc:
            raise ModelError(f"config.json in {folder} lacks or garbles {exc}",
                             "a Hugging Face Llama config is needed") from None
        if cfg.heads % cfg.kv_heads or cfg.head_dim < 2 or cfg.head_dim % 2 or not (
                math.isfinite(cfg.rms_eps) and cfg.rms_eps > 0 and math.isfinite(cfg.rope_theta) and cfg.rope_theta > 0):
            raise ModelError(f"config.json in {folder} describes an impossible shape ({cfg.heads} heads, "
                             f"{cfg.kv_heads} key/value heads, head size {cfg.head_dim}, rms_norm_eps "
                             f"{cfg.rms_eps}, rope_theta {cfg.rope_theta})", "the checkpoint is inconsistent")
        return cfg


def _check_shape(raw: dict[str, Any], folder: Path) -> None:
    """Every size config.json gives is a whole number in range (`"vocab_size": 1e10` is
    refused here, before anything is allocated from it)."""
    for key, limit in _LIMITS.items():
        value = raw.get(key)
        if value is None and key in ("num_key_value_heads", "head_dim", "max_position_embeddings"):
            continue  # optional: derived from the others
        if not (isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= limit):
            raise ModelError(f"config.json in {folder}: {key} is {value!r}, expected a whole number "
                             f"from 1 to {limit:,}", "the checkpoint's config.json is damaged or not a Llama's")


def _rope_kind(rope_scaling: dict[str, Any] | None) -> str | None:
    if not rope_scaling:
        return None
    kind = rope_scaling.get("rope_type") or rope_scaling.get("type")
    if kind in ("llama3", "linear", "default"):
        return None if kind == "default" else kind
    raise ModelError(f"RoPE scaling {kind!r} is not supported by the converter",
                     "supported: none, llama3, linear")


def load_config(folder: Path) -> LlamaConfig:
    path = folder / "config.json"
    if not path.is_file():
        raise ModelError(f"{folder} has no config.json", "a checkpoint in Hugging Face layout is needed")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, RecursionError):
        raise ModelError(f"{path} is not valid JSON", "download the checkpoint again") from None
    except OSError as exc:
        raise ModelError(f"cannot read {path}: {exc.strerror or exc}", "download the checkpoint again") from None
    return LlamaConfig.from_json(raw, folder)


# -- layout conversions ---------------------------------------------------------------------

def permute_rows(w: np.ndarray, n_head: int) -> np.ndarray:
    """Hugging Face keeps each head's rotary dimensions as two halves (rotate_half);
    llama.cpp rotates adjacent pairs: within a head, row j of each half become rows 2j
    and 2j+1 (for q/k weights and their biases)."""
    rows = w.shape[0]
    return (w.reshape(n_head, 2, rows // n_head // 2, *w.shape[1:])
             .swapaxes(1, 2)
             .reshape(w.shape))


def llama3_rope_factors(cfg: LlamaConfig) -> np.ndarray:
    """Per-frequency divisors for Llama-3.1/3.2 "llama3" RoPE scaling, the form llama.cpp
    reads from `rope_freqs.weight` (theta_i / factor_i)."""
    rs = cfg.rope_scaling or {}
    factor = float(rs.get("factor", 8.0))
    low = float(rs.get("low_freq_factor", 1.0))
    high = float(rs.get("high_freq_factor", 4.0))
    old_ctx = float(rs.get("original_max_position_embeddings", 8192))
    dim = cfg.head_dim
    wavelen = 2 * math.pi * cfg.rope_theta ** (np.arange(0, dim, 2, dtype=np.float64) / dim)
    with np.errstate(divide="ignore", invalid="ignore"):  # high == low: no band in between
        smooth = (old_ctx / wavelen - low) / (high - low)
        between = 1.0 / ((1 - smooth) / factor + smooth)
    out = np.where(wavelen < old_ctx / high, 1.0, np.where(wavelen > old_ctx / low, factor, between))
    return out.astype(np.float32)


# -- the tensor plan ----------------------------------------------------------------------------

@dataclass
class PlannedTensor:
    gguf_name: str
    shape: tuple[int, ...]
    out_type: str                         # F32 | F16 | BF16
    load: Callable[[], np.ndarray]

    @property
    def np_dtype(self) -> type:
        return {"F32": np.float32, "F16": np.float16, "BF16": np.uint16}[self.out_type]

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * (4 if self.out_type == "F32" else 2)


def _layout(cfg: LlamaConfig) -> Iterator[tuple[gguf.MODEL_TENSOR, str, bool]]:
    """Every checkpoint tensor a llama.cpp Llama can take, in writing order:
    (kind, GGUF name, required)."""
    def name(kind: gguf.MODEL_TENSOR, bid: int | None = None) -> str:
        return gguf.TENSOR_NAMES[kind].format(bid=bid)

    yield _MT.TOKEN_EMBD, name(_MT.TOKEN_EMBD) + ".weight", True
    for bid in range(cfg.layers):
        for kind in _BLOCK:
            yield kind, name(kind, bid) + ".weight", True
            if kind in _BIASED:
                yield kind, name(kind, bid) + ".bias", False
    yield _MT.OUTPUT_NORM, name(_MT.OUTPUT_NORM) + ".weight", True
    # Tied embeddings: a saved lm_head.weight is a copy of the embedding, not written.
    yield _MT.OUTPUT, name(_MT.OUTPUT) + ".weight", not cfg.tied


def _expected_shape(kind: gguf.MODEL_TENSOR, is_bias: bool, cfg: LlamaConfig) -> tuple[int, ...]:
    """The tensor's shape in Hugging Face's (out, in) order, as config.json implies it."""
    q, kv = cfg.heads * cfg.head_dim, cfg.kv_heads * cfg.head_dim
    shapes: dict[gguf.MODEL_TENSOR, tuple[int, ...]] = {
        _MT.TOKEN_EMBD: (cfg.vocab_size, cfg.hidden), _MT.OUTPUT: (cfg.vocab_size, cfg.hidden),
        _MT.OUTPUT_NORM: (cfg.hidden,), _MT.ATTN_NORM: (cfg.hidden,), _MT.FFN_NORM: (cfg.hidden,),
        _MT.ATTN_Q: (q, cfg.hidden), _MT.ATTN_K: (kv, cfg.hidden), _MT.ATTN_V: (kv, cfg.hidden),
        _MT.ATTN_OUT: (cfg.hidden, q),
        _MT.FFN_GATE: (cfg.ffn, cfg.hidden), _MT.FFN_UP: (cfg.ffn, cfg.hidden), _MT.FFN_DOWN: (cfg.hidden, cfg.ffn),
    }
    shape = shapes[kind]
    return shape[:1] if is_bias else shape


def plan_tensors(cfg: LlamaConfig, st: SafetensorsIndex, weight_type: str) -> list[PlannedTensor]:
    """Every checkpoint tensor with its GGUF name and a loader in the output type
    (`weight_type` for matrices, F32 for vectors). Unknown, missing or misshapen tensors
    are an error: better than a model that loads but computes nonsense."""
    names = gguf.get_tensor_name_map(ARCH, cfg.layers)
    found: dict[str, str] = {}      # GGUF name -> checkpoint name
    unexpected: list[str] = []
    for hf in st.tensors:
        mapped = names.get_type_and_name(hf, try_suffixes=(".weight", ".bias"))
        if mapped is None or not hf.startswith(_HF_PREFIXES) or mapped[1] in found:
            unexpected.append(hf)
        else:
            found[mapped[1]] = hf

    heads = {_MT.ATTN_Q: cfg.heads, _MT.ATTN_K: cfg.kv_heads}  # the rows to permute for RoPE
    plans: list[PlannedTensor] = []
    for kind, gguf_name, required in _layout(cfg):
        hf = found.pop(gguf_name, None)
        if hf is None:
            if required:
                raise ModelError(f"the checkpoint has no tensor for {gguf_name}", "the checkpoint is incomplete")
            continue
        if kind is _MT.OUTPUT and cfg.tied:
            continue
        shape = st.tensors[hf].shape
        expected = _expected_shape(kind, gguf_name.endswith(".bias"), cfg)
        if shape != expected:
            raise ModelError(f"{hf} has shape {shape}, config.json implies {expected}",
                             "the checkpoint is inconsistent")
        out_type = "F32" if len(shape) == 1 else weight_type
        plans.append(PlannedTensor(gguf_name, shape, out_type, _loader(st, hf, out_type, heads.get(kind))))

    # Left over: unknown names, duplicates, other layouts' names (mixture of experts...).
    # rotary_emb.inv_freq is a buffer llama.cpp computes itself.
    leftovers = sorted(n for n in [*unexpected, *found.values()] if not n.endswith("rotary_emb.inv_freq"))
    if leftovers:
        raise ModelError(f"unexpected tensors in the checkpoint: {', '.join(leftovers[:3])}"
                         + (" ..." if len(leftovers) > 3 else ""),
                         "this does not look like a plain LlamaForCausalLM")
    if cfg.rope_kind == "llama3":
        factors = llama3_rope_factors(cfg)
        plans.append(PlannedTensor(gguf.TENSOR_NAMES[_MT.ROPE_FREQS] + ".weight", factors.shape, "F32",
                                   lambda: factors))
    return plans


def _loader(st: SafetensorsIndex, hf: str, out_type: str, permute_heads: int | None) -> Callable[[], np.ndarray]:
    """Reads one tensor when called, so memory holds about one tensor at a time."""
    dtype = st.tensors[hf].dtype

    def load() -> np.ndarray:
        raw = st.raw(hf)
        if permute_heads is not None:
            raw = permute_rows(raw, permute_heads)
        if out_type == "BF16" and dtype == "BF16":
            return raw  # bit-exact copy
        values = to_f32(raw, dtype)
        if out_type == "F16":
            if not np.all(np.isfinite(values.astype(np.float16))):
                raise ModelError(f"tensor {hf} overflows float16", "convert with --quant BF16 or F32")
            return values.astype(np.float16)
        if out_type == "BF16":  # an odd f16/f32 matrix in a bf16 checkpoint
            return gguf.quants.quantize(values, gguf.GGMLQuantizationType.BF16).view(np.uint16)
        return values

    return load
