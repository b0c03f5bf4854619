"""Random-weight GGUFs at a real model's shape (`tiny.make_shaped_gguf`), the files the
GPU cost measurements run on: their layout must be what llama.cpp loads and what a
Q4_K_M file of that shape holds."""

from __future__ import annotations

import pytest

from devtools import tiny
from wsd_local.settings import RuntimeSettings
from wsd_local.gguf_format.reader import read_gguf

pytest.importorskip("tokenizers")

SMALL = tiny.TinyConfig(vocab_size=1024, hidden=512, layers=8, heads=8, kv_heads=2, ffn=1024,
                        ctx=1024, rope_scaling=False, tied=False)


def _parameters(cfg: tiny.TinyConfig) -> int:
    h, kv = cfg.hidden, cfg.kv_heads * cfg.head_dim
    block = 2 * h + 2 * h * h + 2 * h * kv + 3 * h * cfg.ffn
    return cfg.vocab_size * h * (1 if cfg.tied else 2) + cfg.layers * block + h


def test_shapes_match_the_real_models():
    # Parameter counts of the real checkpoints (their model cards): 1.24B, 3.21B, 8.03B.
    assert round(_parameters(tiny.SHAPES["llama-3.2-1b"]) / 1e9, 2) == 1.24
    assert round(_parameters(tiny.SHAPES["llama-3.2-3b"]) / 1e9, 2) == 3.21
    assert round(_parameters(tiny.SHAPES["llama-3.1-8b"]) / 1e9, 2) == 8.03


def test_a_failed_write_leaves_no_partial_file(tmp_path, monkeypatch):
    """Error path: the weight writer is made to fail half-way (a stand-in for a full disk)."""
    def fail(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tiny, "_random_blocks", fail)
    with pytest.raises(OSError):
        tiny.make_shaped_gguf(tmp_path, SMALL, name="small")
    assert not list(tmp_path.glob("*.gguf*"))  # neither the file nor its .part


@pytest.mark.models
def test_shaped_file_loads_and_decodes(tmp_path):
    from wsd_local.backend.llama import LlamaBackend

    path = tiny.make_shaped_gguf(tmp_path, SMALL, name="small")
    meta = read_gguf(path)
    assert meta.quantization == "Q4_K_M"
    assert meta.parameter_count == _parameters(SMALL)
    # Q4_K_M's rule: Q6_K output, and Q6_K attn_v/ffn_down in the layers that get more bits.
    types = {t.name: t.type_name for t in meta.tensors}
    assert types["output.weight"] == "Q6_K" and types["blk.1.attn_q.weight"] == "Q4_K"
    assert [types[f"blk.{i}.attn_v.weight"] for i in range(8)] == \
        ["Q6_K" if tiny._use_more_bits(i, 8) else "Q4_K" for i in range(8)]
    backend = LlamaBackend(path, "base", RuntimeSettings(n_ctx=256, n_gpu_layers=0, threads=1))
    try:
        ids = list(range(3, 40))
        logprobs = backend.score(ids, 20)
        assert len(logprobs) == len(ids) - 20 and all(lp <= 0.0 for lp in logprobs)
        assert all(lp == lp for lp in logprobs)  # finite weights: no NaN
        assert len(list(backend.generate(ids, 5))) <= 5
    finally:
        backend.close()


def test_unit_costs_measure_and_project(tmp_path):
    """The GPU cost bench runs end to end on a small shaped file (here on the CPU)."""
    from devtools import unit_costs

    path = tiny.make_shaped_gguf(tmp_path, SMALL, name="small")
    costs = unit_costs.measure(path, RuntimeSettings(n_ctx=512, n_gpu_layers=0, threads=1),
                               frame=32, draft=64, decode_tokens=4, repeats=1)
    assert costs.decode_ms > 0 and costs.score_pass_ms > 0 and costs.score_online_ms > 0
    assert unit_costs.ratio(costs, costs, 0.0) == 1.0
    assert "WSD / base-only" in unit_costs.report([costs], [(costs, costs)])
