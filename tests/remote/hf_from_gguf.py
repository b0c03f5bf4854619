"""Turn a GGUF model into a Hugging Face checkpoint that vLLM can serve (offline).

Runs in the vLLM virtual environment (it needs torch, transformers, accelerate and
gguf), never in the project's: `make test-remote` calls

    .venv-vllm/bin/python tests/remote/hf_from_gguf.py MODEL.gguf OUT_FOLDER

transformers' GGUF loader dequantizes the weights to float32; `save_pretrained` refuses a
model that came from a GGUF file, so the tensors are written with safetensors directly.
Three fixes make the result load correctly in vLLM:
- `config.json` names the architecture (`LlamaForCausalLM`) and has no
  `quantization_config` (the weights are plain float32 now);
- a tied embedding is stored as `model.embed_tokens.weight`: safetensors keeps one
  name per shared tensor (`lm_head.weight`), and vLLM would then run with an empty
  embedding and write nothing.
The folder is written under a temporary name and renamed when complete.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path


def convert(gguf: Path, out: Path) -> None:
    import torch
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    start = time.perf_counter()
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype="float32")
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    tokenizer.save_pretrained(str(partial))

    state = {name: tensor.detach().to(torch.float32).contiguous().clone()
             for name, tensor in model.state_dict().items()}
    if model.config.tie_word_embeddings:
        state.pop("lm_head.weight", None)
    save_file(state, str(partial / "model.safetensors"), metadata={"format": "pt"})

    config = model.config.to_dict()
    config.pop("quantization_config", None)
    config["architectures"] = ["LlamaForCausalLM"]
    config["torch_dtype"] = config["dtype"] = "float32"
    (partial / "config.json").write_text(json.dumps(config, indent=2))
    shutil.rmtree(out, ignore_errors=True)
    partial.rename(out)
    print(f"{gguf.name} -> {out} ({time.perf_counter() - start:.0f} s)", flush=True)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: hf_from_gguf.py MODEL.gguf OUT_FOLDER", file=sys.stderr)
        return 2
    convert(Path(argv[0]), Path(argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
