"""The llama.cpp backend (llama-cpp-python's low-level API).

`Llama` loads the model, tokenizes and holds the context; every evaluation goes
through our own `llama_batch`, so that logits are computed only at the positions we
need (never `logits_all`), and the KV cache is reused across calls: the backend
remembers which tokens the cache holds and only evaluates what differs.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import hashlib
import io
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Generator, Sequence

import llama_cpp
import numpy as np

from ..settings import RuntimeSettings
from ..errors import ModelLoadError, PromptError, WsdError
from ..gguf_format.filetypes import file_type_name
from ..gguf_format.context import ContextNeeds
from ..paths import log_path
from ..trace import ModelIdentity
from .logs import route_llama_logs
from .protocol import GeneratedToken
from .sampling import choose, log_softmax_at

#: Batches of known tokens are padded to a multiple of this (see "the KV cache" below).
MIN_BATCH = 16
#: Rows of logits per decode call: a row is n_vocab floats (1 MiB for Gemma's 262k
#: words) and llama.cpp keeps its output buffer at the largest size ever asked for.
MAX_OUTPUT_ROWS = 32

def active_backend_name() -> str:
    """Which compute backend this llama.cpp build uses: CUDA, Metal, Vulkan, ... or CPU."""
    info = llama_cpp.llama_print_system_info().decode("utf-8", errors="replace")
    if llama_cpp.llama_supports_gpu_offload():
        for name in ("CUDA", "Metal", "Vulkan", "SYCL", "HIP", "OpenCL"):
            if name.upper() in info.upper():
                return name
        return "GPU"
    return "CPU"


def default_threads() -> int:
    """llama-cpp-python defaults to half the CPUs (assuming hyper-threads): on a small
    machine that leaves a core idle, so use them all up to four."""
    count = os.cpu_count() or 1
    return count if count <= 4 else count // 2


class LlamaBackend:
    """One GGUF model in one llama.cpp context (not thread-safe: one worker per model)."""

    def __init__(self, path: Path | str, role: str, runtime: RuntimeSettings,
                 name: str | None = None) -> None:
        path = Path(path)
        # Files come checked by models.resolve (read_gguf); anything llama.cpp still
        # rejects becomes the one-line ModelLoadError below.
        route_llama_logs(Path(runtime.log_path) if runtime.log_path else log_path())
        kwargs: dict[str, Any] = dict(
            model_path=str(path), n_ctx=runtime.n_ctx, n_gpu_layers=runtime.n_gpu_layers,
            logits_all=False, embedding=False, swa_full=True,
            # verbose=True keeps llama-cpp-python from redirecting the process's stdout
            # and stderr file descriptors while loading (that would blank the TUI); the
            # C log goes to our file anyway and Python prints are captured below.
            verbose=True,
        )
        threads = runtime.threads or default_threads()
        kwargs.update(n_threads=threads, n_threads_batch=threads)
        context = ContextNeeds.of(path, runtime.n_ctx)
        context.check_fits_memory(name or path.stem)
        captured = io.StringIO()
        try:
            with contextlib.redirect_stdout(captured), contextlib.redirect_stderr(captured):
                self.llm = llama_cpp.Llama(**kwargs)
        except (ValueError, RuntimeError, OSError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            if "context" in reason.lower():  # the model loaded; its context did not
                raise ModelLoadError(f"llama.cpp could not create a {runtime.n_ctx}-token context for "
                                     f"{name or path.stem} ({context.describe()})",
                                     "use a smaller --ctx") from None
            raise ModelLoadError(f"llama.cpp could not load {path.name}: {reason}",
                             f"the file may be truncated or of an unsupported architecture; see {log_path()}") from None
        self.path = path
        self.role = role
        self.n_ctx = int(self.llm.n_ctx())
        self.n_vocab = int(self.llm.n_vocab())
        self._ctx = self.llm._ctx.ctx
        self._vocab = self.llm._model.vocab
        self._memory = llama_cpp.llama_get_memory(self._ctx)
        self._n_batch = int(self.llm.n_batch)
        self._batch = llama_cpp.llama_batch_init(self._n_batch, 0, 1)
        self._pieces: dict[int, bytes] = {}
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="wsd-softmax")
        self._canonical = 0  # leading cached tokens computed as full grid blocks
        self._cached: list[int] = []  # tokens whose K/V sit in the cache, positions 0..n-1
        # Positions of known tokens evaluated so far (prompt and context, padding
        # included; not the one-token generation steps): what cache reuse saves shows
        # here (the tests and benchmark of nudging's many turns read it).
        self.prefilled_tokens = 0
        self.stop_reason = ""  # why the last generate() ended: eos | max_tokens | context_full | cancelled
        self.metadata: dict[str, str] = dict(self.llm.metadata)
        self.identity = ModelIdentity(
            role=role, name=name or path.stem, path=str(path),
            architecture=self.metadata.get("general.architecture", "unknown"),
            quantization=self._quantization(), size_bytes=path.stat().st_size,
            n_vocab=self.n_vocab,
        )

    # -- metadata ------------------------------------------------------------------
    def _quantization(self) -> str:
        raw = self.metadata.get("general.file_type")
        name = file_type_name(int(raw)) if raw is not None and raw.isdigit() else None
        return name or "unknown"

    @property
    def chat_template(self) -> str | None:
        return self.metadata.get("tokenizer.chat_template") or None

    def special_token_text(self, which: str) -> str:
        token = {"bos": llama_cpp.llama_vocab_bos, "eos": llama_cpp.llama_vocab_eos}[which](self._vocab)
        if token < 0:
            return ""
        return llama_cpp.llama_vocab_get_text(self._vocab, token).decode("utf-8", errors="replace")

    @functools.cached_property
    def vocab_fingerprint(self) -> str:
        """A digest of every token's text and type: equal digests mean token ids can be
        handed from one model to the other without re-tokenizing."""
        digest = hashlib.sha256(str(self.n_vocab).encode())
        for token in range(self.n_vocab):
            digest.update(llama_cpp.llama_vocab_get_text(self._vocab, token) or b"")
            digest.update(b"\0%d\0" % llama_cpp.llama_vocab_get_attr(self._vocab, token))
        return digest.hexdigest()

    def _check_token(self, token: int) -> None:
        """llama.cpp aborts the process on an id outside its vocabulary: refuse it here
        (ids from a server are checked where they arrive; this is the last guard)."""
        if not 0 <= token < self.n_vocab:
            raise WsdError(f"token id {token} is outside the vocabulary of {self.identity.name} "
                           f"({self.n_vocab} tokens)")

    def token_text(self, token: int) -> str:
        """The vocabulary entry of a token as stored (e.g. `Ġthe`, `▁the`, `<|eot_id|>`)."""
        self._check_token(token)
        return (llama_cpp.llama_vocab_get_text(self._vocab, token) or b"").decode("utf-8", errors="replace")

    # -- text ----------------------------------------------------------------------
    def tokenize(self, text: str, add_bos: bool, special: bool = False) -> list[int]:
        return list(self.llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=special))

    def detokenize(self, tokens: Sequence[int]) -> bytes:
        return b"".join(self.token_bytes(t) for t in tokens)

    def token_bytes(self, token: int) -> bytes:
        """The exact bytes of one token (special tokens render as nothing)."""
        piece = self._pieces.get(token)
        if piece is None:
            self._check_token(token)
            size = 64
            while True:
                buf = ctypes.create_string_buffer(size)
                n = llama_cpp.llama_token_to_piece(self._vocab, token, buf, size, 0, False)
                if n >= 0:
                    piece = buf.raw[:n]
                    break
                size = -n  # the buffer was too small: llama.cpp says how much it needs
            self._pieces[token] = piece
        return piece

    def decode_text(self, tokens: Sequence[int]) -> bytes:
        """llama.cpp's detokenizer with special tokens removed: it spells special tokens
        as nothing and cleans up spaces as the model's tokenizer does."""
        if not tokens:
            return b""
        array = (llama_cpp.llama_token * len(tokens))(*tokens)
        size = max(64, 8 * len(tokens))
        while True:
            buf = ctypes.create_string_buffer(size)
            n = llama_cpp.llama_detokenize(self._vocab, array, len(tokens), buf, size, True, False)
            if n >= 0:
                return buf.raw[:n]
            size = -n  # llama.cpp says how much room it needs

    def vocabulary(self) -> list[bytes]:
        return self._vocabulary

    @functools.cached_property
    def _vocabulary(self) -> list[bytes]:
        return [self.token_bytes(t) for t in range(self.n_vocab)]

    def is_end_of_generation(self, token: int) -> bool:
        self._check_token(token)
        return bool(llama_cpp.llama_vocab_is_eog(self._vocab, token))

    # -- the KV cache ----------------------------------------------------------------
    # llama.cpp's CPU matrix kernels take another path for small batches and for the
    # rows left over from their tiles, and on the demo Gemma model the paths disagree by
    # up to 0.4 in log-probability (one generated token at a time vs a batch, or the same
    # tokens split 54 + 32 vs evaluated at once). So every evaluation of known tokens is
    # padded to a multiple of MIN_BATCH tokens (the padding leaves the cache at once):
    # then a position's K/V and logits depend only on the tokens before it, the same in
    # one pass or in online chunks. Such positions are "canonical" and may be
    # reused by any later call; generated tokens (one-token batches) are not, and are
    # re-evaluated when a later call needs them as context.
    def _reuse_prefix(self, tokens: Sequence[int], limit: int) -> int:
        """Keep the canonical cached prefix shared with `tokens` (at most `limit`
        tokens), drop the rest of the cache, and return its length."""
        keep = 0
        bound = min(self._canonical, len(tokens), limit)
        cached = self._cached
        while keep < bound and cached[keep] == tokens[keep]:
            keep += 1
        if keep < len(cached):
            self._forget_from(keep)
        return keep

    def _forget_from(self, position: int) -> None:
        if not llama_cpp.llama_memory_seq_rm(self._memory, 0, position, -1):
            llama_cpp.llama_memory_clear(self._memory, True)
            position = 0
        del self._cached[position:]
        self._canonical = min(self._canonical, position)

    def reset(self) -> None:
        llama_cpp.llama_memory_clear(self._memory, True)
        self._cached.clear()
        self._canonical = 0

    def _decode(self, tokens: Sequence[int], start_pos: int, output_rows: Sequence[int],
                pad: bool = True) -> None:
        """Evaluate `tokens` at positions start_pos.. with logits at the given offsets;
        padded to MIN_BATCH tokens unless `pad` is False (generation steps)."""
        n_real = len(tokens)
        extra = (-n_real) % MIN_BATCH if pad else 0
        extra = min(extra, self.n_ctx - start_pos - n_real)  # no room past the context end
        batch = self._batch
        flags = set(output_rows)
        for i in range(n_real + extra):
            batch.token[i] = tokens[i] if i < n_real else tokens[-1]
            batch.pos[i] = start_pos + i
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = 0
            batch.logits[i] = 1 if i in flags else 0
        batch.n_tokens = n_real + extra
        if pad:
            self.prefilled_tokens += n_real + extra
        status = llama_cpp.llama_decode(self._ctx, batch)
        if status != 0:
            raise RuntimeError(f"llama_decode failed with status {status}")
        if extra:
            llama_cpp.llama_memory_seq_rm(self._memory, 0, start_pos + n_real, -1)
        canonical = start_pos == self._canonical == len(self._cached) and (n_real + extra) % MIN_BATCH == 0
        self._cached.extend(tokens)
        if canonical:
            self._canonical = len(self._cached)

    def _evaluate(self, tokens: Sequence[int], start: int, rows_from: int,
                  on_rows: Callable[[int, list[int]], None] | None = None) -> None:
        """Evaluate tokens[start:] with logits at every position >= rows_from, in calls of
        at most MAX_OUTPUT_ROWS rows and n_batch tokens."""
        pos = start
        while pos < len(tokens):
            end = min(len(tokens), pos + self._n_batch - MIN_BATCH)
            first_row = max(pos, rows_from)
            if end - first_row > MAX_OUTPUT_ROWS:
                end = max(first_row + MAX_OUTPUT_ROWS, pos + 1)
            rows = [i - pos for i in range(first_row, end)]
            self._decode(tokens[pos:end], pos, rows)
            if on_rows is not None and rows:
                on_rows(pos, rows)
            pos = end

    def _row(self, index: int) -> np.ndarray:
        ptr = llama_cpp.llama_get_logits_ith(self._ctx, index)
        return np.ctypeslib.as_array(ptr, shape=(self.n_vocab,))

    def check_fits(self, n_tokens: int) -> None:
        if n_tokens > self.n_ctx:
            raise PromptError(
                f"the prompt is {n_tokens} tokens, longer than the {self.role}'s context of {self.n_ctx}",
                "shorten the conversation or raise --ctx")

    # -- the two operations the decoder needs ----------------------------------------
    def score(self, tokens: Sequence[int], start: int) -> list[float]:
        """log P(tokens[j] | tokens[:j]) for j >= start (start >= 1)."""
        if start < 1:
            raise ValueError("scoring needs at least one token of context")
        self.check_fits(len(tokens))
        # Position j-1 predicts token j: rows from start-1 on must be (re)computed.
        kept = self._reuse_prefix(tokens, limit=start - 1)
        logprobs: list[float] = []

        def collect(pos: int, rows: list[int]) -> None:
            wanted = [r for r in rows if pos + r + 1 < len(tokens)]
            # numpy releases the GIL in exp/sum: normalise the rows on all threads
            # while llama.cpp, which would use them, is idle.
            logprobs.extend(self._pool.map(
                lambda r: log_softmax_at(self._row(r), tokens[pos + r + 1]), wanted))

        self._evaluate(tokens[: len(tokens) - 1] if len(tokens) > start else tokens, kept,
                       start - 1, collect)
        return logprobs

    def generate(self, context: Sequence[int], max_new_tokens: int, *, temperature: float = 0.0,
                 top_p: float = 1.0, seed: int = 0, cancel: threading.Event | None = None,
                 generated: int = 0) -> Generator[GeneratedToken, None, None]:
        """Greedy or sampled continuation of `context`, reusing the cached prefix; its
        last `generated` tokens are re-read one per decode, as they were written."""
        if not context:
            raise ValueError("generation needs at least one token of context")
        self.check_fits(len(context))
        rng = np.random.default_rng(seed)
        # The known part (padded batches, canonical) ends at `head`. Without tokens of
        # the model's own after it, its last token is evaluated again for the logits
        # that predict the next one; with them, the last one-token step gives those.
        head = len(context) - max(0, min(generated, len(context) - 1))
        kept = self._reuse_prefix(context, limit=head if head < len(context) else head - 1)
        self._evaluate(context[:head], kept, head - 1)
        # The model's own tokens, one-token batches as in the loop below: their K/V and
        # the last row of logits are then bit for bit those of the original writing.
        for token in context[head:]:
            self._decode([token], len(self._cached), [0], pad=False)
        self.stop_reason = "max_tokens"
        for _ in range(max_new_tokens):
            if cancel is not None and cancel.is_set():
                self.stop_reason = "cancelled"
                return
            # -1: the last row of logits the previous decode produced.
            token, logprob, margin, best = choose(self._row(-1), temperature, top_p, rng)
            if self.is_end_of_generation(token):
                self.stop_reason = "eos"
                return
            yield GeneratedToken(token, logprob, margin, top_logprob=best)
            if len(self._cached) >= self.n_ctx:
                self.stop_reason = "context_full"
                return
            self._decode([token], len(self._cached), [0], pad=False)

    def close(self) -> None:
        self._pool.shutdown(wait=False)
        if getattr(self, "_batch", None) is not None:
            llama_cpp.llama_batch_free(self._batch)
            self._batch = None
        self.llm.close()
