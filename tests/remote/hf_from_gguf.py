"""Turn a GGUF model into a Hugging Face checkpoint that vLLM can serve (offline).

Runs in the vLLM virtual environment (it needs torch, transformers, accelerate and
gguf), never in the project's: `make test-remote` calls

    .venv-vllm/bin/python tests/remote/hf_from_gguf.py MODEL.gguf OUT_FOLDER

transformers' GGUF loader dequantizes the weights to float32; `save_pretrained` refuses a
model that came from a GGUF file, so the tensors are written with safetensors directly.
These fixes make the result load correctly in vLLM and read text as llama.cpp does:
- `config.json` names the architecture (`LlamaForCausalLM`) and has no
  `quantization_config` (the weights are plain float32 now);
- a tied embedding is stored as `model.embed_tokens.weight`: safetensors keeps one
  name per shared tensor (`lm_head.weight`), and vLLM would then run with an empty
  embedding and write nothing;
- `tokenizer.json` gets the pre-tokenizer the GGUF names (`tokenizer.ggml.pre`), which
  transformers' loader leaves out: SmolLM2's `smollm` splits digits one by one before
  the GPT-2 split, so "Hello\n\n1. Go" keeps "\n\n" as one token, as in llama.cpp
  (tests/remote/test_remote_tokenizer.py compares the two).
The folder is written under a temporary name and renamed when complete.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path


#: llama.cpp's pre-tokenizers (llama-vocab.cpp, by `tokenizer.ggml.pre`) as Hugging Face
#: `tokenizers` pre-tokenizers. `smollm`: the regex "\p{N}" (each digit alone), then
#: GPT-2's split, which ByteLevel's regex is (its trailing `\s+` only names the single
#: whitespace character llama.cpp's split leaves as a piece of its own).
PRE_TOKENIZERS = {
    "smollm": {"type": "Sequence", "pretokenizers": [
        {"type": "Digits", "individual_digits": True},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
    ]},
}


def gguf_pre_tokenizer(gguf: Path) -> str:
    from gguf import GGUFReader

    field = GGUFReader(str(gguf)).fields.get("tokenizer.ggml.pre")
    return bytes(field.parts[field.data[0]]).decode() if field is not None else ""


def faithful_tokenizer(folder: Path, pre: str) -> None:
    """Give the saved tokenizer.json the GGUF's pre-tokenizer; one we have no
    translation for is an error (the checkpoint would read text differently)."""
    if pre not in PRE_TOKENIZERS:
        raise SystemExit(f"hf_from_gguf.py: no Hugging Face pre-tokenizer for llama.cpp's {pre!r}; "
                         "add one to PRE_TOKENIZERS")
    path = folder / "tokenizer.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    data["pre_tokenizer"] = PRE_TOKENIZERS[pre]
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")


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
    faithful_tokenizer(partial, gguf_pre_tokenizer(gguf))

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
