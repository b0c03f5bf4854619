"""The models the remote tests serve with vLLM, made offline and cached.

- `smollm2_checkpoint()`: the demo drafter's GGUF (SmolLM2-135M-Instruct Q4_1) as a
  float32 Hugging Face checkpoint, converted in the vLLM environment by
  hf_from_gguf.py. Served as the *base* model, it shares the local drafter's
  vocabulary: the path where draft token ids are handed over.
- `tiny_checkpoint()`: a random-weight Llama from `devtools.tiny` with head_dim
  64 (vLLM's CPU attention rejects 16) and its own 300-token tokenizer, plus the same
  model as an F32 GGUF for local comparison. Served as the base model next to the demo
  drafter, it is the cross-tokenizer path (the draft text is re-tokenized).

Both live in `.remote-models/` (gitignored), in folders named by a hash of what they
are made from, so a second `make test-remote` reuses them.
"""

from __future__ import annotations

import hashlib
import inspect
import subprocess
from dataclasses import dataclass
from pathlib import Path

from devtools.tiny import TinyConfig
from wsd_local.models.checksum import sha256_file

from vllm_server import ROOT, VLLM_PYTHON

CACHE = ROOT / ".remote-models"
#: head_dim 64; a context long enough for a frame, a draft and a continuation; float32
#: so that vLLM and llama.cpp compute the same numbers.
TINY = TinyConfig(hidden=256, heads=4, kv_heads=2, ffn=512, ctx=2048, dtype="F32")


@dataclass(frozen=True)
class TinyModel:
    checkpoint: Path  # Hugging Face folder, for vLLM
    gguf: Path  # the same weights for llama.cpp


def smollm2_checkpoint(gguf: Path) -> Path:
    script = Path(__file__).with_name("hf_from_gguf.py")
    key = hashlib.sha256((sha256_file(gguf) + _digest(script.read_bytes())).encode()).hexdigest()[:16]
    out = CACHE / f"smollm2-{key}"
    if not (out / "config.json").is_file():
        CACHE.mkdir(exist_ok=True)
        env = {"OMP_WAIT_POLICY": "PASSIVE", "PATH": "/usr/bin:/bin", "HOME": str(Path.home()),
               "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}  # a local file: no network
        subprocess.run([str(VLLM_PYTHON), str(script), str(gguf), str(out)], check=True, env=env)
    return out


def tiny_model() -> TinyModel:
    from devtools import tiny

    key = _digest(repr(TINY).encode() + inspect.getsource(tiny).encode())[:16]
    folder = CACHE / f"tiny-{key}"
    gguf = tiny.make_tiny_gguf(folder, quant="F32", seed=0, cfg=TINY)
    return TinyModel(checkpoint=folder / "ckpt-0", gguf=gguf)


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
