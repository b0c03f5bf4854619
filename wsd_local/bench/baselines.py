"""Baselines the benchmark measures the engine against. Never used by the engine.

- `time_eval_logits_all`: the naive scoring path, `Llama.eval` with `logits_all=True`
  (an n_ctx x n_vocab float buffer, logits for every position). It runs in a child
  process so that its memory does not count in the engine's peak RSS.
- `bare_greedy_loop`: a minimal llama-cpp-python decode loop (argmax only), to measure
  the controller's own overhead.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Sequence

_CHILD = r"""
import contextlib, io, json, sys, time
import llama_cpp
args = json.loads(sys.argv[1])
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    quiet = llama_cpp.llama_log_callback(lambda *a: None)  # kept referenced: llama.cpp calls it later
    llama_cpp.llama_log_set(quiet, None)
    llm = llama_cpp.Llama(model_path=args["model"], n_ctx=args["n_ctx"], n_gpu_layers=args["ngl"],
                          logits_all=True, verbose=False)
best = float("inf")
for _ in range(args["repeats"]):
    llm.reset()
    start = time.perf_counter()
    llm.eval(args["tokens"])
    best = min(best, time.perf_counter() - start)
print(json.dumps({"seconds": best}))
"""


def time_eval_logits_all(model_path: str, tokens: Sequence[int], n_ctx: int, n_gpu_layers: int,
                         repeats: int = 3) -> float:
    """Best-of-N seconds for `Llama.eval(tokens)` with logits for every position."""
    payload = json.dumps({"model": model_path, "tokens": list(tokens), "n_ctx": n_ctx,
                          "ngl": n_gpu_layers, "repeats": repeats})
    result = subprocess.run([sys.executable, "-c", _CHILD, payload], capture_output=True,
                            text=True, check=True)
    return float(json.loads(result.stdout.strip().splitlines()[-1])["seconds"])


def bare_greedy_loop(backend, context: Sequence[int], n_tokens: int) -> tuple[list[int], float]:
    """Greedy decoding with nothing but llama_decode + argmax over the logits row:
    (tokens, seconds). Uses the backend's context, after clearing its cache."""
    import llama_cpp
    import numpy as np

    backend.reset()
    ctx = backend._ctx
    batch = llama_cpp.llama_batch_get_one
    start = time.perf_counter()
    arr = (llama_cpp.llama_token * len(context))(*context)
    llama_cpp.llama_decode(ctx, batch(arr, len(context)))
    out: list[int] = []
    for _ in range(n_tokens):
        logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(ctx, -1), shape=(backend.n_vocab,))
        token = int(np.argmax(logits))
        if backend.is_end_of_generation(token):
            break
        out.append(token)
        one = (llama_cpp.llama_token * 1)(token)
        llama_cpp.llama_decode(ctx, batch(one, 1))
    seconds = time.perf_counter() - start
    backend.reset()
    return out, seconds
