"""A model on a server, drafter or base: the `Backend` protocol over vLLM's
OpenAI-compatible API.

| Backend             | request                                                          |
| ------------------- | ---------------------------------------------------------------- |
| score               | POST /v1/completions, prompt = token ids, prompt_logprobs = 0     |
| generate            | the same, stream = true, logprobs = 2, return_tokens_as_token_ids |
| tokenize            | POST /tokenize (+ raw token strings for exact bytes)             |
| chat_prompt         | POST /tokenize with messages + add_generation_prompt (drafter)   |
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
cancel event, the same path as Esc. A drafter's stream that fails stops the answer
the same way: the draft so far is the answer. Outside an answer (`begin_answer` not
called) such failures raise `RemoteError`.

The drafter's chat template is applied by its server (`chat_prompt`); the load checks
that the server has one and that its continuations carry log-probabilities as token
ids. The server stops at the model's end-of-turn ids by itself and streams that last
token with `finish_reason: stop`: it is dropped there, as llama.cpp never yields it,
and remembered for `is_end_of_generation`.
"""

from __future__ import annotations

import collections
import hashlib
import threading
from typing import Any, Generator, Sequence

from ..errors import PromptError, RemoteError, RemoteRefusal
from ..messages import Message
from ..trace import SERVER_STOPS, ModelIdentity
from .http import RequestCancelled, RequestRejected, ServerClient, StreamLost, TransportFailure
from .protocol import Backend, GeneratedToken
from .remote_spec import RemoteOptions, RemoteSpec
from .remote_twin import same_server_vocabulary, same_vocabulary
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
#: The conversation the load puts in a drafter server's chat template.
_CHAT_PROBE = ({"role": "user", "content": "Hi"},)


def needs_vllm(role: str) -> str:
    """The hint for a server that lacks what WSD needs of a model in `role`."""
    return f"WSD's {'drafter' if role == 'drafter' else 'base model'} needs a vLLM server (vllm serve MODEL)"


class _NoLogprobs(Exception):
    """A streamed continuation came without token ids and log-probabilities."""


class _AnswerState(threading.local):
    """What belongs to the answer a thread is running (see `RemoteBackend`)."""

    def __init__(self) -> None:
        self.stop_reason = ""
        self.lost: tuple[str, str] | None = None
        self.cancel: threading.Event | None = None
        self.context_bytes: dict[int, bytes] = {}


