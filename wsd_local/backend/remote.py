"""The base model on a server: the `Backend` protocol over vLLM's OpenAI-compatible API.

| Backend             | request                                                          |
| ------------------- | ---------------------------------------------------------------- |
| score               | POST /v1/completions, prompt = token ids, prompt_logprobs = 0     |
| generate            | the same, stream = true, logprobs = 2, return_tokens_as_token_ids |
| tokenize            | POST /tokenize (+ raw token strings for exact bytes)             |
| detokenize, bytes   | from the raw strings (remote_vocab.py); POST /detokenize if unseen |
| n_ctx               | GET /v1/models (max_model_len)                                    |

Scores are keyed by token id (no string matching). vLLM does not use its prefix cache
for requests with prompt log-probabilities, so every scoring request computes the
whole prompt + draft: online mode with remote bases should score in larger chunks
(docs/REMOTE.md has the numbers).

Faults mid-answer keep what was written, marked: `stop_reason` is `connection_lost`
(the request did not get through, or the stream broke off) or `server_error` (the
server answered with an error status), and `Engine` puts the reason in words into the
trace's `stop_note`. A continuation that fails ends with that stop reason; a scoring
request that still fails after its retries stops the answer through the answer's
cancel event, the same path as Esc. Outside an answer (`begin_answer` not called)
such failures raise `RemoteError`.
"""

from __future__ import annotations

import collections
import hashlib
import threading
from typing import Any, Generator, Sequence

from ..errors import PromptError, RemoteError
from ..trace import SERVER_STOPS, ModelIdentity
from .http import RequestCancelled, ServerClient, StreamLost, TransportFailure
from .protocol import Backend, GeneratedToken
from .remote_spec import RemoteOptions, RemoteSpec
from .remote_twin import same_vocabulary
from .remote_vocab import StreamBytes, detect_style, incomplete_tail, raw_token_bytes
from .server_kind import (LLAMA_SERVER, OLLAMA, VLLM, check_prompt_logprobs, find_model, prompt_logprobs,
                          refusal, scoring_request)

#: Online mode's default chunk when the base model is on a server (instead of 16):
#: every scoring request recomputes the frame and the whole draft so far (vLLM skips its
#: prefix cache for prompt log-probabilities), so halving the requests halves that work
#: and the round trips, for at most 16 more drafted tokens (docs/BENCHMARKS.md).
REMOTE_CHUNK_TOKENS = 32

#: Seen in the raw strings of every tokenizer: spaces, a newline, a word.
_STYLE_PROBE = " the a\n b"


