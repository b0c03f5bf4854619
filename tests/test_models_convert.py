"""safetensors -> GGUF conversion, checked against the checkpoint's own tokenizer and a
plain numpy forward pass of the same weights (devtools.tiny)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import gguf
import numpy as np
import pytest

from wsd_local.errors import ModelError
from devtools import tiny
from wsd_local.models import convert, gguf_writer, hf_llama, registry
from wsd_local.models.safetensors_reader import SafetensorsIndex
from wsd_local.gguf_format.reader import read_gguf

tokenizers = pytest.importorskip("tokenizers")
llama_cpp = pytest.importorskip("llama_cpp")

TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "How do I make my neighbour's dog stop barking?",
    "I'm sure you'll like it; they'd agree, we've tried.",
    "Numbers: 1 12 123 1234 12345 3.14159 2024-06-09",
    "  leading spaces,\ttabs\tand\n\nnewlines\r\n  ",
    "Café naïve déjà vu — “quotes” and ‘more’",
    "中文字符 and emoji 🙂🚀 mixed in",
    "def main():\n    return {'a': [1, 2, 3]}\n",
    "UPPER lower MiXeD CaSe; punctuation!!! ??? ...",
    "",
    " ",
    "a",
]
PROMPT = "How do I make my neighbour's dog stop barking? Talk to them first. 12345"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory):
    """A tiny bf16 Llama checkpoint and its conversions (F32, BF16, Q8_0, Q4_K_M), made with
    the real `convert()` into an isolated models folder and registry."""
    root = tmp_path_factory.mktemp("convert")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WSD_DATA_DIR", str(root / "data"))
        mp.setenv("WSD_MODELS_DIR", str(root / "models"))
        folder = root / "Tiny-Llama"
        weights = tiny.build_checkpoint(folder)
        results = {q: convert.convert(str(folder), quant=q, name=f"tiny-{q.lower()}", threads=2)
                   for q in ("F32", "BF16", "Q8_0", "Q4_K_M")}
        registered = registry.load()
    cfg = json.loads((folder / "config.json").read_text())
    tok = tokenizers.Tokenizer.from_file(str(folder / "tokenizer.json"))
    return {"root": root, "folder": folder, "weights": weights, "cfg": cfg, "tok": tok,
            "results": results, "registered": registered}


def _load(path: Path, vocab_only: bool = False):
    # type_k/type_v F32: llama.cpp's default F16 KV cache would add its own rounding.
    return llama_cpp.Llama(str(path), n_ctx=128, logits_all=not vocab_only, vocab_only=vocab_only,
                           verbose=False, type_k=0, type_v=0, n_threads=2)


def _logits(path: Path, ids: list[int]) -> np.ndarray:
    llm = _load(path)
    llm.eval(ids)
    out = np.array(llm.scores[:len(ids)], dtype=np.float64)
    llm.close()
    return out


def _log_softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def _kl(ref: np.ndarray, got: np.ndarray) -> np.ndarray:
    lp, lq = _log_softmax(ref), _log_softmax(got)
    return (np.exp(lp) * (lp - lq)).sum(axis=-1)


def test_conversion_writes_and_registers_files(env) -> None:
    for quant, result in env["results"].items():
        assert result.path.name == f"Tiny-Llama-{quant}.gguf"
        assert result.path.parent == env["root"] / "models"
        assert result.info.architecture == "llama"
        assert result.info.quantization == quant
        entry = env["registered"][f"tiny-{quant.lower()}"]
        assert entry.role == "drafter" and Path(entry.path) == result.path
    # No intermediate or partial file is left behind.
    files = {p.name for p in (env["root"] / "models").iterdir()}
    assert files == {f"Tiny-Llama-{q}.gguf" for q in env["results"]}


def test_metadata_tokenizer_and_special_tokens(env) -> None:
    info = read_gguf(env["results"]["F32"].path, arrays={"tokenizer.ggml.tokens", "tokenizer.ggml.token_type"})
    tok = env["tok"]
    assert info.tokenizer_model == "gpt2" and info.tokenizer_pre == "llama-bpe"
    assert info.vocab_size == 320 and info.context_length == 256 and info.block_count == 2
    assert info.special_token_ids["bos"] == tok.token_to_id("<|begin_of_text|>")
    assert info.special_token_ids["eos"] == tok.token_to_id("<|eot_id|>")
    assert info.metadata["tokenizer.ggml.add_bos_token"] is True
    tokens, types = info.tokens, info.metadata["tokenizer.ggml.token_type"]
    vocab = tok.get_vocab()
    for text, tid in vocab.items():
        assert tokens[tid] == text
    for special in tiny.SPECIAL_TOKENS:
        assert types[vocab[special]] == gguf.TokenType.CONTROL
    # Rows of the embedding beyond the tokenizer are padding.
    assert tokens[319] == "[PAD319]" and types[319] == gguf.TokenType.UNUSED
    assert types[vocab["a"]] == gguf.TokenType.NORMAL and types[vocab["Ġ"]] == gguf.TokenType.NORMAL
    # Tied embeddings: no output.weight; Llama-3 RoPE scaling: rope_freqs present.
    names = {t.name for t in info.tensors}
    assert "output.weight" not in names and "rope_freqs.weight" in names
    assert info.parameter_count == sum(v.size for v in env["weights"].values()) + 8


@pytest.mark.parametrize("quant", ["F32", "Q8_0"])
def test_tokenization_equals_the_tokenizer(env, quant: str) -> None:
    llm = _load(env["results"][quant].path, vocab_only=True)
    tok = env["tok"]
    for text in TEXTS:
        ours = llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)
        theirs = tok.encode(text, add_special_tokens=False).ids
        assert ours == theirs, text
        assert llm.detokenize(ours).decode("utf-8") == text
        # With BOS, as both add it for a prompt.
        assert llm.tokenize(text.encode("utf-8"), add_bos=True, special=False) == tok.encode(text).ids
    marked = "<|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>"
    assert llm.tokenize(marked.encode(), add_bos=False, special=True) == tok.encode(marked, add_special_tokens=False).ids
    llm.close()


@pytest.mark.models
def test_f32_logits_equal_numpy_forward(env) -> None:
    """F32 weights: llama.cpp and the float64 numpy pass differ only by float32
    rounding (observed ~1e-5 on logits of spread ~8). The tolerance, 1e-3, is 100x that,
    and 10,000x below what a layout mistake costs: without the q/k permutation the
    logits move by ~14, without the RoPE factors by ~11."""
    ids = env["tok"].encode(PROMPT).ids
    ref = tiny.reference_logits(env["cfg"], env["weights"], ids)
    got = _logits(env["results"]["F32"].path, ids)
    assert got.shape == ref.shape
    assert ref.std() > 1.0  # the check would be weak on near-zero logits
    np.testing.assert_allclose(got, ref, atol=1e-3, rtol=0)


@pytest.mark.models
def test_layout_mistakes_would_be_caught(env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The reference really discriminates: skipping the q/k permutation breaks the match."""
    monkeypatch.setattr(hf_llama, "permute_rows", lambda w, n_head: w)
    out = tmp_path / "broken.gguf"
    gguf_writer.write_gguf(env["folder"], out, "F32", name="broken")
    ids = env["tok"].encode(PROMPT).ids
    ref = tiny.reference_logits(env["cfg"], env["weights"], ids)
    assert np.abs(_logits(out, ids) - ref).max() > 1.0