class RemoteBackend:
    """A model served by vLLM (or a server with the same API). One per server model.

    Several answers may use one RemoteBackend at once, one thread each: what belongs to
    an answer (`stop_reason`, `lost`, the cancel event `begin_answer` takes, the bytes of
    the running continuation's split characters) is kept per thread, and so are the
    HTTP connections (http.py). What is shared only grows and holds for every answer:
    the exact bytes of token ids, the end-of-turn ids seen, the request counts."""

    @property
    def stop_reason(self) -> str:
        return self._answer.stop_reason

    @stop_reason.setter
    def stop_reason(self, value: str) -> None:
        self._answer.stop_reason = value

    @property
    def lost(self) -> tuple[str, str] | None:
        """(stop reason, why in words) if this thread's answer lost its server."""
        return self._answer.lost

    @lost.setter
    def lost(self, value: tuple[str, str] | None) -> None:
        self._answer.lost = value

    @property
    def _answer_cancel(self) -> threading.Event | None:
        return self._answer.cancel

    @_answer_cancel.setter
    def _answer_cancel(self, value: threading.Event | None) -> None:
        self._answer.cancel = value

    @property
    def _context_bytes(self) -> dict[int, bytes]:
        """The running continuation's inexact splits."""
        return self._answer.context_bytes

    def __init__(self, spec: RemoteSpec, role: str, options: RemoteOptions | None = None) -> None:
        self._answer = _AnswerState()
        self.spec = spec
        self.role = role
        self.needs = needs_vllm(role)
        self.client = ServerClient(spec, options or RemoteOptions(),
                                   label="drafter's model server" if role == "drafter" else "model server",
                                   needs=self.needs)
        self._end_ids: set[int] = set()  # end-of-turn ids the server stopped at
        self._bytes: dict[int, bytes] = {}
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
            else:
                self._check_drafter()
        except BaseException:
            self.client.close()
            raise
        self.n_ctx = self.model.max_model_len or 2048
        self._bytes.update({i: b"" for i in self._added})
        self._vocab_source: Backend | None = None  # a local model with the same vocabulary
        self._server_twin: RemoteBackend | None = None  # a model on a server with the same tokenizer
        self._probe_ids = tuple(ids)
        self.n_vocab = 0  # not published by the server; known once a local twin is found
        self.identity = ModelIdentity(
            role=role, name=self.model.name, path=spec.api_url, architecture="remote",
            quantization="unknown", size_bytes=0, n_vocab=0, engine=self.model.engine)

    # -- vocabulary ----------------------------------------------------------------
    @property
    def vocab_fingerprint(self) -> str:
        """The local twin's fingerprint once `adopt_vocabulary` checked the server's
        tokenizer against it, or the other server model's once `share_vocabulary_with`
        did; otherwise a digest of this server model (URL, name and its tokenization of
        a probe), which never equals a local model's: two models on one server model
        have one tokenizer."""
        if self._vocab_source is not None:
            return self._vocab_source.vocab_fingerprint
        if self._server_twin is not None:
            return self._server_twin.vocab_fingerprint
        digest = hashlib.sha256(f"remote\0{self.spec.root}\0{self.model.name}\0{self.style}\0".encode())
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

    def share_vocabulary_with(self, other: "RemoteBackend") -> bool:
        """Both models on servers: the same server model, or two whose tokenizers agree
        on a probe (`remote_twin.same_server_vocabulary`), hand draft ids over as they
        are. Then the two share what they learnt of each token's bytes."""
        if other._vocab_source is not None or self._vocab_source is not None:
            return False
        same_model = self.spec.root == other.spec.root and self.model.name == other.model.name
        if not same_model and not same_server_vocabulary(self._tokenize_and_decode, other._tokenize_and_decode):
            return False
        self._server_twin = other
        other._bytes.update(self._bytes)
        self._bytes = other._bytes  # exact bytes of one tokenizer's ids: one cache
        return True

    def _tokenize_and_decode(self, text: str | None, ids: Sequence[int] | None) -> tuple[list[int], list[str]] | str:
        """For the probe: the server's tokenization of `text`, or its decoding of `ids`."""
        if text is not None:
            return self.tokenize_raw(text, add_special=False)
        data = self.client.post_json("/detokenize", {"model": self.model.name, "tokens": list(ids or [])},
                                     retry=True)
        return str(data.get("prompt", "")) if isinstance(data, dict) else ""

    @property
    def shares_vocabulary(self) -> bool:
        return self._vocab_source is not None or self._server_twin is not None

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
        self._learn_bytes(ids, raws)
        return ids

    def _learn_bytes(self, ids: Sequence[int], raws: Sequence[str]) -> None:
        if self._vocab_source is None:
            for token, raw in zip(ids, raws):
                if token not in self._bytes:
                    piece = raw_token_bytes(raw, self.style)
                    if piece is not None:
                        self._bytes[token] = piece

    def tokenize_raw(self, text: str, add_special: bool) -> tuple[list[int], list[str]]:
        """The server's tokenization: ids and each id's raw vocabulary string (`Ġthe`)."""
        data = self.client.post_json("/tokenize", {
            "model": self.model.name, "prompt": text, "add_special_tokens": add_special,
            "return_token_strs": True}, retry=True)
        return self._tokens_of(data)

    def chat_prompt(self, messages: Sequence[Message]) -> list[int]:
        """The drafter's prompt: the conversation in the model's chat template, applied
        by the server, ready for the assistant's turn."""
        self._context_bytes.clear()
        ids, raws = self._chat_tokens([m.to_dict() for m in messages], probe=False)
        self._learn_bytes(ids, raws)
        return ids

    def _chat_tokens(self, messages: Sequence[dict], probe: bool) -> tuple[list[int], list[str]]:
        try:
            data = self.client.post_json("/tokenize", {
                "model": self.model.name, "messages": list(messages), "add_generation_prompt": True,
                "add_special_tokens": False, "return_token_strs": True}, retry=True)
        except RequestRejected as exc:
            if probe:
                raise RemoteRefusal(
                    f"{self.client.where} cannot apply a chat template to a conversation ({exc.said})",
                    "the drafter must be a chat model with a chat template: serve an instruction-tuned "
                    "model, or give vllm serve --chat-template FILE") from None
            raise PromptError(f"the drafter's chat template on {self.client.where} rejected the "
                              f"conversation ({exc.said})") from None
        return self._tokens_of(data)

    def _tokens_of(self, data: Any) -> tuple[list[int], list[str]]:
        """Ids and raw strings of a /tokenize answer, each id checked."""
        try:
            ids = [int(t) for t in data["tokens"]]
            raws = [str(s) for s in (data.get("token_strs") or [""] * len(ids))]
        except (KeyError, TypeError, ValueError, AttributeError):
            raise RemoteError(f"{self.client.where} answered /tokenize without token ids", self.needs) from None
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
        """The local twin's decoding; else the tokens' bytes: the server stops before
        its end-of-turn token, so a draft holds no special tokens to skip. (Hugging
        Face's clean-up of spaces before punctuation is not applied: the hand-over reads
        the draft as written, `handoff.cleans_spaces` is then False.)"""
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
        """The server stops at its end tokens itself (they are not yielded); the ones it
        stopped at so far are known, and with a local twin all of its end tokens."""
        if token in self._end_ids:
            return True
        if self._vocab_source is not None:
            return self._vocab_source.is_end_of_generation(token)
        return False

    def _check_drafter(self) -> None:
        """A drafter's server must apply the chat template (/tokenize with messages) and
        stream continuations with log-probabilities of token ids: one tiny request each."""
        prompt, _ = self._chat_tokens(_CHAT_PROBE, probe=True)
        refused = RemoteRefusal(
            f"{self.client.where} does not return log-probabilities of the tokens it writes as token ids",
            "serve the drafter with vLLM (vllm serve MODEL); WSD's trace and online mode need them")
        try:
            data = self.client.post_json("/v1/completions", {
                "model": self.model.name, "prompt": prompt, "max_tokens": 1, "temperature": 0.0,
                "logprobs": 2, "return_tokens_as_token_ids": True}, retry=True)
        except RequestRejected as exc:
            raise RemoteRefusal(f"{refused.message} ({exc.said})", refused.hint) from None
        try:
            names = data["choices"][0]["logprobs"]["tokens"]
            if not names or not all(str(n).startswith("token_id:") for n in names):
                raise TypeError
        except (KeyError, IndexError, TypeError):
            raise refused from None

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
        what = "the draft" if self.role == "drafter" else "the continuation"
        events = self.client.stream_events("/v1/completions", payload, cancel)
        try:
            for event in events:
                streamed, finish_now, end_id = _stream_tokens(event, self.needs)
                if end_id is not None:
                    self._end_ids.add(end_id)
                bad = self._outside_vocabulary([token.id for token, _ in streamed])
                if bad is not None:  # stop here, keeping what was written (as for a lost stream)
                    self._stream_failed("server_error", f"{what} stopped: {self.client.where} sent "
                                                        f"{self._describe_outside(bad)}")
                    break
                for token, delta in streamed:
                    waiting.append(token)
                    for token_id, piece, exact in splitter.push(token.id, delta):
                        yield self._release(waiting, token_id, piece, exact)
                finish = finish_now or finish
        except StreamLost as exc:
            self._stream_failed("connection_lost", f"{what} stopped: {exc}")
        except _NoLogprobs:
            self._stream_failed("server_error", f"{what} stopped: {self.client.where} sent tokens without "
                                                f"log-probabilities ({self.needs})")
        except RemoteError as exc:  # an error status before the first token
            if self._answer_cancel is None:
                raise
            self._stream_failed("server_error", f"{what} could not start: {exc.one_line()}")
        finally:
            events.close()  # closes the HTTP stream now (online mode stops the drafter's early)
        for token_id, piece, exact in splitter.finish():
            yield self._release(waiting, token_id, piece, exact)
        if cancel is not None and cancel.is_set():
            self.stop_reason = "cancelled"
        elif self.stop_reason not in SERVER_STOPS:
            if finish == "stop":
                self.stop_reason = "eos"
            elif finish == "length" and count < max_new_tokens:
                self.stop_reason = "context_full"

    def _stream_failed(self, reason: str, note: str) -> None:
        """A continuation that broke off: it ends with `reason`. A drafter's also stops
        the answer (Esc's path): the draft so far is the answer, marked."""
        self.stop_reason = reason
        if self.role == "drafter":
            self._lose(reason, note)
        else:
            self.lost = self.lost or (reason, note)

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


