"""Safetensors checkpoint (Hugging Face layout) -> GGUF, for the Llama family.

Why it exists: the paper's drafter, Pilot-3B, is published as safetensors only.

How:
1. Read config.json (architecture LlamaForCausalLM), the safetensors headers (parsed
   here: 8-byte little-endian length + JSON, so bf16 needs no torch), tokenizer.json and
   tokenizer_config.json.
2. Write a GGUF with `gguf.GGUFWriter`: header, metadata and tensor descriptors first,
   then the tensors one at a time from a memory map of the checkpoint, so memory stays
   at about one tensor (the embedding: 0.8 GB in bf16 for Llama-3.2-3B). bf16 weights are
   copied bit for bit as BF16 (lossless) unless F32 or F16 was asked for.
3. Quantize with llama.cpp's own quantizer (`llama_cpp.llama_model_quantize`) to the
   requested type, check the result's header and tensor data, move it into place and
   register it. Every intermediate file is a hidden `.partial` file removed on any
   failure, so nothing half-written is ever registered or found by a listing.

llama.cpp conventions followed (as in llama.cpp's convert_hf_to_gguf.py, checked
against a numpy forward pass in tests/test_models_convert.py):
- q/k projection rows are permuted from Hugging Face's rotate-half RoPE layout to
  llama.cpp's interleaved pairs: reshape(n_head, 2, head_dim/2, ...).swapaxes(1, 2);
- Llama-3 "llama3" RoPE scaling becomes a `rope_freqs.weight` tensor of per-frequency
  divisors; "linear" scaling becomes rope.scaling.* keys;
- tied embeddings: no output.weight (llama.cpp reuses token_embd);
- the Llama-3 tokenizer: model "gpt2" (byte-level BPE), pre-tokenizer "llama-bpe",
  merges, token types (CONTROL for special added tokens), bos/eos from
  tokenizer_config.json, the chat template.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
import shutil
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import gguf
import numpy as np

from ..errors import ModelError
from ..paths import log_path, models_dir
from . import catalog, registry
from .info import GGUFInfo, read_gguf

SUPPORTED_ARCHITECTURES = ("LlamaForCausalLM",)
# The Llama-3 pre-tokenizer regex; llama.cpp's "llama-bpe" implements exactly this split.
LLAMA3_SPLIT_REGEX = (
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"
    "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
)
# Target types: names as llama.cpp's `llama-quantize` spells them -> llama_ftype.
QUANT_TYPES: dict[str, int] = {
    "F32": int(gguf.LlamaFileType.ALL_F32),
    "F16": int(gguf.LlamaFileType.MOSTLY_F16),
    "BF16": int(gguf.LlamaFileType.MOSTLY_BF16),
    "Q8_0": int(gguf.LlamaFileType.MOSTLY_Q8_0),
    "Q6_K": int(gguf.LlamaFileType.MOSTLY_Q6_K),
    "Q5_K_M": int(gguf.LlamaFileType.MOSTLY_Q5_K_M),
    "Q5_K_S": int(gguf.LlamaFileType.MOSTLY_Q5_K_S),
    "Q5_0": int(gguf.LlamaFileType.MOSTLY_Q5_0),
    "Q4_K_M": int(gguf.LlamaFileType.MOSTLY_Q4_K_M),
    "Q4_K_S": int(gguf.LlamaFileType.MOSTLY_Q4_K_S),
    "Q4_0": int(gguf.LlamaFileType.MOSTLY_Q4_0),
    "Q3_K_M": int(gguf.LlamaFileType.MOSTLY_Q3_K_M),
}
FLOAT_TYPES = ("F32", "F16", "BF16")
_SAFETENSORS_DTYPES = {"BF16": 2, "F16": 2, "F32": 4}
# Bytes per weight of each target relative to bf16, to check free disk space up front.
_SIZE_RATIO = {"F32": 2.0, "F16": 1.0, "BF16": 1.0, "Q8_0": 0.54, "Q6_K": 0.42, "Q5_K_M": 0.36,
               "Q5_K_S": 0.35, "Q5_0": 0.35, "Q4_K_M": 0.31, "Q4_K_S": 0.29, "Q4_0": 0.29, "Q3_K_M": 0.25}

Say = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


# -- safetensors, read without torch ------------------------------------------------------

@dataclass(frozen=True)
class StTensor:
    name: str
    file: Path
    dtype: str            # BF16 | F16 | F32
    shape: tuple[int, ...]
    start: int            # absolute byte offsets in the file
    end: int


class SafetensorsIndex:
    """Tensor locations across the checkpoint's .safetensors files (headers only)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.tensors: dict[str, StTensor] = {}
        self._maps: dict[Path, np.memmap] = {}
        files = self._files(folder)
        for path in files:
            self._read_header(path)

    @staticmethod
    def _files(folder: Path) -> list[Path]:
        index = folder / "model.safetensors.index.json"
        if index.is_file():
            try:
                weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
            except (ValueError, KeyError) as exc:
                raise ModelError(f"{index} is unreadable ({exc.__class__.__name__})",
                                 "download the checkpoint again") from None
            files = [folder / name for name in sorted(set(weight_map.values()))]
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
            if n <= 0 or n > min(size - 8, 100 * 1024 * 1024):
                raise ModelError(f"{path.name} is not a safetensors file (bad header length)", "download it again")
            try:
                header = json.loads(fh.read(n))
            except ValueError:
                raise ModelError(f"{path.name} is not a safetensors file (header is not JSON)",
                                 "download it again") from None
        base = 8 + n
        for name, meta in header.items():
            if name == "__metadata__":
                continue
            dtype = meta.get("dtype")
            if dtype not in _SAFETENSORS_DTYPES:
                raise ModelError(f"tensor {name} in {path.name} is {dtype}; only BF16, F16 and F32 weights can be converted",
                                 "use an unquantized checkpoint")
            begin, end = meta["data_offsets"]
            shape = tuple(int(d) for d in meta["shape"])
            if (end - begin) != math.prod(shape) * _SAFETENSORS_DTYPES[dtype] or base + end > size:
                raise ModelError(f"{path.name} is truncated or corrupt (tensor {name})",
                                 "download the checkpoint again")
            self.tensors[name] = StTensor(name, path, dtype, shape, base + begin, base + end)

    def raw(self, name: str) -> np.ndarray:
        """The tensor's stored values as a read-only memory-mapped array: uint16 for
        BF16 (bit patterns), float16 or float32 otherwise."""
        t = self.tensors[name]
        mm = self._maps.get(t.file)
        if mm is None:
            mm = self._maps[t.file] = np.memmap(t.file, dtype=np.uint8, mode="r")
        view = mm[t.start:t.end]
        dtype = {"BF16": np.uint16, "F16": np.float16, "F32": np.float32}[t.dtype]
        return view.view(dtype).reshape(t.shape)

    def close(self) -> None:
        self._maps.clear()