def test_bf16_copies_weights_bit_exactly(env) -> None:
    """bf16 checkpoint -> BF16 GGUF is a copy: the embedding's bits are the checkpoint's."""
    reader = gguf.GGUFReader(env["results"]["BF16"].path)
    embd = next(t for t in reader.tensors if t.name == "token_embd.weight")
    assert embd.tensor_type == gguf.GGMLQuantizationType.BF16
    stored = SafetensorsIndex(env["folder"]).raw("model.embed_tokens.weight")
    assert np.array_equal(np.asarray(embd.data).view(np.uint16).reshape(stored.shape), stored)


@pytest.mark.models
def test_bf16_logits_close(env) -> None:
    """BF16 weights are exact, but llama.cpp rounds activations to bf16 (8-bit mantissa,
    ~0.4 % relative) for each matrix product: observed 1.5 % of the logit spread."""
    ids = env["tok"].encode(PROMPT).ids
    ref = tiny.reference_logits(env["cfg"], env["weights"], ids)
    got = _logits(env["results"]["BF16"].path, ids)
    assert np.abs(got - ref).max() < 0.05 * ref.std()
    assert _kl(ref, got).mean() < 1e-4


@pytest.mark.models
def test_q8_0_stays_close(env) -> None:
    """Q8_0 rounds each weight to 1/127 of its 32-weight block's maximum and llama.cpp
    also rounds activations to 8 bits for the products; over two layers that is a few
    percent of the logit spread (observed: max 6.5 %, mean KL 1.5e-4)."""
    ids = env["tok"].encode(PROMPT).ids
    ref = tiny.reference_logits(env["cfg"], env["weights"], ids)
    got = _logits(env["results"]["Q8_0"].path, ids)
    assert np.abs(got - ref).max() < 0.15 * ref.std()
    kl = _kl(ref, got)
    assert kl.mean() < 1e-3 and kl.max() < 0.02
    assert (got.argmax(-1) == ref.argmax(-1)).mean() >= 0.95
    assert env["results"]["Q8_0"].path.stat().st_size < env["results"]["F32"].path.stat().st_size / 2.5


