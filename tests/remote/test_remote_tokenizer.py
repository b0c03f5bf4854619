"""The checkpoint vLLM serves as the base model reads text as llama.cpp reads the GGUF it
was made from: its tokenizer.json (with the `tokenizers` package, as vLLM loads it)
and llama.cpp give the same tokens for text where pre-tokenizers differ: digits next
to newlines, runs of whitespace, contractions, numbers, scripts without spaces, emoji,
the frame's tags. Needs the vLLM environment only to build the checkpoint."""

from __future__ import annotations

import contextlib
import io

import pytest
from remote_checkpoints import smollm2_checkpoint

TRICKY = [
    "Hello\n\n1. Go",
    "Steps:\n\n1. Mix\n2. Bake\n\n\n3. Serve",
    "1234567890 and 3.14159, 1,000,000 or 2024-06-01",
    "Call 555-0100 now; version 2.0.1-rc3, 1st 2nd 3rd",
    "x² + y² = z², ½ cup, ٣٤٥ and ४२",
    "  leading spaces, trailing   ",
    "tabs\tand\nnewlines\n\n\n  indented",
    "don't you'll I'm we've they'd it's",
    "emoji 👩‍👩‍👧‍👦 and café, naïve, Ærø",
    "日本の首都は東京です。2024年",
    "def f(x_1, y2):\n    return x_1**2 + y2  # 42",
    "\n\n[User]\nHi\n\n[Assistant]\n",
    "https://example.org/api/v2/users?id=42&sort=desc",
]


@pytest.fixture(scope="module")
def both():
    import llama_cpp
    import tokenizers

    from wsd_local.models import demo

    folder = smollm2_checkpoint(demo.drafter_path())
    hf = tokenizers.Tokenizer.from_file(str(folder / "tokenizer.json"))
    with contextlib.redirect_stderr(io.StringIO()):
        llama = llama_cpp.Llama(str(demo.drafter_path()), vocab_only=True, verbose=False)
    yield hf, llama
    llama.close()


@pytest.mark.parametrize("text", TRICKY)
def test_checkpoint_tokenizes_like_llama_cpp(both, text: str) -> None:
    hf, llama = both
    ours = llama.tokenize(text.encode(), add_bos=False, special=False)
    theirs = hf.encode(text, add_special_tokens=False).ids
    assert theirs == ours, text
    assert hf.decode(theirs, skip_special_tokens=False) == text