def bf16_to_f32(bits: np.ndarray) -> np.ndarray:
    """bfloat16 is the top half of a float32: widen the bit pattern."""
    return (bits.astype(np.uint32) << 16).view(np.float32)


def f32_to_bf16(values: np.ndarray) -> np.ndarray:
    """float32 -> bfloat16 bit patterns, rounding to nearest even (NaN stays NaN)."""
    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)
    return np.where(np.isnan(values), np.uint16(0x7FC0), rounded)


def as_f32(values: np.ndarray, dtype: str) -> np.ndarray:
    return bf16_to_f32(values) if dtype == "BF16" else values.astype(np.float32)


# -- the checkpoint -------------------------------------------------------------------------

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
    tied: bool
    bias: bool

    @classmethod
    def from_json(cls, raw: dict[str, Any], folder: Path) -> "LlamaConfig":
        archs = raw.get("architectures") or [raw.get("model_type", "unknown")]
        if not any(a in SUPPORTED_ARCHITECTURES for a in archs):
            raise ModelError(f"unsupported architecture {', '.join(map(str, archs))} in {folder}",
                             "only LlamaForCausalLM (the Llama family, e.g. Pilot-3B) can be converted; "
                             "look for a ready-made GGUF of this model")
        try:
            hidden = int(raw["hidden_size"])
            heads = int(raw["num_attention_heads"])
            return cls(
                vocab_size=int(raw["vocab_size"]), hidden=hidden,
                layers=int(raw["num_hidden_layers"]), heads=heads,
                kv_heads=int(raw.get("num_key_value_heads") or heads),
                head_dim=int(raw.get("head_dim") or hidden // heads),
                ffn=int(raw["intermediate_size"]),
                ctx=int(raw.get("max_position_embeddings") or 4096),
                rms_eps=float(raw.get("rms_norm_eps", 1e-6)),
                rope_theta=float(raw.get("rope_theta", 10000.0)),
                rope_scaling=raw.get("rope_scaling") or None,
                tied=bool(raw.get("tie_word_embeddings", False)),
                bias=bool(raw.get("attention_bias", False)) or bool(raw.get("mlp_bias", False)),
            )
        except (KeyError, TypeError, ValueError, ZeroDivisionError) as exc:
            raise ModelError(f"config.json in {folder} lacks or garbles {exc}",
                             "a Hugging Face Llama config is needed") from None


@dataclass
class Vocab:
    tokens: list[str]
    types: list[int]
    merges: list[str]
    special_ids: dict[str, int]
    add_bos: bool | None
    chat_template: str | None


def load_config(folder: Path) -> LlamaConfig:
    path = folder / "config.json"
    if not path.is_file():
        raise ModelError(f"{folder} has no config.json", "a checkpoint in Hugging Face layout is needed")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        raise ModelError(f"{path} is not valid JSON", "download the checkpoint again") from None
    return LlamaConfig.from_json(raw, folder)


def _looks_special(text: str) -> bool:
    return text.startswith("<|") and text.endswith("|>")


def load_vocab(folder: Path, vocab_size: int) -> Vocab:
    """The Llama-3 byte-level BPE tokenizer from tokenizer.json, in llama.cpp's layout."""
    path = folder / "tokenizer.json"
    if not path.is_file():
        hint = ("SentencePiece tokenizers (Llama 1/2) are not supported"
                if (folder / "tokenizer.model").is_file() else "a fast tokenizer (tokenizer.json) is needed")
        raise ModelError(f"{folder} has no tokenizer.json", hint)
    try:
        tok = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        raise ModelError(f"{path} is not valid JSON", "download the checkpoint again") from None
    model = tok.get("model") or {}
    if model.get("type") != "BPE" or model.get("byte_fallback") or (tok.get("decoder") or {}).get("type") != "ByteLevel":
        raise ModelError("the tokenizer is not a byte-level BPE like Llama 3's",
                         "only Llama-3 style tokenizers can be converted")
    pre = pre_tokenizer_name(tok)
    if pre is None:
        raise ModelError("the tokenizer's pre-tokenizer is not Llama 3's",
                         "only Llama-3 style tokenizers (llama.cpp pre-tokenizer llama-bpe) can be converted")

    by_id: dict[int, str] = {int(i): t for t, i in model["vocab"].items()}
    added: dict[int, dict[str, Any]] = {int(a["id"]): a for a in tok.get("added_tokens") or []}
    for tid, item in added.items():
        by_id[tid] = item["content"]
    if by_id and max(by_id) >= vocab_size:
        raise ModelError(f"the tokenizer has token id {max(by_id)} but config.json says vocab_size {vocab_size}",
                         "the checkpoint is inconsistent")
    tokens: list[str] = []
    types: list[int] = []
    for i in range(vocab_size):
        if i not in by_id:  # rows of the embedding beyond the tokenizer: padding
            tokens.append(f"[PAD{i}]")
            types.append(int(gguf.TokenType.UNUSED))
            continue
        text = by_id[i]
        tokens.append(text)
        if i in added:
            special = bool(added[i].get("special")) or _looks_special(text)
            types.append(int(gguf.TokenType.CONTROL if special else gguf.TokenType.USER_DEFINED))
        else:
            types.append(int(gguf.TokenType.NORMAL))

    # Merges, special token ids and the chat template through the gguf package's reader
    # of tokenizer_config.json / tokenizer.json (it knows both merge formats).
    with _quiet_logger("gguf"):  # it warns about Llama 3's own pair template
        special = gguf.SpecialVocab(folder, load_merges=True, n_vocab=vocab_size)
    if not special.merges:
        raise ModelError("the tokenizer has no BPE merges", "the checkpoint's tokenizer.json is incomplete")
    template = special.chat_template
    if isinstance(template, list):  # named templates: take the default one
        template = next((t.get("template") for t in template if t.get("name") == "default"), None)
    return Vocab(tokens=tokens, types=types, merges=list(special.merges),
                 special_ids=dict(special.special_token_ids),
                 add_bos=special.add_special_token.get("bos"),
                 chat_template=template or None)


@contextlib.contextmanager
def _quiet_logger(name: str) -> Iterator[None]:
    logger = logging.getLogger(name)
    old = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(old)


def pre_tokenizer_name(tok: dict[str, Any]) -> str | None:
    """llama.cpp's pre-tokenizer name for this tokenizer.json, or None if unsupported."""
    pre = tok.get("pre_tokenizer") or {}
    steps = pre.get("pretokenizers") if pre.get("type") == "Sequence" else [pre]
    regexes = [((s.get("pattern") or {}).get("Regex")) for s in steps if s.get("type") == "Split"]
    byte_level = [s for s in steps if s.get("type") == "ByteLevel"]
    if regexes == [LLAMA3_SPLIT_REGEX] and len(byte_level) == 1 and not byte_level[0].get("use_regex", True) \
            and tok.get("normalizer") is None:
        return "llama-bpe"
    return None


# -- tensor plan ---------------------------------------------------------------------------

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


def permute_rows(w: np.ndarray, n_head: int) -> np.ndarray:
    """Hugging Face keeps each head's rotary dimensions as two halves (rotate_half);
    llama.cpp's Llama RoPE rotates adjacent pairs. Reorder the output rows of q/k (and
    their biases) to match: within a head, row j of the first half and row j of the
    second half become rows 2j and 2j+1."""
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
    low_wavelen, high_wavelen = old_ctx / low, old_ctx / high
    dim = cfg.head_dim
    freqs = 1.0 / (cfg.rope_theta ** (np.arange(0, dim, 2, dtype=np.float64) / dim))
    out = []
    for freq in freqs:
        wavelen = 2 * math.pi / freq
        if wavelen < high_wavelen:
            out.append(1.0)
        elif wavelen > low_wavelen:
            out.append(factor)
        else:
            smooth = (old_ctx / wavelen - low) / (high - low)
            out.append(1.0 / ((1 - smooth) / factor + smooth))
    return np.asarray(out, dtype=np.float32)


def rope_kind(cfg: LlamaConfig) -> str | None:
    if not cfg.rope_scaling:
        return None
    kind = cfg.rope_scaling.get("rope_type") or cfg.rope_scaling.get("type")
    if kind in ("llama3", "linear", "default"):
        return None if kind == "default" else kind
    raise ModelError(f"RoPE scaling {kind!r} is not supported by the converter",
                     "supported: none, llama3, linear")


def plan_tensors(cfg: LlamaConfig, st: SafetensorsIndex, weight_type: str) -> list[PlannedTensor]:
    """Map every checkpoint tensor to its GGUF name and a loader that yields it in the
    output type. Unknown or missing tensors are an error: better than a model that loads
    but computes nonsense."""
    names = set(st.tensors)
    plans: list[PlannedTensor] = []
    used: set[str] = set()

    def add(hf: str, gg: str, permute_heads: int | None = None, vector: bool = False) -> None:
        if hf not in names:
            raise ModelError(f"tensor {hf} is missing from the checkpoint", "the checkpoint is incomplete")
        t = st.tensors[hf]
        out_type = "F32" if vector or len(t.shape) == 1 else weight_type

        def load(hf: str = hf, t: StTensor = t, out_type: str = out_type) -> np.ndarray:
            raw = st.raw(hf)
            if permute_heads is not None:
                raw = permute_rows(raw, permute_heads)
            if out_type == "BF16" and t.dtype == "BF16":
                return raw  # bit-exact copy
            values = as_f32(raw, t.dtype)
            if out_type == "F16":
                if not np.all(np.isfinite(values.astype(np.float16))):
                    raise ModelError(f"tensor {hf} overflows float16", "convert with --quant BF16 or F32")
                return values.astype(np.float16)
            if out_type == "BF16":  # an odd f16/f32 matrix in a bf16 checkpoint
                return f32_to_bf16(values)
            return values

        plans.append(PlannedTensor(gg, t.shape, out_type, load))
        used.add(hf)

    expect_vocab = (cfg.vocab_size, cfg.hidden)
    if "model.embed_tokens.weight" in names and st.tensors["model.embed_tokens.weight"].shape != expect_vocab:
        raise ModelError(f"model.embed_tokens.weight has shape {st.tensors['model.embed_tokens.weight'].shape}, "
                         f"config.json implies {expect_vocab}", "the checkpoint is inconsistent")
    add("model.embed_tokens.weight", "token_embd.weight")
    for i in range(cfg.layers):
        p = f"model.layers.{i}."
        add(p + "input_layernorm.weight", f"blk.{i}.attn_norm.weight")
        for proj, gg, heads in (("q_proj", "attn_q", cfg.heads), ("k_proj", "attn_k", cfg.kv_heads),
                                ("v_proj", "attn_v", None), ("o_proj", "attn_output", None)):
            add(p + f"self_attn.{proj}.weight", f"blk.{i}.{gg}.weight", heads)
            if p + f"self_attn.{proj}.bias" in names:
                add(p + f"self_attn.{proj}.bias", f"blk.{i}.{gg}.bias", heads, vector=True)
        add(p + "post_attention_layernorm.weight", f"blk.{i}.ffn_norm.weight")
        for proj, gg in (("gate_proj", "ffn_gate"), ("up_proj", "ffn_up"), ("down_proj", "ffn_down")):
            add(p + f"mlp.{proj}.weight", f"blk.{i}.{gg}.weight")
            if p + f"mlp.{proj}.bias" in names:
                add(p + f"mlp.{proj}.bias", f"blk.{i}.{gg}.bias", vector=True)
    add("model.norm.weight", "output_norm.weight")
    if "lm_head.weight" in names:
        if cfg.tied:
            used.add("lm_head.weight")  # a saved copy of the tied embedding
        else:
            add("lm_head.weight", "output.weight")
    elif not cfg.tied:
        raise ModelError("lm_head.weight is missing and the embeddings are not tied",
                         "the checkpoint is incomplete")
    leftovers = sorted(n for n in names - used if not n.endswith("rotary_emb.inv_freq"))
    if leftovers:
        raise ModelError(f"unexpected tensors in the checkpoint: {', '.join(leftovers[:3])}"
                         + (" ..." if len(leftovers) > 3 else ""),
                         "this does not look like a plain LlamaForCausalLM")
    if rope_kind(cfg) == "llama3":
        factors = llama3_rope_factors(cfg)
        plans.append(PlannedTensor("rope_freqs.weight", factors.shape, "F32", lambda f=factors: f))
    return plans


# -- writing ---------------------------------------------------------------------------

def write_gguf(folder: Path, out: Path, weight_type: str, name: str, source_url: str | None = None,
               progress: bool = False, vocab: Vocab | None = None) -> None:
    """Write `folder`'s checkpoint as a GGUF at `out`, weights in `weight_type`
    (F32/F16/BF16), tensor by tensor."""
    cfg = load_config(folder)
    vocab = vocab or load_vocab(folder, cfg.vocab_size)
    st = SafetensorsIndex(folder)
    try:
        plans = plan_tensors(cfg, st, weight_type)
        ftype = QUANT_TYPES[weight_type]
        w = gguf.GGUFWriter(path=None, arch="llama")
        w.add_name(name)
        if source_url:
            w.add_source_url(source_url)
        w.add_context_length(cfg.ctx)
        w.add_embedding_length(cfg.hidden)
        w.add_block_count(cfg.layers)
        w.add_feed_forward_length(cfg.ffn)
        w.add_head_count(cfg.heads)
        w.add_head_count_kv(cfg.kv_heads)
        w.add_rope_dimension_count(cfg.head_dim)
        if cfg.head_dim != cfg.hidden // cfg.heads:
            w.add_key_length(cfg.head_dim)
            w.add_value_length(cfg.head_dim)
        w.add_rope_freq_base(cfg.rope_theta)
        if rope_kind(cfg) == "linear":
            w.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
            w.add_rope_scaling_factor(float(cfg.rope_scaling["factor"]))  # type: ignore[index]
        w.add_layer_norm_rms_eps(cfg.rms_eps)
        w.add_vocab_size(cfg.vocab_size)
        w.add_file_type(ftype)
        w.add_tokenizer_model("gpt2")
        w.add_tokenizer_pre("llama-bpe")
        w.add_token_list(vocab.tokens)
        w.add_token_types(vocab.types)
        w.add_token_merges(vocab.merges)
        for kind, tid in vocab.special_ids.items():
            adder = getattr(w, f"add_{kind}_token_id", None)
            if adder is not None:
                adder(tid)
        if vocab.add_bos is not None:
            w.add_add_bos_token(vocab.add_bos)
        if vocab.chat_template:
            w.add_chat_template(vocab.chat_template)
        for plan in plans:
            w.add_tensor_info(plan.gguf_name, plan.shape, np.dtype(plan.np_dtype), plan.nbytes,
                              raw_dtype=gguf.GGMLQuantizationType.BF16 if plan.out_type == "BF16" else None)
        w.write_header_to_file(path=out)
        w.write_kv_data_to_file()
        w.write_ti_data_to_file()
        bar = _progress_bar(sum(p.nbytes for p in plans), f"writing {weight_type} GGUF") if progress else None
        try:
            for plan in plans:
                data = plan.load()
                assert data.shape == plan.shape and data.dtype == plan.np_dtype, plan.gguf_name
                w.write_tensor_data(data)
                if bar is not None:
                    bar.update(plan.nbytes)
        finally:
            if bar is not None:
                bar.close()
            w.close()
    finally:
        st.close()


@contextlib.contextmanager
def _ticker(label: str, enabled: bool) -> Iterator[None]:
    """Elapsed seconds on stderr while a long C call runs (ctypes releases the GIL)."""
    if not enabled:
        yield
        return
    stop = threading.Event()
    started = time.monotonic()

    def tick() -> None:
        while not stop.wait(1.0):
            sys.stderr.write(f"\r{label}: {time.monotonic() - started:.0f} s")
            sys.stderr.flush()

    thread = threading.Thread(target=tick, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        sys.stderr.write("\r" + " " * (len(label) + 16) + "\r")
        sys.stderr.flush()


def _progress_bar(total: int, desc: str):
    from tqdm.auto import tqdm  # a dependency of huggingface_hub

    return tqdm(total=total, desc=desc, unit="B", unit_scale=True, leave=False)


def quantize(src: Path, dst: Path, quant: str, threads: int | None = None) -> None:
    """llama.cpp's quantizer (the code behind `llama-quantize`), in-process; its log goes
    to the llama.cpp log file, not the terminal."""
    import ctypes

    import llama_cpp

    from ..backend.logs import route_llama_logs

    route_llama_logs(log_path())
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = QUANT_TYPES[quant]
    params.nthread = threads or os.cpu_count() or 1
    rc = llama_cpp.llama_model_quantize(str(src).encode(), str(dst).encode(), ctypes.byref(params))
    if rc != 0:
        raise ModelError(f"llama.cpp failed to quantize to {quant} (code {rc})", f"see {log_path()}")


# -- the command ----------------------------------------------------------------------

@dataclass
class ConvertResult:
    path: Path
    registered: registry.RegisteredModel
    info: GGUFInfo
    seconds: float


def resolve_source(source: str, revision: str | None, say: Say) -> tuple[Path, str | None]:
    """A local checkpoint folder, or a repository id downloaded (or found cached)."""
    from .download import checkpoint_dir, download_checkpoint, is_offline, is_repo_id

    path = Path(source).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ModelError(f"{source} is a file; give the checkpoint folder (with config.json and *.safetensors)",
                             "a .gguf file needs no conversion: `wsd models add PATH`")
        return path, None
    if is_repo_id(source):
        say(f"offline: looking for the checkpoint of {source} in {checkpoint_dir(source)} or the Hugging Face cache"
            if is_offline() else
            f"fetching the safetensors checkpoint of {source} (resumable; kept in {checkpoint_dir(source)})")
        return download_checkpoint(source, revision, say), source
    raise ModelError(f"{source!r} is neither a folder nor a Hugging Face repository id",
                     "give a local checkpoint folder or OWNER/REPO, e.g. songff/Pilot-3B")


def default_name(source: str, folder: Path, repo: str | None) -> str:
    from .download import slug

    entry = catalog.by_repo(repo) if repo else None
    if entry is not None:
        return entry.name
    return slug(repo.split("/")[-1] if repo else folder.name)


def _check_disk(folder: Path, dest: Path, quant: str) -> None:
    weights = sum(p.stat().st_size for p in folder.glob("*.safetensors"))
    # Intermediate (bf16-sized) plus the result, with 5 % slack.
    need = int(weights * (1.0 + (_SIZE_RATIO[quant] if quant not in FLOAT_TYPES else 0.0)) * 1.05)
    free = shutil.disk_usage(dest).free
    if free < need:
        raise ModelError(f"not enough free disk space in {dest}: {free / 1e9:.1f} GB free, about {need / 1e9:.1f} GB needed",
                         "free some space or set WSD_MODELS_DIR to another disk")


def convert(source: str, quant: str = "Q4_K_M", name: str | None = None, role: str = "drafter",
            outfile: Path | None = None, revision: str | None = None, threads: int | None = None,
            say: Say = _quiet, progress: bool = False) -> ConvertResult:
    """Convert a Llama-family safetensors checkpoint (folder or repo id) to a GGUF of
    type `quant`, check it, and register it under `name`."""
    started = time.monotonic()
    quant = quant.upper()
    if quant not in QUANT_TYPES:
        raise ModelError(f"unknown quantization type {quant!r}", f"choose one of {', '.join(QUANT_TYPES)}")
    registry.check_role(role)
    if name is not None:
        name = registry.check_name(name)
    folder, repo = resolve_source(source, revision, say)
    cfg = load_config(folder)  # fail fast on the architecture and tokenizer before anything heavy
    vocab = load_vocab(folder, cfg.vocab_size)
    name = name or default_name(source, folder, repo)
    basename = (repo.split("/")[-1] if repo else folder.resolve().name) or "model"
    dest = Path(outfile).expanduser() if outfile else models_dir() / f"{basename}-{quant}.gguf"
    if dest.suffix.lower() != ".gguf":
        raise ModelError(f"{dest} must end in .gguf", "choose another --outfile")
    dest.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(dest.parent)
    _check_disk(folder, dest.parent, quant)

    source_dtype = _source_dtype(folder)
    # Lossless intermediate: the checkpoint's own float type, unless the target is a
    # float type we can write directly.
    direct = quant in ("F32", "F16") or (quant == "BF16" and source_dtype == "BF16")
    weight_type = quant if direct else source_dtype
    tag = f".{dest.name}.partial-{os.getpid()}"
    first = dest.with_name(tag + ("" if direct else f".{weight_type}"))
    second = dest.with_name(tag)
    url = f"https://huggingface.co/{repo}" if repo else None
    try:
        say(f"writing {weight_type} GGUF from {folder}")
        write_gguf(folder, first, weight_type, name=basename, source_url=url, progress=progress, vocab=vocab)
        if not direct:
            say(f"quantizing to {quant} with llama.cpp (minutes for a 3B model on a laptop CPU)")
            with _ticker(f"quantizing to {quant}", progress):
                quantize(first, second, quant, threads)
            first.unlink()
        info = read_gguf(second)
        if info.architecture != "llama" or info.quantization != quant:
            raise ModelError(f"the converted file reads back as {info.architecture}/{info.quantization}, "
                             f"expected llama/{quant}", f"see {log_path()}")
        os.replace(second, dest)
    finally:
        for leftover in (first, second):
            leftover.unlink(missing_ok=True)
    info = read_gguf(dest)
    entry = registry.register(name, dest, role, f"convert:{repo}" if repo else f"convert:{folder.resolve()}")
    return ConvertResult(path=dest, registered=entry, info=info, seconds=time.monotonic() - started)


def _source_dtype(folder: Path) -> str:
    st = SafetensorsIndex(folder)
    counts: dict[str, int] = {}
    for t in st.tensors.values():
        if len(t.shape) >= 2:
            counts[t.dtype] = counts.get(t.dtype, 0) + (t.end - t.start)
    return max(counts, key=counts.get) if counts else "F32"  # type: ignore[arg-type]


def remove_stale_partials(folder: Path) -> list[Path]:
    """Delete `.NAME.partial-PID*` files left by a conversion that was killed (its
    process is gone); a running conversion's files are left alone."""
    removed = []
    for path in folder.glob(".*.partial-*"):
        match = re.search(r"\.partial-(\d+)", path.name)
        if match is None or _pid_alive(int(match.group(1))):
            continue
        path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid() or os.name == "nt":  # on Windows, signal 0 would interrupt the process
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists but not ours, or not checkable here
        return True
    return True
