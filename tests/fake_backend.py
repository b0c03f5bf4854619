"""A scripted fake `Backend`, for the decoder's rare paths and error paths only.

The demo pair reaches some decoder paths rarely or never: re-tokenization that changes
already scored tokens, a draft whose first characters merge with the frame's last
token, a token that ends inside a UTF-8 character, cancelling in each phase, EOS in the
middle of an online chunk, an empty draft. This fake makes each of them happen on
purpose, in milliseconds. Behaviour (real switch points, real answers, online == paper
on real text) stays tested against the real demo models in test_engine.py and
test_online.py; nothing here says anything about llama.cpp.

A test scripts:
- the vocabulary (`FakeVocab`): token pieces; text is tokenized greedily, longest piece
  first, with single bytes as fallback, so " the" + "re" becomes " there" when " there"
  is a piece, and a draft can merge with the frame's last token;
- what `generate` writes (`writes`: pieces, str or bytes, then end of generation);
- what `score` returns (`prob(position, piece)`: the probability of the token `piece`
  at absolute position `position` of the scored sequence);
- or, for nudging, what `generate` writes after a given context (`respond(text)`: the
  pieces and each one's top-1 probability for the context as text), so the base model
  can be asked at any word boundary; `on_token(i)` runs before the i-th token of a call
  is handed out (e.g. to set cancel mid-turn).

Every `score` and `generate` call is recorded, with how many leading tokens a real
backend would reuse from its KV cache, so tests can check what was evaluated.
"""

from __future__ import annotations

import hashlib
import math
import threading
from dataclasses import dataclass, field
from typing import Callable, Generator, Iterable, Sequence

from wsd_local.backend.protocol import Backend, GeneratedToken
from wsd_local.errors import PromptError
from wsd_local.trace import ModelIdentity

BOS, EOS = 0, 1
#: Enough to render the drafter's prompt; the fake does not care what it says.
CHAT_TEMPLATE = ("{{ bos_token }}{% for m in messages %}<|{{ m.role }}|>{{ m.content }}\n"
                 "{% endfor %}<|assistant|>")

ProbFn = Callable[[int, bytes], float]


def _as_bytes(piece: str | bytes) -> bytes:
    return piece.encode("utf-8") if isinstance(piece, str) else piece


class FakeVocab:
    """Token ids 0 and 1 are BOS and EOS (they render as nothing), then the 256 single
    bytes (so any text tokenizes), then the given pieces. Fixed once built."""

    def __init__(self, pieces: Iterable[str | bytes] = ()) -> None:
        self.pieces: list[bytes] = [b"", b""] + [bytes([b]) for b in range(256)]
        self.pieces += [p for p in dict.fromkeys(map(_as_bytes, pieces)) if len(p) > 1]
        self.ids = {piece: i for i, piece in enumerate(self.pieces) if i > EOS}

    def id(self, piece: str | bytes) -> int:
        return self.ids[_as_bytes(piece)]

    def tokenize(self, data: bytes) -> list[int]:
        """Greedy longest match, left to right."""
        longest = max(len(p) for p in self.pieces)
        out, pos = [], 0
        while pos < len(data):
            for size in range(min(longest, len(data) - pos), 0, -1):
                token = self.ids.get(data[pos: pos + size])
                if token is not None:
                    out.append(token)
                    pos += size
                    break
        return out

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(b"\0".join(self.pieces)).hexdigest()


@dataclass
class ScoreCall:
    tokens: list[int]
    start: int
    reused: int  # leading tokens a real backend would take from its KV cache

    @property
    def positions(self) -> range:
        return range(self.start, len(self.tokens))


@dataclass
class GenerateCall:
    context: list[int]
    max_new_tokens: int
    reused: int
    generated: int = 0  # trailing context tokens the model wrote itself (re-read one by one)


