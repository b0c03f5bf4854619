"""What the decoder needs from a model, independent of how it runs.

The decoder never touches llama.cpp directly: `remote.RemoteBackend` implements the
same protocol over a vLLM server's OpenAI-compatible API (docs/REMOTE.md).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generator, Protocol, Sequence, cast

from ..trace import ModelIdentity

if TYPE_CHECKING:
    from ..messages import Message


@dataclass(frozen=True)
class GeneratedToken:
    id: int
    logprob: float  # the model's own log-probability of the chosen token
    top_margin: float  # logprob gap between the best and second-best token (near-tie signal)
    # The log-probability of the model's most likely token at this step (Nudging's
    # confidence signal); None when it is the chosen token's own (greedy decoding).
    top_logprob: float | None = None

    @property
    def best_logprob(self) -> float:
        """log P of the most likely token at this step, whichever token was chosen."""
        return self.logprob if self.top_logprob is None else self.top_logprob


class Backend(Protocol):
    identity: ModelIdentity
    n_ctx: int
    n_vocab: int
    # why the last generate() ended: eos | max_tokens | context_full | cancelled, and for a
    # model on a server connection_lost | server_error
    stop_reason: str

    @property
    def vocab_fingerprint(self) -> str:
        """Equal for two models exactly when token ids mean the same text. (A model on a
        server cannot list its vocabulary: it takes a local model's fingerprint once a
        probe shows the two agree, see remote_twin.py.)"""
        ...

    @property
    def chat_template(self) -> str | None: ...

    def special_token_text(self, which: str) -> str: ...

    def tokenize(self, text: str, add_bos: bool, special: bool = False) -> list[int]: ...

    def detokenize(self, tokens: Sequence[int]) -> bytes: ...

    def token_bytes(self, token: int) -> bytes: ...

    def decode_text(self, tokens: Sequence[int]) -> bytes:
        """The tokens as text the way the tokenizer decodes an output (Hugging Face's
        `decode(skip_special_tokens=True)`): special tokens left out, spaces cleaned up
        where the tokenizer does that (" ." -> "."). The paper's hand-over reads the
        draft this way (handoff.py)."""
        ...

    def vocabulary(self) -> Sequence[bytes] | None:
        """Every token's bytes, by id (special tokens as empty bytes), or None when the
        backend cannot list them. Online mode uses them to find where a growing draft
        can no longer be re-split (stability.py)."""
        ...

    def check_fits(self, n_tokens: int) -> None:
        """Raise PromptError when n_tokens exceed the context."""
        ...

    def is_end_of_generation(self, token: int) -> bool: ...

    def score(self, tokens: Sequence[int], start: int) -> list[float]:
        """log P(tokens[j] | tokens[:j]) for j in start..len(tokens)-1, reusing the KV
        cache for the longest prefix already evaluated. Leaves `tokens` in the cache."""
        ...

    def generate(self, context: Sequence[int], max_new_tokens: int, *, temperature: float = 0.0,
                 top_p: float = 1.0, seed: int = 0, cancel: threading.Event | None = None,
                 generated: int = 0) -> Generator[GeneratedToken, None, None]:
        """Continue `context` token by token, reusing the cached prefix; stops at
        end-of-generation (not yielded), the token limit, the context size or `cancel`.
        The last `generated` tokens of `context` are ones this model wrote itself: they
        are read again as it wrote them, one token at a time, so that writing on from
        them continues exactly as writing on would have (a batched read rounds
        otherwise, and a near tie can go the other way)."""
        ...

    def close(self) -> None:
        """Free the model: llama.cpp's memory, or the connection to its server."""
        ...


class ServedBackend(Backend, Protocol):
    """What a model on a server (`identity.remote`) can do besides: lose its server in
    the middle of an answer, and take a local model's vocabulary (it cannot list its
    own)."""

    # (stop reason, why in words) when the running answer lost the server, else None
    lost: tuple[str, str] | None

    @property
    def shares_vocabulary(self) -> bool:
        """`adopt_vocabulary` found the server's tokenizer to be a local model's."""
        ...

    def begin_answer(self, cancel: threading.Event) -> None:
        """An answer starts: a lost server stops it through `cancel` (Esc's path)."""
        ...

    def end_answer(self) -> tuple[str, str] | None:
        """The answer ended: (stop reason, why) if the server was lost during it."""
        ...

    def adopt_vocabulary(self, local: Backend) -> bool:
        """Take `local`'s vocabulary when the server's tokenizer is the same; True if so."""
        ...

    def share_vocabulary_with(self, other: "ServedBackend") -> bool:
        """Both models on servers: hand ids over when the tokenizers are one; True if so."""
        ...

    def chat_prompt(self, messages: Sequence["Message"]) -> list[int]:
        """A drafter's prompt: the conversation in its chat template, applied by the server."""
        ...


def served(model: Backend | None) -> ServedBackend | None:
    """The model as a model on a server, or None for a local one (or none)."""
    return cast(ServedBackend, model) if model is not None and model.identity.remote else None


def all_served(*models: Backend | None) -> bool:
    """Every model loaded is on a server (and at least one is loaded): nothing runs in
    this process, so several answers may run at once, each in its own thread (a model on
    a server keeps each answer's state per thread: RemoteBackend)."""
    loaded = [m for m in models if m is not None]
    return bool(loaded) and all(served(m) is not None for m in loaded)
