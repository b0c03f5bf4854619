"""Writing the GGUF: a checkpoint's metadata and tensors through `gguf.GGUFWriter`, one
tensor at a time from the checkpoint's memory map (memory stays at about one tensor;
bf16 weights are copied bit for bit), and llama.cpp's own quantizer for quantized types.

Quantized types come from `llama_cpp.llama_model_quantize` (the code behind
`llama-quantize`), not `gguf.quants`: the gguf package has no k-quants, and a file type
such as Q4_K_M is a per-tensor mix that only llama.cpp's quantizer decides.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

import gguf
import numpy as np

from ..errors import ModelError
from ..paths import log_path
from ..gguf_format.filetypes import FILE_TYPES
from .hf_llama import ARCH, LlamaConfig, load_config, plan_tensors
from .hf_tokenizer import PRE_TOKENIZER, TOKENIZER_MODEL, Vocab, load_vocab
from .safetensors_reader import SafetensorsIndex


def write_gguf(folder: Path, out: Path, weight_type: str, name: str, source_url: str | None = None,
               progress: bool = False, vocab: Vocab | None = None) -> None:
    """Write `folder`'s checkpoint as a GGUF at `out`, weights in `weight_type`
    (F32/F16/BF16), tensor by tensor."""
    cfg = load_config(folder)
    vocab = vocab or load_vocab(folder, cfg.vocab_size)
    with SafetensorsIndex(folder) as st:
        plans = plan_tensors(cfg, st, weight_type)
        w = new_writer(cfg, vocab, weight_type, name, source_url)
        for plan in plans:
            w.add_tensor_info(plan.gguf_name, plan.shape, np.dtype(plan.np_dtype), plan.nbytes,
                              raw_dtype=gguf.GGMLQuantizationType.BF16 if plan.out_type == "BF16" else None)
        w.write_header_to_file(path=out)
        w.write_kv_data_to_file()
        w.write_ti_data_to_file()
        from tqdm.auto import tqdm  # a dependency of huggingface_hub

        try:
            with tqdm(total=sum(p.nbytes for p in plans), desc=f"writing {weight_type} GGUF", unit="B",
                      unit_scale=True, leave=False, disable=not progress) as bar:
                for plan in plans:
                    data = plan.load()
                    assert data.shape == plan.shape and data.dtype == plan.np_dtype, plan.gguf_name
                    w.write_tensor_data(data)
                    bar.update(plan.nbytes)
        finally:
            w.close()


def new_writer(cfg: LlamaConfig, vocab: Vocab, weight_type: str, name: str,
               source_url: str | None = None) -> gguf.GGUFWriter:
    """A GGUF writer holding a Llama model's metadata and tokenizer (no tensors yet)."""
    w = gguf.GGUFWriter(path=None, arch=gguf.MODEL_ARCH_NAMES[ARCH])
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
    if cfg.rope_kind == "linear":
        w.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        w.add_rope_scaling_factor(float(cfg.rope_scaling["factor"]))  # type: ignore[index]
    w.add_layer_norm_rms_eps(cfg.rms_eps)
    w.add_vocab_size(cfg.vocab_size)
    w.add_file_type(int(FILE_TYPES[weight_type]))
    _add_vocab(w, vocab)
    return w


def _add_vocab(w: gguf.GGUFWriter, vocab: Vocab) -> None:
    # Not `SpecialVocab.add_to_gguf`: it also writes the add_sep/add_eos flags it infers
    # from the tokenizer's pair template and every named chat template; the keys written
    # here are the ones llama.cpp needs for a Llama-3 tokenizer, and no more.
    w.add_tokenizer_model(TOKENIZER_MODEL)
    w.add_tokenizer_pre(PRE_TOKENIZER)
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


def quantize(src: Path, dst: Path, quant: str, threads: int | None = None) -> None:
    """llama.cpp's quantizer, in-process; its log goes to the llama.cpp log file, not
    the terminal."""
    import llama_cpp

    from ..backend.logs import route_llama_logs

    route_llama_logs(log_path())
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = int(FILE_TYPES[quant])
    params.nthread = threads or os.cpu_count() or 1
    rc = llama_cpp.llama_model_quantize(str(src).encode(), str(dst).encode(), ctypes.byref(params))
    if rc != 0:
        raise ModelError(f"llama.cpp failed to quantize to {quant} (code {rc})", f"see {log_path()}")
