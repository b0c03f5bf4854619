"""Pair check before loading: do drafter and base share a tokenizer, and are their roles
plausible?

"Share a tokenizer" is decided on the GGUF token lists themselves (plus tokenizer model
and pre-tokenizer), never on model names; when they match, draft token ids go to the
base model as they are. WSD drafts with the drafter's chat template and prompts the base
in plain text, so a drafter without a template or a base with one is probably a mix-up:
a warning, not an error.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..gguf_format.reader import GGUFInfo, read_gguf

_TOKENS = "tokenizer.ggml.tokens"


@dataclass
class PairReport:
    drafter: Path
    base: Path
    shared_tokenizer: bool          # token ids mean the same text in both models
    reason: str                     # why (not), in a few words
    drafter_vocab: int
    base_vocab: int
    drafter_tokenizer: str          # "gpt2/llama-bpe", "llama/default", ...
    base_tokenizer: str
    drafter_has_chat_template: bool
    base_has_chat_template: bool
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {**asdict(self), "drafter": str(self.drafter), "base": str(self.base)}


def _tokenizer_kind(info: GGUFInfo) -> str:
    return f"{info.tokenizer_model or '?'}/{info.tokenizer_pre or 'default'}"


def compare_vocabularies(drafter: GGUFInfo, base: GGUFInfo) -> tuple[bool, str]:
    d_tokens, b_tokens = drafter.tokens, base.tokens
    if d_tokens is None or b_tokens is None:
        return False, "a model has no token list"
    if drafter.tokenizer_model != base.tokenizer_model:
        return False, f"different tokenizer types ({drafter.tokenizer_model} vs {base.tokenizer_model})"
    if len(d_tokens) != len(b_tokens):
        return False, f"different vocabulary sizes ({len(d_tokens)} vs {len(b_tokens)})"
    if d_tokens != b_tokens:
        first = next(i for i, (a, b) in enumerate(zip(d_tokens, b_tokens)) if a != b)
        return False, f"vocabularies differ from token id {first} ({d_tokens[first]!r} vs {b_tokens[first]!r})"
    if (drafter.tokenizer_pre or "default") != (base.tokenizer_pre or "default"):
        # Same ids, different text splitting: ids still mean the same text, so handing
        # ids over is sound; say so.
        return True, (f"identical {len(d_tokens)}-token vocabularies "
                      f"(pre-tokenizers differ: {drafter.tokenizer_pre} vs {base.tokenizer_pre})")
    return True, f"identical {len(d_tokens)}-token vocabularies"


def template_warnings(drafter_name: str, drafter_has_template: bool,
                      base_name: str, base_has_template: bool) -> list[str]:
    """A base model should have no chat template; a drafter needs one."""
    warnings: list[str] = []
    if base_has_template:
        warnings.append(f"the base model {base_name} has a chat template: it may be an instruct model; "
                        "WSD expects a pretrained base model (it is prompted in plain text)")
    if not drafter_has_template:
        warnings.append(f"the drafter {drafter_name} has no chat template: WSD drafts with the drafter's "
                        "chat template, so it needs a chat-tuned (aligned) model")
    return warnings


def check_pair(drafter: str | Path, base: str | Path) -> PairReport:
    """Read both GGUF headers (no model load, about 0.1 s each) and compare."""
    d = read_gguf(drafter, arrays={_TOKENS})
    b = read_gguf(base, arrays={_TOKENS})
    shared, reason = compare_vocabularies(d, b)
    warnings = template_warnings(Path(drafter).name, d.chat_template is not None,
                                 Path(base).name, b.chat_template is not None)
    return PairReport(
        drafter=Path(drafter), base=Path(base), shared_tokenizer=shared, reason=reason,
        drafter_vocab=len(d.tokens or []), base_vocab=len(b.tokens or []),
        drafter_tokenizer=_tokenizer_kind(d), base_tokenizer=_tokenizer_kind(b),
        drafter_has_chat_template=d.chat_template is not None,
        base_has_chat_template=b.chat_template is not None, warnings=warnings,
    )