def _stream_tokens(event: dict[str, Any], needs: str) -> tuple[list[tuple[GeneratedToken, str]], str | None,
                                                               int | None]:
    """The tokens of one streamed event, each with the text released with it, the
    finish reason if the event carries one, and the end-of-turn id the server stopped at
    (`finish_reason: stop` without a stop string: the event's last token, not returned).
    Several tokens in one event share its text: it belongs to the last one. Raises
    _NoLogprobs for text without tokens."""
    try:
        choice = event["choices"][0]
    except (KeyError, IndexError, TypeError):
        return [], None, None
    logprobs = choice.get("logprobs") or {}
    names = logprobs.get("tokens") or []
    values = logprobs.get("token_logprobs") or []
    tops = logprobs.get("top_logprobs") or []
    text = choice.get("text") or ""
    finish = choice.get("finish_reason")
    if text and not names:
        raise _NoLogprobs()
    end_id = None
    if finish == "stop" and names and not isinstance(choice.get("stop_reason"), str):
        end_id = _token_id(names[-1], needs)
        names = names[:-1]
    out: list[tuple[GeneratedToken, str]] = []
    for i, name in enumerate(names):
        logprob = float(values[i]) if i < len(values) and values[i] is not None else 0.0
        top = sorted((float(v) for v in (tops[i] or {}).values()), reverse=True) if i < len(tops) else []
        margin = top[0] - top[1] if len(top) >= 2 else float("inf")
        best = top[0] if top else None
        out.append((GeneratedToken(_token_id(name, needs), logprob, margin, top_logprob=best),
                    text if i == len(names) - 1 else ""))
    return out, finish, end_id


def _token_id(name: Any, needs: str) -> int:
    """`token_id:123` (return_tokens_as_token_ids) -> 123."""
    text = str(name)
    if text.startswith("token_id:"):
        try:
            return int(text[len("token_id:"):])
        except ValueError:
            pass
    raise RemoteError(f"the model server sent a token as text ({text!r}), not as an id", needs)
