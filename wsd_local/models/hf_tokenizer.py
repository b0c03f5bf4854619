"""A Hugging Face Llama-3 tokenizer (tokenizer.json) as llama.cpp wants it in a GGUF:
tokenizer model "gpt2" (byte-level BPE), pre-tokenizer "llama-bpe".

Tokens and types are built as llama.cpp's convert_hf_to_gguf.py builds them (embedding
rows beyond the tokenizer are [PADn] UNUSED tokens; added tokens CONTROL when special,
else USER_DEFINED), which gguf's `BpeVocab` does not do. Merges, special ids, add-BOS
and the chat template come from gguf's `SpecialVocab`.
"""

from __future__ import annotations

import contextlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import gguf

from ..errors import ModelError

TOKENIZER_MODEL = "gpt2"
PRE_TOKENIZER = "llama-bpe"
# The Llama-3 pre-tokenizer regex; llama.cpp's "llama-bpe" implements exactly this split.
LLAMA3_SPLIT_REGEX = (
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"
    "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
)


@dataclass
class Vocab:
    tokens: list[str]
    types: list[int]            # gguf.TokenType values
    merges: list[str]
    special_ids: dict[str, int]  # bos, eos, ... -> token id
    add_bos: bool | None
    chat_template: str | None


def load_vocab(folder: Path, vocab_size: int) -> Vocab:
    """The checkpoint's tokenizer in llama.cpp's layout, `vocab_size` tokens long (the
    embedding's row count, from config.json)."""
    path = folder / "tokenizer.json"
    if not path.is_file():
        hint = ("SentencePiece tokenizers (Llama 1/2) are not supported"
                if (folder / "tokenizer.model").is_file() else "a fast tokenizer (tokenizer.json) is needed")
        raise ModelError(f"{folder} has no tokenizer.json", hint)
    try:
        tok = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, RecursionError):
        raise ModelError(f"{path} is not valid JSON", "download the checkpoint again") from None
    model = (tok.get("model") or {}) if isinstance(tok, dict) else None
    if not isinstance(model, dict) or not isinstance(tok.get("decoder") or {}, dict):
        raise ModelError(f"{path} is not a tokenizer.json (no model and decoder objects)",
                         "download the checkpoint again")
    if model.get("type") != "BPE" or model.get("byte_fallback") or (tok.get("decoder") or {}).get("type") != "ByteLevel":
        raise ModelError("the tokenizer is not a byte-level BPE like Llama 3's",
                         "only Llama-3 style tokenizers can be converted")
    if pre_tokenizer_name(tok) is None:
        raise ModelError("the tokenizer's pre-tokenizer is not Llama 3's",
                         f"only Llama-3 style tokenizers (llama.cpp pre-tokenizer {PRE_TOKENIZER}) can be converted")

    try:
        by_id: dict[int, str] = {int(i): str(t) for t, i in model["vocab"].items()}
        added: dict[int, dict[str, Any]] = {int(a["id"]): a for a in tok.get("added_tokens") or []}
        for tid, item in added.items():
            by_id[tid] = str(item["content"])
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ModelError(f"{path} lacks or garbles {exc}", "download the checkpoint again") from None
    if by_id and min(by_id) < 0:
        raise ModelError(f"the tokenizer has a negative token id ({min(by_id)})", "the checkpoint is inconsistent")
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
            special = bool(added[i].get("special")) or (text.startswith("<|") and text.endswith("|>"))
            types.append(int(gguf.TokenType.CONTROL if special else gguf.TokenType.USER_DEFINED))
        else:
            types.append(int(gguf.TokenType.NORMAL))

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


def pre_tokenizer_name(tok: dict[str, Any]) -> str | None:
    """llama.cpp's pre-tokenizer name for this tokenizer.json, or None if unsupported."""
    pre = tok.get("pre_tokenizer") or {}
    steps = pre.get("pretokenizers") if pre.get("type") == "Sequence" else [pre]
    regexes = [((s.get("pattern") or {}).get("Regex")) for s in steps if s.get("type") == "Split"]
    byte_level = [s for s in steps if s.get("type") == "ByteLevel"]
    if regexes == [LLAMA3_SPLIT_REGEX] and len(byte_level) == 1 and not byte_level[0].get("use_regex", True) \
            and tok.get("normalizer") is None:
        return PRE_TOKENIZER
    return None


@contextlib.contextmanager
def _quiet_logger(name: str) -> Iterator[None]:
    logger = logging.getLogger(name)
    old = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(old)