class RemoteBackend:
    """A model served by vLLM (or a server with the same API). One per server model."""

    def __init__(self, spec: RemoteSpec, role: str, options: RemoteOptions | None = None) -> None:
        self.spec = spec
        self.role = role
        self.client = ServerClient(spec, options or RemoteOptions())
        try:
            self.model = find_model(self.client, spec.model)
            if role == "base" and self.model.engine in (LLAMA_SERVER, OLLAMA):
                # Recognised by their model list; any other server must pass the scoring
                # check below.
                raise refusal(self.model.engine, self.client)
            ids, raws = self.tokenize_raw(_STYLE_PROBE, add_special=False)
            self.style = detect_style(raws)
            # Tokens the tokenizer adds by itself (BOS) render as nothing, as in llama.cpp.
            self._added = set(self.tokenize_raw("", add_special=True)[0])
            if role == "base":
                check_prompt_logprobs(self.client, self.model, (sorted(self._added) + ids)[:2] or ids[:2])
        except BaseException:
            self.client.close()
            raise
        self.n_ctx = self.model.max_model_len or 2048
        self._bytes: dict[int, bytes] = {i: b"" for i in self._added}
        self._context_bytes: dict[int, bytes] = {}  # this continuation's inexact splits
        self._vocab_source: Backend | None = None  # a local model with the same vocabulary
        self._probe_ids = tuple(ids)
        self.n_vocab = 0  # not published by the server; known once a local twin is found
        self.stop_reason = ""
        self.lost: tuple[str, str] | None = None  # (stop reason, why in words) if this answer lost its server
        self._answer_cancel: threading.Event | None = None
        self.identity = ModelIdentity(
            role=role, name=self.model.name, path=spec.api_url, architecture="remote",
            quantization="unknown", size_bytes=0, n_vocab=0, engine=self.model.engine)

    # -- vocabulary ----------------------------------------------------------------
    @property
    def vocab_fingerprint(self) -> str:
        """The local twin's fingerprint once `adopt_vocabulary` checked the server's
        tokenizer against it; otherwise a digest of the server's own tokenization of a
        probe, which never equals a local model's."""
        if self._vocab_source is not None:
            return self._vocab_source.vocab_fingerprint
        digest = hashlib.sha256(f"remote\0{self.style}\0".encode())
        digest.update(",".join(map(str, self._probe_ids)).encode())
        return "remote-" + digest.hexdigest()

    def adopt_vocabulary(self, local: Backend) -> bool:
        """Check whether the server's tokenizer is `local`'s (`remote_twin.same_vocabulary`)
        and, if so, take token bytes, end tokens and the fingerprint from `local`, so
        draft token ids go to the server as they are."""
        if not same_vocabulary(lambda text: self.tokenize_raw(text, add_special=False), local):
            return False
        self._vocab_source = local
        self.n_vocab = local.n_vocab
        self.identity.n_vocab = local.n_vocab
        return True

    @property
    def shares_vocabulary(self) -> bool:
        return self._vocab_source is not None

    @property
    def chat_template(self) -> str | None:
        return None  # a base model is prompted in plain text; vLLM does not publish it

    def special_token_text(self, which: str) -> str:
        if self._vocab_source is not None:
            return self._vocab_source.special_token_text(which)
        return ""

    def tokenize(self, text: str, add_bos: bool, special: bool = False) -> list[int]:
        """The server's tokenization. (Its tokenizer always reads special-token text
        such as `<|eot_id|>` as the special token; `special` cannot turn that off.)"""
        del special
        self._context_bytes.clear()
        ids, raws = self.tokenize_raw(text, add_special=add_bos)
        if self._vocab_source is None:
            for token, raw in zip(ids, raws):
                if token not in self._bytes:
                    piece = raw_token_bytes(raw, self.style)
                    if piece is not None:
                        self._bytes[token] = piece
        return ids

    def tokenize_raw(self, text: str, add_special: bool) -> tuple[list[int], list[str]]:
        """The server's tokenization: ids and each id's raw vocabulary string (`Ġthe`)."""
        data = self.client.post_json("/tokenize", {
            "model": self.model.name, "prompt": text, "add_special_tokens": add_special,
            "return_token_strs": True}, retry=True)
        try:
            ids = [int(t) for t in data["tokens"]]
            raws = [str(s) for s in (data.get("token_strs") or [""] * len(ids))]
        except (KeyError, TypeError, ValueError, AttributeError):
            raise RemoteError(f"{self.client.where} answered /tokenize without token ids",
                              "WSD's base model needs a vLLM server (vllm serve MODEL)") from None
        bad = self._outside_vocabulary(ids)
        if bad is not None:
            raise RemoteError(f"{self.client.where} answered /tokenize with {self._describe_outside(bad)}",
                              "the server must serve the model whose tokenizer it was checked against")
        return ids, raws

    def _outside_vocabulary(self, ids: Sequence[int]) -> int | None:
        """The first id no token can have: negative, or (once a local twin's vocabulary
        is adopted) past its end. llama.cpp aborts the whole process on such an id, so
        every id from the server is checked before a local tokenizer sees it."""
        limit = getattr(self, "n_vocab", 0)
        return next((t for t in ids if t < 0 or (limit and t >= limit)), None)

    def _describe_outside(self, token: int) -> str:
        size = f"{self.n_vocab} tokens" if getattr(self, "n_vocab", 0) else "ids start at 0"
        return f"token id {token}, outside the vocabulary ({size})"

    def detokenize(self, tokens: Sequence[int]) -> bytes:
        return b"".join(self.token_bytes(t) for t in tokens)

    def token_bytes(self, token: int) -> bytes:
        """Exact bytes of one token (tokens the tokenizer adds, like BOS: nothing)."""
        if self._vocab_source is not None:
            return self._vocab_source.token_bytes(token)
        piece = self._context_bytes.get(token)
        if piece is None:
            piece = self._bytes.get(token)
        if piece is None:
            piece = self._decode_one(token)
        return piece

    def decode_text(self, tokens: Sequence[int]) -> bytes:
        """The local twin's decoding; else the tokens' bytes (a server model is never
        the drafter, whose text is the one decoded for the hand-over)."""
        if self._vocab_source is not None:
            return self._vocab_source.decode_text(tokens)
        return self.detokenize(tokens)

    def vocabulary(self) -> Sequence[bytes] | None:
        """Known only through a local twin: the server does not list its tokens."""
        return self._vocab_source.vocabulary() if self._vocab_source is not None else None

    def _known_bytes(self, token: int) -> bytes | None:
        if self._vocab_source is not None:
            return self._vocab_source.token_bytes(token)
        return self._bytes.get(token)

    def _decode_one(self, token: int) -> bytes:
        """Last resort for an id never seen in a tokenized text: the server's decoding
        of it alone (exact unless it is part of a character; then not cached)."""
        data = self.client.post_json("/detokenize", {"model": self.model.name, "tokens": [token]}, retry=True)
        text = str(data.get("prompt", "")) if isinstance(data, dict) else ""
        piece = text.encode("utf-8")
        if "\ufffd" not in text:
            self._bytes[token] = piece
        return piece

    def _split_by_tokenizing(self, text: str, group: list[int]) -> list[bytes] | None:
        """Bytes of `group`'s tokens when the server tokenizes `text` into exactly them."""
        if self.style not in ("byte-level", "sentencepiece"):
            return None
        ids, raws = self.tokenize_raw(text, add_special=False)
        if ids != group:
            return None
        pieces = [raw_token_bytes(r, self.style) for r in raws]
        if any(p is None for p in pieces):
            return None
        for token, piece in zip(ids, pieces):
            self._bytes[token] = piece  # type: ignore[assignment]
        return pieces  # type: ignore[return-value]

    def is_end_of_generation(self, token: int) -> bool:
        """The server stops at its end tokens itself and never sends them; with a local
        twin its end tokens are known."""
        if self._vocab_source is not None:
            return self._vocab_source.is_end_of_generation(token)
        return False

    def check_fits(self, n_tokens: int) -> None:
        if n_tokens > self.n_ctx:
            raise PromptError(
                f"the prompt is {n_tokens} tokens, longer than the context of {self.model.name} "
                f"on {self.spec.host} ({self.n_ctx} tokens)",
                "shorten the conversation, or serve the model with a larger --max-model-len")

    # -- answers: faults stop the answer like Esc ----------------------------------------
    def begin_answer(self, cancel: threading.Event) -> None:
        """A lost server during this answer stops it through `cancel` (Esc's path)."""
        self._answer_cancel, self.lost = cancel, None

    def end_answer(self) -> tuple[str, str] | None:
        """Forget the answer's cancel event; return (stop reason, why) if the server
        was lost during it."""
        lost, self._answer_cancel, self.lost = self.lost, None, None
        return lost

    def _lose(self, reason: str, note: str) -> bool:
        """Record a lost server; True when an answer is running to stop through it."""
        self.lost = self.lost or (reason, note)
        if self._answer_cancel is None:
            return False
        self._answer_cancel.set()
        return True

    # -- the two operations the decoder needs ----------------------------------------
    def score(self, tokens: Sequence[int], start: int) -> list[float]:
        """log P(tokens[j] | tokens[:j]) for j >= start, from one request (retried when it
        fails in transit: scoring twice computes the same numbers). During an answer, Esc
        closes the request at once; the answer then stops with what it has, as always."""
        if start < 1:
            raise ValueError("scoring needs at least one token of context")
        # The server generates at least one token after the prompt: keep room for it.
        self.check_fits(len(tokens) + 1)
        try:
            data = self.client.post_json("/v1/completions", scoring_request(self.model.name, tokens),
                                         retry=True, cancel=self._answer_cancel)
            return prompt_logprobs(data, tokens, start)
        except RequestCancelled:
            return []  # Esc while the server was scoring: the answer stops at its next step
        except RemoteError as exc:
            reason = "connection_lost" if isinstance(exc, TransportFailure) else "server_error"
            if self._lose(reason, f"scoring the draft failed: {exc.one_line()}"):
                return []  # the answer stops at its next step, keeping the draft so far
            raise

    def generate(self, context: Sequence[int], max_new_tokens: int, *, temperature: float = 0.0,
                 top_p: float = 1.0, seed: int = 0, cancel: threading.Event | None = None,
                 generated: int = 0) -> Generator[GeneratedToken, None, None]:
        """Stream a continuation of `context` (never retried: a repeat would be another
        continuation). A dropped connection ends it with stop_reason connection_lost.
        `generated` is not used: the server decides how it evaluates a prompt."""
        if not context:
            raise ValueError("generation needs at least one token of context")
        self.check_fits(len(context) + 1)
        self._context_bytes.clear()
        room = self.n_ctx - len(context)
        count = min(max_new_tokens, room)
        self.stop_reason = "max_tokens"
        if count <= 0:
            self.stop_reason = "context_full" if room < max_new_tokens else "max_tokens"
            return
        payload: dict[str, Any] = {
            "model": self.model.name, "prompt": list(context), "max_tokens": count,
            "temperature": temperature, "top_p": top_p, "logprobs": 2, "stream": True,
            "return_tokens_as_token_ids": True,
            # A last event with usage (and, where enabled, the server's timings).
            "stream_options": {"include_usage": True}}
        if temperature > 0:
            payload["seed"] = seed
        tail = self.detokenize(context[-4:])
        carry = tail[len(tail) - incomplete_tail(tail):] if incomplete_tail(tail) else b""
        splitter = StreamBytes(known=self._known_bytes, split_group=self._split_by_tokenizing, carry=carry,
                               whole_token_release=self.model.engine == VLLM)
        waiting: collections.deque[GeneratedToken] = collections.deque()  # tokens waiting for their text
        finish: str | None = None
        try:
            for event in self.client.stream_events("/v1/completions", payload, cancel):
                streamed, finish_now = _stream_tokens(event)
                bad = self._outside_vocabulary([token.id for token, _ in streamed])
                if bad is not None:  # stop here, keeping what was written (as for a lost stream)
                    self.stop_reason = "server_error"
                    self.lost = self.lost or (self.stop_reason,
                                              f"the continuation stopped: the server sent {self._describe_outside(bad)}")
                    break
                for token, delta in streamed:
                    waiting.append(token)
                    for token_id, piece, exact in splitter.push(token.id, delta):
                        yield self._release(waiting, token_id, piece, exact)
                finish = finish_now or finish
        except StreamLost as exc:
            self.stop_reason = "connection_lost"
            self.lost = self.lost or (self.stop_reason, f"the continuation stopped: {exc}")
        except RemoteError as exc:  # an error status before the first token
            if self._answer_cancel is None:
                raise
            self.stop_reason = "server_error"
            self.lost = self.lost or (self.stop_reason, f"the continuation could not start: {exc.one_line()}")
        for token_id, piece, exact in splitter.finish():
            yield self._release(waiting, token_id, piece, exact)
        if cancel is not None and cancel.is_set():
            self.stop_reason = "cancelled"
        elif self.stop_reason not in SERVER_STOPS:
            if finish == "stop":
                self.stop_reason = "eos"
            elif finish == "length" and count < max_new_tokens:
                self.stop_reason = "context_full"

    def _release(self, waiting: "collections.deque[GeneratedToken]", token_id: int,
                 piece: bytes, exact: bool) -> GeneratedToken:
        """The oldest waiting token, with its bytes recorded for `token_bytes`."""
        token = waiting.popleft()
        assert token.id == token_id
        if self._vocab_source is None:
            if exact:
                self._bytes.setdefault(token_id, piece)
            else:
                self._context_bytes[token_id] = piece
        return token

    def close(self) -> None:
        self.client.close()