@pytest.mark.models
def test_q4_k_m_is_written_and_usable(env) -> None:
    """Q4_K_M: llama.cpp picks k-quants where rows allow (256-wide blocks; this model's
    64-wide rows fall back to 32-wide types), records file type Q4_K_M, and the model
    still predicts like the original."""
    result = env["results"]["Q4_K_M"]
    assert result.info.quantization == "Q4_K_M"
    ids = env["tok"].encode(PROMPT).ids
    ref = tiny.reference_logits(env["cfg"], env["weights"], ids)
    got = _logits(result.path, ids)
    assert np.isfinite(got).all()
    assert _kl(ref, got).mean() < 0.05


def test_chat_template_round_trips(env) -> None:
    from jinja2.sandbox import ImmutableSandboxedEnvironment
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    original = json.loads((env["folder"] / "tokenizer_config.json").read_text())["chat_template"]
    path = env["results"]["Q8_0"].path
    assert read_gguf(path).chat_template == original
    llm = _load(path, vocab_only=True)
    assert llm.metadata["tokenizer.chat_template"] == original
    messages = [{"role": "system", "content": "Be kind."}, {"role": "user", "content": " Hello! "}]
    rendered = Jinja2ChatFormatter(template=llm.metadata["tokenizer.chat_template"], eos_token="<|eot_id|>",
                                   bos_token="<|begin_of_text|>")(messages=messages).prompt
    expected = ImmutableSandboxedEnvironment().from_string(original).render(
        messages=messages, bos_token="<|begin_of_text|>", add_generation_prompt=True)
    assert rendered == expected
    assert rendered.startswith("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe kind.<|eot_id|>")
    assert rendered.endswith("<|start_header_id|>assistant<|end_header_id|>\n\n")
    llm.close()