@dataclass
class FakeBackend:
    """Implements `wsd_local.backend.protocol.Backend` from a script (see the module
    docstring). One instance per role; pass the same `FakeVocab` to both roles for a
    shared vocabulary."""

    role: str
    vocab: FakeVocab
    writes: Sequence[str | bytes] = ()
    prob: ProbFn = lambda position, piece: 0.5  # noqa: E731
    n_ctx: int = 4096
    chat_template: str | None = CHAT_TEMPLATE
    # False: like a server without a local twin, the vocabulary cannot be listed (online
    # mode then has no safe-boundary check and falls back to its unscored tail).
    lists_vocabulary: bool = True
    # Called inside `score`, as a real backend would be busy there (e.g. to set cancel).
    on_score: Callable[[ScoreCall], None] | None = None
    # Nudging: the pieces written after a context (given as text) with their top-1
    # probabilities, then end of generation; replaces `writes` when set.
    respond: Callable[[str], Sequence[tuple[str | bytes, float]]] | None = None
    on_token: Callable[[int], None] | None = None
    score_calls: list[ScoreCall] = field(default_factory=list)
    generate_calls: list[GenerateCall] = field(default_factory=list)
    stop_reason: str = ""
    identity: ModelIdentity = field(init=False)
    n_vocab: int = field(init=False)
    _cached: list[int] = field(default_factory=list)  # what a real KV cache would hold

    def __post_init__(self) -> None:
        self.written = [self.vocab.id(p) for p in self.writes]  # KeyError: not in the vocabulary
        self.n_vocab = len(self.vocab.pieces)
        self.identity = ModelIdentity(role=self.role, name=f"fake-{self.role}", path="",
                                      architecture="fake", quantization="none", size_bytes=0,
                                      n_vocab=self.n_vocab)

    @property
    def vocab_fingerprint(self) -> str:
        return self.vocab.fingerprint

    def special_token_text(self, which: str) -> str:
        return {"bos": "<s>", "eos": "</s>"}[which]

    def tokenize(self, text: str, add_bos: bool, special: bool = False) -> list[int]:
        return ([BOS] if add_bos else []) + self.vocab.tokenize(text.encode("utf-8"))

    def detokenize(self, tokens: Sequence[int]) -> bytes:
        return b"".join(self.token_bytes(t) for t in tokens)

    def token_bytes(self, token: int) -> bytes:
        return self.vocab.pieces[token]

    def decode_text(self, tokens: Sequence[int]) -> bytes:
        return self.detokenize(tokens)  # special tokens render as nothing already

    def vocabulary(self) -> Sequence[bytes] | None:
        return self.vocab.pieces if self.lists_vocabulary else None

    def check_fits(self, n_tokens: int) -> None:
        if n_tokens > self.n_ctx:
            raise PromptError(f"the prompt is {n_tokens} tokens, longer than the {self.role}'s "
                              f"context of {self.n_ctx}")

    def is_end_of_generation(self, token: int) -> bool:
        return token == EOS

    def _reuse(self, tokens: Sequence[int], limit: int) -> int:
        n = 0
        while n < min(limit, len(tokens), len(self._cached)) and self._cached[n] == tokens[n]:
            n += 1
        return n

    def score(self, tokens: Sequence[int], start: int) -> list[float]:
        if start < 1:
            raise ValueError("scoring needs at least one token of context")
        self.check_fits(len(tokens))
        call = ScoreCall(list(tokens), start, self._reuse(tokens, start - 1))
        self.score_calls.append(call)
        if self.on_score is not None:
            self.on_score(call)
        self._cached = list(tokens)
        return [math.log(self.prob(j, self.token_bytes(tokens[j]))) for j in range(start, len(tokens))]

    def generate(self, context: Sequence[int], max_new_tokens: int, *, temperature: float = 0.0,
                 top_p: float = 1.0, seed: int = 0, cancel: threading.Event | None = None,
                 generated: int = 0) -> Generator[GeneratedToken, None, None]:
        if not context:
            raise ValueError("generation needs at least one token of context")
        self.check_fits(len(context))
        self.generate_calls.append(GenerateCall(list(context), max_new_tokens,
                                                self._reuse(context, len(context) - 1), generated))
        self._cached = list(context)
        self.stop_reason = "max_tokens"
        if self.respond is not None:
            text = self.detokenize(context).decode("utf-8", errors="replace")
            script = iter([(self.vocab.id(piece), p) for piece, p in self.respond(text)])
        else:
            script = iter((token, 0.9) for token in self.written)
        for i in range(max_new_tokens):
            if cancel is not None and cancel.is_set():
                self.stop_reason = "cancelled"
                return
            token, p = next(script, (EOS, 1.0))
            if self.is_end_of_generation(token):
                self.stop_reason = "eos"
                return
            if self.on_token is not None:
                self.on_token(i)
            yield GeneratedToken(token, math.log(p), top_margin=1.0, top_logprob=math.log(p))
            if len(self._cached) >= self.n_ctx:
                self.stop_reason = "context_full"
                return
            self._cached.append(token)


def by_piece(table: dict[str, float], default: float = 0.5) -> ProbFn:
    """A scoring script: the probability of a token is looked up by its text."""
    return lambda position, piece: table.get(piece.decode("utf-8", errors="replace"), default)


if __debug__:  # the fake must stay a Backend (mypy checks this assignment too)
    _check: Callable[..., Backend] = FakeBackend