def _stream_tokens(event: dict[str, Any]) -> tuple[list[tuple[GeneratedToken, str]], str | None]:
    """The tokens of one streamed event, each with the text released with it, and the
    finish reason if the event carries one. Several tokens in one event share its
    text: it belongs to the last one."""
    try:
        choice = event["choices"][0]
    except (KeyError, IndexError, TypeError):
        return [], None
    logprobs = choice.get("logprobs") or {}
    names = logprobs.get("tokens") or []
    values = logprobs.get("token_logprobs") or []
    tops = logprobs.get("top_logprobs") or []
    text = choice.get("text") or ""
    out: list[tuple[GeneratedToken, str]] = []
    for i, name in enumerate(names):
        logprob = float(values[i]) if i < len(values) and values[i] is not None else 0.0
        top = sorted((float(v) for v in (tops[i] or {}).values()), reverse=True) if i < len(tops) else []
        margin = top[0] - top[1] if len(top) >= 2 else float("inf")
        best = top[0] if top else None
        out.append((GeneratedToken(_token_id(name), logprob, margin, top_logprob=best),
                    text if i == len(names) - 1 else ""))
    return out, choice.get("finish_reason")


def _token_id(name: Any) -> int:
    """`token_id:123` (return_tokens_as_token_ids) -> 123."""
    text = str(name)
    if text.startswith("token_id:"):
        try:
            return int(text[len("token_id:"):])
        except ValueError:
            pass
    raise RemoteError(f"the model server sent a token as text ({text!r}), not as an id",
                      "WSD's base model needs a vLLM server (vllm serve MODEL)")