def test_sharded_f16_untied_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Other layouts: an index with three shards, f16 weights, a separate lm_head, no
    RoPE scaling; F16 output is checked against the numpy pass (f16 rounding of the
    activations: ~0.05 % relative)."""
    monkeypatch.setenv("WSD_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("WSD_MODELS_DIR", str(tmp_path / "models"))
    cfg = tiny.TinyConfig(dtype="F16", tied=False, rope_scaling=False)
    folder = tmp_path / "sharded"
    weights = tiny.build_checkpoint(folder, cfg, seed=3, shards=3)
    assert len(list(folder.glob("*.safetensors"))) == 3
    result = convert.convert(str(folder), quant="F16", name="sharded")
    names = {t.name for t in result.info.tensors}
    assert "output.weight" in names and "rope_freqs.weight" not in names
    tok = tokenizers.Tokenizer.from_file(str(folder / "tokenizer.json"))
    ids = tok.encode(PROMPT).ids
    ref = tiny.reference_logits(json.loads((folder / "config.json").read_text()), weights, ids)
    got = _logits(result.path, ids)
    assert np.abs(got - ref).max() < 0.01 * ref.std()


def test_safetensors_reader_agrees_with_the_safetensors_package(tmp_path: Path) -> None:
    st_numpy = pytest.importorskip("safetensors.numpy")
    rng = np.random.default_rng(1)
    tensors = {"a": rng.standard_normal((3, 5)).astype(np.float32),
               "b": rng.standard_normal(7).astype(np.float16)}
    st_numpy.save_file(tensors, str(tmp_path / "model.safetensors"))
    index = SafetensorsIndex(tmp_path)
    for name, values in tensors.items():
        assert np.array_equal(index.raw(name), values)


# -- bad input: each a one-line ModelError, nothing registered, nothing left behind -------

@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("WSD_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("WSD_MODELS_DIR", str(tmp_path / "models"))
    return tmp_path


def _copy_checkpoint(env, dest: Path) -> Path:
    shutil.copytree(env["folder"], dest)
    return dest


def _nothing_left(root: Path) -> None:
    assert registry.load() == {}
    models = root / "models"
    assert not models.exists() or [p.name for p in models.iterdir()] == []


def test_unsupported_architecture(env, isolated: Path) -> None:
    folder = _copy_checkpoint(env, isolated / "qwen")
    config = json.loads((folder / "config.json").read_text())
    config["architectures"] = ["Qwen2ForCausalLM"]
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelError, match="unsupported architecture Qwen2ForCausalLM"):
        convert.convert(str(folder))
    _nothing_left(isolated)


def test_folder_without_safetensors(env, isolated: Path) -> None:
    folder = _copy_checkpoint(env, isolated / "nosafe")
    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")
    with pytest.raises(ModelError, match="no .safetensors weights"):
        convert.convert(str(folder))
    _nothing_left(isolated)


def test_truncated_safetensors(env, isolated: Path) -> None:
    folder = _copy_checkpoint(env, isolated / "cut")
    data = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match="truncated or corrupt"):
        convert.convert(str(folder))
    _nothing_left(isolated)


@pytest.mark.parametrize("change, message", [
    ("missing", "the checkpoint has no tensor for blk.1.ffn_up.weight"),
    ("unknown", "unexpected tensors in the checkpoint: model.layers.0.mlp.extra.weight"),
    # Meta's name for the q projection: TensorNameMap knows it, but Meta's rows are laid
    # out differently, so it is not taken from a Hugging Face checkpoint.
    ("meta name", "the checkpoint has no tensor for blk.0.attn_q.weight"),
    ("shape", r"model.layers.0.self_attn.k_proj.weight has shape \(64, 32\), config.json implies \(32, 64\)"),
])
def test_tensor_plan_rejects_what_is_not_a_plain_llama(env, isolated: Path, change: str, message: str) -> None:
    folder = _copy_checkpoint(env, isolated / "odd")
    weights = dict(env["weights"])
    if change == "missing":
        del weights["model.layers.1.mlp.up_proj.weight"]
    elif change == "unknown":
        weights["model.layers.0.mlp.extra.weight"] = weights["model.layers.0.mlp.up_proj.weight"]
    elif change == "meta name":
        weights["layers.0.attention.wq.weight"] = weights.pop("model.layers.0.self_attn.q_proj.weight")
    else:
        weights["model.layers.0.self_attn.k_proj.weight"] = weights["model.layers.0.self_attn.k_proj.weight"].T
    tiny.write_safetensors(folder / "model.safetensors", weights, "BF16")
    with pytest.raises(ModelError, match=message):
        convert.convert(str(folder))
    _nothing_left(isolated)


def test_tokenizer_that_is_not_llama3(env, isolated: Path) -> None:
    folder = _copy_checkpoint(env, isolated / "gpt2tok")
    tok = json.loads((folder / "tokenizer.json").read_text())
    tok["pre_tokenizer"] = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    (folder / "tokenizer.json").write_text(json.dumps(tok))
    with pytest.raises(ModelError, match="pre-tokenizer is not Llama 3's"):
        convert.convert(str(folder))
    _nothing_left(isolated)


def test_bad_source_and_quant(env, isolated: Path) -> None:
    with pytest.raises(ModelError, match="is a file"):
        convert.convert(str(env["folder"] / "config.json"))
    with pytest.raises(ModelError, match="neither a folder nor a Hugging Face repository id"):
        convert.convert("not a repo")
    with pytest.raises(ModelError, match="unknown quantization type 'Q9_9'"):
        convert.convert(str(env["folder"]), quant="Q9_9")
    _nothing_left(isolated)


def test_failed_quantization_leaves_nothing(env, isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(llama_cpp, "llama_model_quantize", lambda *a: 1)
    with pytest.raises(ModelError, match="failed to quantize to Q4_K_M"):
        convert.convert(str(env["folder"]), quant="Q4_K_M")
    _nothing_left(isolated)


def test_interrupted_write_leaves_nothing(env, isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"n": 0}
    original = gguf.GGUFWriter.write_tensor_data

    def interrupt(self, tensor, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return original(self, tensor, *args, **kwargs)

    monkeypatch.setattr(gguf.GGUFWriter, "write_tensor_data", interrupt)
    with pytest.raises(KeyboardInterrupt):
        convert.convert(str(env["folder"]), quant="Q8_0")
    _nothing_left(isolated)


def test_stale_partials_of_dead_conversions_are_removed(tmp_path: Path) -> None:
    import os

    dead = 4_000_000  # above any pid_max: no such process
    stale = tmp_path / f".Model-Q4_K_M.gguf.partial-{dead}.BF16"
    mine = tmp_path / f".Model-Q8_0.gguf.partial-{os.getpid()}"
    for path in (stale, mine):
        path.write_bytes(b"GGUF")
    assert convert.remove_stale_partials(tmp_path) == [stale]
    assert not stale.exists() and mine.exists()


@pytest.mark.parametrize("change, message", [
    ({"vocab_size": 1e10}, "vocab_size is 10000000000.0, expected a whole number from 1 to 4,194,304"),
    ({"vocab_size": 10**10}, "vocab_size is 10000000000, expected a whole number"),
    ({"num_hidden_layers": -1}, "num_hidden_layers is -1, expected a whole number"),
    ({"hidden_size": "64"}, "hidden_size is '64', expected a whole number"),
    ({"num_key_value_heads": 3}, "impossible shape"),
    # In range, but not what the weights hold: refused from the safetensors headers,
    # before the tokenizer is laid out to 4 million entries.
    ({"vocab_size": 4_000_000}, r"model.embed_tokens.weight has shape \(320, 64\), config.json implies \(4000000, 64\)"),
], ids=["float-vocab", "huge-vocab", "negative-layers", "text-size", "heads", "vocab-vs-weights"])
def test_absurd_config_shapes_are_refused_before_anything_is_sized_by_them(
        env, isolated: Path, monkeypatch: pytest.MonkeyPatch, change: dict, message: str) -> None:
    folder = _copy_checkpoint(env, isolated / "absurd")
    config = json.loads((folder / "config.json").read_text())
    config.update(change)
    (folder / "config.json").write_text(json.dumps(config))

    def no_tokenizer_yet(*args, **kwargs):
        raise AssertionError("the tokenizer was laid out before the shapes were checked")

    monkeypatch.setattr(convert, "load_vocab", no_tokenizer_yet)
    with pytest.raises(ModelError, match=message) as caught:
        convert.convert(str(folder))
    assert "\n" not in caught.value.one_line()
    _nothing_left(isolated)
