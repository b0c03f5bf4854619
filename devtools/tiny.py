"""A tiny random-weight Llama checkpoint in Hugging Face layout, and a plain numpy
forward pass of it: the ground truth the converter is tested against.

Used by tests (tests/test_models_convert.py) and handy for engine tests that need two
small models sharing one tokenizer. Building the tokenizer needs the `tokenizers`
package (a test dependency); nothing here is imported by the rest of wsd_local.

The numpy forward pass follows Hugging Face's LlamaForCausalLM (rotate-half RoPE,
Llama-3 RoPE scaling, grouped-query attention, SwiGLU, RMSNorm), computed in float64
from the checkpoint's own tensors; it shares no code with the converter, so a layout
mistake in the conversion (a missed q/k permutation, a wrong RoPE factor) shows up as a
mismatch.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

LLAMA3_REGEX = (
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"
    "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
)
SPECIAL_TOKENS = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>",
                  "<|end_header_id|>", "<|eot_id|>"]
# A Llama-3-style chat template (shortened: no date header).
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)
CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "How do I make my neighbour's dog stop barking? Talk to your neighbour first.",
    "Weak-to-strong decoding: a small aligned model drafts, a base model continues.",
    "I'm sure you'll like it; we've tried it and they'd agree.",
    "Numbers like 12345 and 2024 are split into groups of three digits.",
    "Café, naïve, déjà vu — accents and dashes.",
    "def main():\n    return 42\n\n",
    "Hello, world! Hello again, world.",
]


@dataclass(frozen=True)
class TinyConfig:
    vocab_tokens: int = 300      # tokenizer size (BPE + specials)
    vocab_size: int = 320        # embedding rows (> tokenizer: padding rows, as some models have)
    hidden: int = 64
    layers: int = 2
    heads: int = 4
    kv_heads: int = 2
    ffn: int = 128
    ctx: int = 256
    rope_theta: float = 10000.0
    # Llama-3 RoPE scaling with a short original context so all three frequency bands
    # (kept, interpolated, divided) occur with head_dim 16.
    rope_scaling: bool = True
    tied: bool = True
    rms_eps: float = 1e-5
    dtype: str = "BF16"          # BF16 | F16 | F32
    architecture: str = "LlamaForCausalLM"

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads

    def config_json(self) -> dict:
        cfg = {
            "architectures": [self.architecture], "model_type": "llama",
            "vocab_size": self.vocab_size, "hidden_size": self.hidden,
            "num_hidden_layers": self.layers, "num_attention_heads": self.heads,
            "num_key_value_heads": self.kv_heads, "intermediate_size": self.ffn,
            "max_position_embeddings": self.ctx, "rms_norm_eps": self.rms_eps,
            "rope_theta": self.rope_theta, "tie_word_embeddings": self.tied,
            "hidden_act": "silu", "torch_dtype": {"BF16": "bfloat16", "F16": "float16", "F32": "float32"}[self.dtype],
            "bos_token_id": None, "eos_token_id": None,
        }
        if self.rope_scaling:
            cfg["rope_scaling"] = {"rope_type": "llama3", "factor": 4.0, "low_freq_factor": 1.0,
                                   "high_freq_factor": 4.0, "original_max_position_embeddings": 64}
        return cfg


# -- writing the checkpoint ------------------------------------------------------------------

def _to_bf16_bits(values: np.ndarray) -> np.ndarray:
    bits = values.astype(np.float32).view(np.uint32)
    return ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)


def write_safetensors(path: Path, tensors: dict[str, np.ndarray], dtype: str) -> None:
    """Minimal safetensors writer (8-byte header length, JSON header, raw data); numpy
    cannot hold bf16, so BF16 is written from float32 by rounding."""
    header: dict[str, dict] = {"__metadata__": {"format": "pt"}}
    blobs: list[bytes] = []
    offset = 0
    for name, values in tensors.items():
        if dtype == "BF16":
            raw = _to_bf16_bits(values).tobytes()
        elif dtype == "F16":
            raw = values.astype(np.float16).tobytes()
        else:
            raw = values.astype(np.float32).tobytes()
        header[name] = {"dtype": dtype, "shape": list(values.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)  # the format pads the header to 8 bytes
    with path.open("wb") as fh:
        fh.write(len(head).to_bytes(8, "little"))
        fh.write(head)
        for blob in blobs:
            fh.write(blob)


def random_weights(cfg: TinyConfig, seed: int = 0) -> dict[str, np.ndarray]:
    """Weights scaled so activations and logits stay O(1): the comparison then
    discriminates (tiny logits would hide a wrong layout)."""
    rng = np.random.default_rng(seed)
    h, hd = cfg.hidden, cfg.head_dim

    def lin(out: int, inp: int) -> np.ndarray:
        return (rng.standard_normal((out, inp)) / math.sqrt(inp)).astype(np.float32)

    def norm(n: int) -> np.ndarray:
        return (1.0 + 0.1 * rng.standard_normal(n)).astype(np.float32)

    w: dict[str, np.ndarray] = {"model.embed_tokens.weight": rng.standard_normal((cfg.vocab_size, h)).astype(np.float32)}
    for i in range(cfg.layers):
        p = f"model.layers.{i}."
        w[p + "input_layernorm.weight"] = norm(h)
        w[p + "self_attn.q_proj.weight"] = lin(cfg.heads * hd, h)
        w[p + "self_attn.k_proj.weight"] = lin(cfg.kv_heads * hd, h)
        w[p + "self_attn.v_proj.weight"] = lin(cfg.kv_heads * hd, h)
        w[p + "self_attn.o_proj.weight"] = lin(h, cfg.heads * hd)
        w[p + "post_attention_layernorm.weight"] = norm(h)
        w[p + "mlp.gate_proj.weight"] = lin(cfg.ffn, h)
        w[p + "mlp.up_proj.weight"] = lin(cfg.ffn, h)
        w[p + "mlp.down_proj.weight"] = lin(h, cfg.ffn)
    w["model.norm.weight"] = norm(h)
    if not cfg.tied:
        w["lm_head.weight"] = lin(cfg.vocab_size, h)
    return w


def train_tokenizer(vocab_tokens: int):
    """A byte-level BPE with Llama 3's pre-tokenizer, trained on a few sentences."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE(ignore_merges=True))  # Llama 3 sets ignore_merges too
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_tokens - len(SPECIAL_TOKENS), min_frequency=1,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=[], show_progress=False)
    tok.train_from_iterator(CORPUS * 4, trainer)
    tok.add_special_tokens(SPECIAL_TOKENS)
    bos = tok.token_to_id(SPECIAL_TOKENS[0])
    tok.post_processor = processors.TemplateProcessing(
        single=f"{SPECIAL_TOKENS[0]} $A", pair=f"{SPECIAL_TOKENS[0]} $A {SPECIAL_TOKENS[0]} $B",
        special_tokens=[(SPECIAL_TOKENS[0], bos)])
    return tok


