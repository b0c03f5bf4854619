"""How the draft reaches the base model: as the drafter's token ids, or as text.

The paper's reference code always goes through text (`inference/check.py`,
`target_apply_template`): the drafter's output is decoded with its tokenizer (special
tokens skipped, and, for tokenizers that do it, the clean-up of spaces before
punctuation), stripped, appended to the base model's frame, right-stripped, and
tokenized again by the base tokenizer. `handed_text` is that string for our drafter:
llama.cpp's detokenizer with special tokens removed does the same decoding, clean-up
included where the tokenizer asks for it.

With `handoff = "ids"` and two models of one vocabulary, the drafter's ids are the draft
tokens as they are (no decoding, nothing to re-split); with other vocabularies there is
no choice but text.
"""

from __future__ import annotations

import weakref
from typing import Sequence

from .backend.protocol import Backend
from .textstream import whole_characters

#: Clean-up rewrites a space followed by punctuation or a contraction (" ." -> ".",
#: " n't" -> "n't", " ' " -> "'"): it reads at most this many characters past a space,
#: so only the text's last characters can still change as the draft grows.
CLEANUP_REACH = 5
_CLEANUP_PROBES = ("a .", "a ,", "a ?", "a !", "a 's", "a n't", "a ' b")


def handed_text(drafter: Backend, ids: Sequence[int]) -> str:
    """The draft as the reference hands it over: decoded (whole characters only),
    without leading whitespace. (The right side is stripped with the frame, which
    keeps trailing whitespace available to later, longer drafts.)"""
    return whole_characters(drafter.decode_text(ids)).lstrip()


#: A drafter's answer, found once: a drafter on a server would otherwise pay a request
#: per probe in every answer.
_CLEANS: "weakref.WeakKeyDictionary[Backend, bool]" = weakref.WeakKeyDictionary()


def cleans_spaces(drafter: Backend) -> bool:
    """Whether the drafter's decoding rewrites spaces (HF's clean_up_tokenization)."""
    try:
        known = _CLEANS.get(drafter)
    except TypeError:  # a backend that cannot be a key (unhashable): asked every time
        known = None
    if known is None:
        known = any(whole_characters(drafter.decode_text(drafter.tokenize(probe, add_bos=False))) != probe
                    for probe in _CLEANUP_PROBES)
        try:
            _CLEANS[drafter] = known
        except TypeError:
            pass
    return known


def settled_length(text: str, cleans: bool) -> int:
    """Characters of a partial draft's handed text that more draft cannot change."""
    return max(0, len(text) - CLEANUP_REACH) if cleans else len(text)


__all__ = ["handed_text", "cleans_spaces", "settled_length", "CLEANUP_REACH"]