def write_metadata(folder: Path, cfg: TinyConfig) -> None:
    """Write config.json, tokenizer.json and tokenizer_config.json into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    tok = train_tokenizer(cfg.vocab_tokens)
    if tok.get_vocab_size() > cfg.vocab_size:
        raise ValueError("tokenizer larger than the embedding")
    tok.save(str(folder / "tokenizer.json"))
    added = {str(tok.token_to_id(t)): {"content": t, "lstrip": False, "normalized": False, "rstrip": False,
                                       "single_word": False, "special": True} for t in SPECIAL_TOKENS}
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "added_tokens_decoder": added, "bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>",
        "chat_template": CHAT_TEMPLATE, "clean_up_tokenization_spaces": True,
        "model_max_length": cfg.ctx, "tokenizer_class": "PreTrainedTokenizerFast",
    }, indent=2))
    (folder / "config.json").write_text(json.dumps(cfg.config_json(), indent=2))


def build_checkpoint(folder: Path, cfg: TinyConfig = TinyConfig(), seed: int = 0,
                     shards: int = 1) -> dict[str, np.ndarray]:
    """Write config.json, model.safetensors (or an index and `shards` files),
    tokenizer.json and tokenizer_config.json into `folder`; return the float32
    weights as stored (after rounding to the checkpoint dtype)."""
    write_metadata(folder, cfg)
    weights = random_weights(cfg, seed)
    names = list(weights)
    if shards <= 1:
        write_safetensors(folder / "model.safetensors", weights, cfg.dtype)
    else:
        weight_map = {}
        per = math.ceil(len(names) / shards)
        for s in range(shards):
            part = names[s * per:(s + 1) * per]
            fname = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
            write_safetensors(folder / fname, {n: weights[n] for n in part}, cfg.dtype)
            weight_map.update({n: fname for n in part})
        (folder / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    return {n: _stored(v, cfg.dtype) for n, v in weights.items()}


def _stored(values: np.ndarray, dtype: str) -> np.ndarray:
    if dtype == "BF16":
        return (_to_bf16_bits(values).astype(np.uint32) << 16).view(np.float32)
    if dtype == "F16":
        return values.astype(np.float16).astype(np.float32)
    return values.astype(np.float32)


# -- the reference forward pass --------------------------------------------------------------

def _inv_freq(cfg_json: dict, head_dim: int) -> np.ndarray:
    theta = float(cfg_json.get("rope_theta", 10000.0))
    inv = 1.0 / (theta ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim))
    rs = cfg_json.get("rope_scaling")
    if not rs or (rs.get("rope_type") or rs.get("type")) != "llama3":
        return inv
    # Hugging Face's _compute_llama3_parameters.
    factor, low, high = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"]
    old = rs["original_max_position_embeddings"]
    low_wl, high_wl = old / low, old / high
    wavelen = 2 * math.pi / inv
    scaled = np.where(wavelen > low_wl, inv / factor, inv)
    smooth = (old / wavelen - low) / (high - low)
    smoothed = (1 - smooth) * scaled / factor + smooth * scaled
    medium = ~(wavelen < high_wl) & ~(wavelen > low_wl)
    return np.where(medium, smoothed, scaled)


def reference_logits(cfg_json: dict, weights: dict[str, np.ndarray], ids: list[int]) -> np.ndarray:
    """Logits (len(ids) x vocab) of Hugging Face's LlamaForCausalLM, in float64."""
    W = {k: v.astype(np.float64) for k, v in weights.items()}
    h = cfg_json["hidden_size"]
    nh, nkv = cfg_json["num_attention_heads"], cfg_json["num_key_value_heads"]
    hd = cfg_json.get("head_dim") or h // nh
    eps = cfg_json["rms_norm_eps"]
    T = len(ids)

    def rms(x: np.ndarray, w: np.ndarray) -> np.ndarray:
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w

    def rotate_half(x: np.ndarray) -> np.ndarray:
        half = x.shape[-1] // 2
        return np.concatenate([-x[..., half:], x[..., :half]], axis=-1)

    angles = np.outer(np.arange(T, dtype=np.float64), _inv_freq(cfg_json, hd))
    emb = np.concatenate([angles, angles], axis=-1)[:, None, :]  # (T, 1, hd)
    cos, sin = np.cos(emb), np.sin(emb)
    mask = np.triu(np.full((T, T), -np.inf), k=1)

    x = W["model.embed_tokens.weight"][ids]
    for i in range(cfg_json["num_hidden_layers"]):
        p = f"model.layers.{i}."
        a = rms(x, W[p + "input_layernorm.weight"])
        q = (a @ W[p + "self_attn.q_proj.weight"].T).reshape(T, nh, hd)
        k = (a @ W[p + "self_attn.k_proj.weight"].T).reshape(T, nkv, hd)
        v = (a @ W[p + "self_attn.v_proj.weight"].T).reshape(T, nkv, hd)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = np.repeat(k, nh // nkv, axis=1)
        v = np.repeat(v, nh // nkv, axis=1)
        scores = np.einsum("thd,shd->hts", q, k) / math.sqrt(hd) + mask
        scores -= scores.max(axis=-1, keepdims=True)
        probs = np.exp(scores)
        probs /= probs.sum(axis=-1, keepdims=True)
        o = np.einsum("hts,shd->thd", probs, v).reshape(T, nh * hd)
        x = x + o @ W[p + "self_attn.o_proj.weight"].T
        m = rms(x, W[p + "post_attention_layernorm.weight"])
        gate = m @ W[p + "mlp.gate_proj.weight"].T
        up = m @ W[p + "mlp.up_proj.weight"].T
        x = x + ((gate / (1 + np.exp(-gate))) * up) @ W[p + "mlp.down_proj.weight"].T
    x = rms(x, W["model.norm.weight"])
    head = W.get("lm_head.weight", W["model.embed_tokens.weight"])
    return x @ head.T


def make_tiny_gguf(folder: Path, quant: str = "F32", seed: int = 0, cfg: TinyConfig = TinyConfig(),
                   chat_template: bool = True) -> Path:
    """Build a tiny checkpoint in `folder`/ckpt-SEED and convert it to
    `folder`/tiny-SEED-QUANT.gguf without registering it. Models built with different
    seeds share one tokenizer (it is trained deterministically on CORPUS)."""
    from wsd_local.gguf_format.filetypes import FLOAT_TYPES
    from wsd_local.models.gguf_writer import quantize, write_gguf

    ckpt = folder / f"ckpt-{seed}{'' if chat_template else '-notemplate'}"
    if not (ckpt / "config.json").is_file():
        build_checkpoint(ckpt, cfg, seed=seed)
        if not chat_template:
            config_path = ckpt / "tokenizer_config.json"
            config = json.loads(config_path.read_text())
            config.pop("chat_template", None)
            config_path.write_text(json.dumps(config))
    out = folder / f"tiny-{seed}{'' if chat_template else '-notemplate'}-{quant}.gguf"
    if out.is_file():
        return out
    if quant in FLOAT_TYPES and (quant != "BF16" or cfg.dtype == "BF16"):
        write_gguf(ckpt, out, quant, name=f"tiny-{seed}")
    else:
        tmp = out.with_name(out.name + ".src")
        write_gguf(ckpt, tmp, cfg.dtype if cfg.dtype != "F32" else "F32", name=f"tiny-{seed}")
        try:
            quantize(tmp, out, quant, threads=2)
        finally:
            tmp.unlink(missing_ok=True)
    return out


# -- random weights at a real model's shape ------------------------------------------------

# The shapes of real models (their config.json), for measuring per-token costs: every
# matrix has the real size, so memory traffic and FLOPs per token are the real model's.
# The tokenizer is the tiny one, padded to the real vocabulary size.
SHAPES: dict[str, TinyConfig] = {
    "llama-3.2-1b": TinyConfig(vocab_size=128256, hidden=2048, layers=16, heads=32, kv_heads=8,
                               ffn=8192, ctx=8192, rope_theta=500000.0, rope_scaling=False, tied=True),
    "llama-3.2-3b": TinyConfig(vocab_size=128256, hidden=3072, layers=28, heads=24, kv_heads=8,
                               ffn=8192, ctx=8192, rope_theta=500000.0, rope_scaling=False, tied=True),
    "llama-3.1-8b": TinyConfig(vocab_size=128256, hidden=4096, layers=32, heads=32, kv_heads=8,
                               ffn=14336, ctx=8192, rope_theta=500000.0, rope_scaling=False, tied=False),
}

# Block layouts (bytes) of the two k-quants a Q4_K_M file is made of; the f16 scale `d`
# (and Q4_K's `dmin`) is set so every weight stays below ~0.06 and activations stay finite.
_Q4_K = (144, (0, 2))        # d, dmin, 12 bytes of scales, 128 of 4-bit values
_Q6_K = (210, (208,))        # 128 + 64 bytes of 6-bit values, 16 scales, d
_SMALL_F16 = np.array([2.0 ** -14], dtype=np.float16).view(np.uint8)


def _use_more_bits(layer: int, layers: int) -> bool:
    """The layers whose attn_v and ffn_down a Q4_K_M file keeps in Q6_K (llama.cpp's rule)."""
    return layer < layers // 8 or layer >= 7 * layers // 8 or (layer - layers // 8) % 3 == 2


def _q4_k_m_plan(cfg: TinyConfig) -> list[tuple[str, tuple[int, int] | int, str]]:
    """(GGUF name, (rows, columns) or length, type) for each tensor, as in Q4_K_M."""
    h, hd = cfg.hidden, cfg.head_dim
    plan: list[tuple[str, tuple[int, int] | int, str]] = [
        ("token_embd.weight", (cfg.vocab_size, h), "Q6_K" if cfg.tied else "Q4_K")]
    for i in range(cfg.layers):
        more = "Q6_K" if _use_more_bits(i, cfg.layers) else "Q4_K"
        plan += [(f"blk.{i}.attn_norm.weight", h, "F32"),
                 (f"blk.{i}.attn_q.weight", (cfg.heads * hd, h), "Q4_K"),
                 (f"blk.{i}.attn_k.weight", (cfg.kv_heads * hd, h), "Q4_K"),
                 (f"blk.{i}.attn_v.weight", (cfg.kv_heads * hd, h), more),
                 (f"blk.{i}.attn_output.weight", (h, cfg.heads * hd), "Q4_K"),
                 (f"blk.{i}.ffn_norm.weight", h, "F32"),
                 (f"blk.{i}.ffn_gate.weight", (cfg.ffn, h), "Q4_K"),
                 (f"blk.{i}.ffn_up.weight", (cfg.ffn, h), "Q4_K"),
                 (f"blk.{i}.ffn_down.weight", (h, cfg.ffn), more)]
    plan.append(("output_norm.weight", h, "F32"))
    if not cfg.tied:
        plan.append(("output.weight", (cfg.vocab_size, h), "Q6_K"))
    return plan


def _random_blocks(rng: np.random.Generator, rows: int, cols: int, kind: str) -> np.ndarray:
    size, scale_offsets = _Q4_K if kind == "Q4_K" else _Q6_K
    blocks = np.frombuffer(rng.bytes(rows * cols // 256 * size), dtype=np.uint8).reshape(-1, size).copy()
    for offset in scale_offsets:
        blocks[:, offset:offset + 2] = _SMALL_F16
    return blocks.reshape(rows, cols // 256 * size)


def make_shaped_gguf(folder: Path, shape: str | TinyConfig, seed: int = 0, name: str | None = None) -> Path:
    """A Q4_K_M-layout GGUF with random weights at a real model's shape (`SHAPES`), written
    block by block without a float checkpoint or a quantizer: an 8B file takes seconds.
    The weights mean nothing; the file is for timing (decode, score) at real sizes."""
    import gguf

    from wsd_local.models.gguf_writer import new_writer
    from wsd_local.models.hf_llama import load_config
    from wsd_local.models.hf_tokenizer import load_vocab

    cfg = SHAPES[shape] if isinstance(shape, str) else shape
    label = name or (shape if isinstance(shape, str) else f"shaped-{cfg.hidden}x{cfg.layers}")
    if any(c % 256 for c in (cfg.hidden, cfg.ffn, cfg.heads * cfg.head_dim)):
        raise ValueError("k-quant blocks need every matrix width to be a multiple of 256")
    out = folder / f"{label}-{seed}-Q4_K_M.gguf"
    if out.is_file():
        return out
    meta = folder / f"{label}-meta"
    write_metadata(meta, cfg)
    llama_cfg = load_config(meta)
    w = new_writer(llama_cfg, load_vocab(meta, llama_cfg.vocab_size), "Q4_K_M", name=label)
    plan = _q4_k_m_plan(cfg)
    types = {"Q4_K": gguf.GGMLQuantizationType.Q4_K, "Q6_K": gguf.GGMLQuantizationType.Q6_K}
    for tensor, dims, kind in plan:
        if kind == "F32":
            w.add_tensor_info(tensor, (dims,), np.dtype(np.float32), 4 * int(dims))  # type: ignore[arg-type]
        else:
            rows, cols = dims  # type: ignore[misc]
            row_bytes = cols // 256 * (_Q4_K if kind == "Q4_K" else _Q6_K)[0]
            w.add_tensor_info(tensor, (rows, row_bytes), np.dtype(np.uint8), rows * row_bytes, raw_dtype=types[kind])
    tmp = out.with_name(out.name + ".part")
    rng = np.random.default_rng(seed)
    try:
        try:
            w.write_header_to_file(path=tmp)
            w.write_kv_data_to_file()
            w.write_ti_data_to_file()
            for tensor, dims, kind in plan:
                if kind == "F32":
                    w.write_tensor_data(np.ones(int(dims), dtype=np.float32))  # type: ignore[arg-type]
                else:
                    w.write_tensor_data(_random_blocks(rng, *dims, kind))  # type: ignore[misc]
        finally:
            w.close()
        tmp.replace(out)
    except BaseException:  # a full disk, Ctrl+C: no half-written file left behind
        tmp.unlink(missing_ok=True)
        raise
    return out


if __name__ == "__main__":
    import argparse

    cli = argparse.ArgumentParser(description="Write random-weight Q4_K_M GGUFs at real model shapes.")
    cli.add_argument("folder", type=Path)
    cli.add_argument("shapes", nargs="+", choices=sorted(SHAPES))
    cli.add_argument("--seed", type=int, default=0)
    ns = cli.parse_args()
    ns.folder.mkdir(parents=True, exist_ok=True)
    for wanted in ns.shapes:
        print(make_shaped_gguf(ns.folder, wanted, seed=ns.seed), flush=True)
