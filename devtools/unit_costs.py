"""Per-token costs of the three things WSD does, measured through wsd-local's own backend
on any GGUF: decoding (the drafter drafting, the base model continuing), scoring a
draft in one pass (paper mode) and scoring it in online steps of `chunk` tokens.

Meant for models of real shapes with random weights (`python -m devtools.tiny
FOLDER llama-3.2-3b llama-3.1-8b`), where the weights' values do not matter: the token
ids are fixed and decoding runs for a fixed number of tokens, so nothing depends on what
the model would say. With a drafter and a base given, it prints WSD vs base-only per
answer token for a range of drafter shares `f` of the answer:

    WSD / base-only = f * (draft + score) / decode_base + (1 - f)

    python -m devtools.unit_costs MODEL... [--drafter A --base B] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from wsd_local.backend.llama import LlamaBackend, active_backend_name
from wsd_local.settings import RuntimeSettings


@dataclass
class UnitCosts:
    model: str
    size_bytes: int
    backend: str
    decode_ms: float          # per generated token, prompt evaluation excluded
    score_pass_ms: float      # per draft token, the whole draft in one scoring pass
    score_online_ms: float    # per draft token, scored `chunk` new tokens at a time
    prefill_ms: float         # per token, evaluating the frame before generating


def measure(path: Path, runtime: RuntimeSettings, frame: int = 64, draft: int = 256,
            decode_tokens: int = 128, chunk: int = 16, repeats: int = 3) -> UnitCosts:
    backend = LlamaBackend(path, "base", runtime)
    try:
        # Ids from the low end of the vocabulary: real tokens in every test model.
        ids = [(7 * i + 3) % min(256, backend.n_vocab) for i in range(frame + draft)]
        context = ids[:frame]
        decode, score_pass, score_online, prefill = [], [], [], []
        backend.reset()
        list(backend.generate(context, 4))  # warm-up: kernels, graphs, allocations
        for _ in range(repeats):
            backend.reset()
            start = time.perf_counter()
            stream = backend.generate(context, decode_tokens)
            next(stream)
            first = time.perf_counter()
            made = 1 + sum(1 for _ in stream)
            done = time.perf_counter()
            prefill.append((first - start) / frame)
            decode.append((done - first) / max(1, made - 1))

            backend.reset()
            start = time.perf_counter()
            backend.score(ids, frame)
            score_pass.append((time.perf_counter() - start) / draft)

            backend.reset()
            start = time.perf_counter()
            for end in range(frame + chunk, frame + draft + 1, chunk):
                backend.score(ids[:end], end - chunk)
            score_online.append((time.perf_counter() - start) / draft)
        return UnitCosts(model=path.name, size_bytes=path.stat().st_size, backend=active_backend_name(),
                         decode_ms=min(decode) * 1e3, score_pass_ms=min(score_pass) * 1e3,
                         score_online_ms=min(score_online) * 1e3, prefill_ms=min(prefill) * 1e3)
    finally:
        backend.close()


def ratio(drafter: UnitCosts, base: UnitCosts, share: float) -> float:
    """Online WSD / base-only time per answer token when the drafter writes `share` of
    the answer."""
    return share * (drafter.decode_ms + base.score_online_ms) / base.decode_ms + (1 - share)


def report(costs: list[UnitCosts], pairs: list[tuple[UnitCosts, UnitCosts]]) -> str:
    lines = [f"{'model':<32} {'GB':>5} {'backend':>7} {'decode':>7} {'score 1x':>8} "
             f"{'score 16s':>9} {'prefill':>7}   (ms per token)"]
    for c in costs:
        lines.append(f"{c.model:<32} {c.size_bytes / 1e9:>5.2f} {c.backend:>7} {c.decode_ms:>7.2f} "
                     f"{c.score_pass_ms:>8.3f} {c.score_online_ms:>9.3f} {c.prefill_ms:>7.3f}")
    shares = (0.1, 0.25, 0.5, 0.75)
    for d, b in pairs:
        per_drafted = (d.decode_ms + b.score_online_ms) / b.decode_ms
        lines.append(f"\n{d.model} drafting for {b.model}: a drafted token costs "
                     f"{d.decode_ms:.2f} + {b.score_online_ms:.3f} ms = {per_drafted:.2f} base tokens")
        lines.append("  drafter share f:  " + "  ".join(f"{s:>5.0%}" for s in shares))
        lines.append("  WSD / base-only:  " + "  ".join(f"{ratio(d, b, s):>5.2f}" for s in shares))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    cli = argparse.ArgumentParser(description="Per-token costs of decoding and scoring through wsd-local's backend.")
    cli.add_argument("models", nargs="+", type=Path)
    cli.add_argument("--pair", action="append", default=[], metavar="DRAFTER,BASE",
                     help="file names (of the models given) to project WSD vs base-only for")
    cli.add_argument("--n-gpu-layers", type=int, default=-1)
    cli.add_argument("--ctx", type=int, default=1024)
    cli.add_argument("--decode-tokens", type=int, default=128)
    cli.add_argument("--repeats", type=int, default=3)
    cli.add_argument("--json", type=Path, help="append each model's costs to this JSON-lines file")
    ns = cli.parse_args(argv)
    runtime = RuntimeSettings(n_ctx=ns.ctx, n_gpu_layers=ns.n_gpu_layers)
    costs: list[UnitCosts] = []
    for path in ns.models:
        c = measure(path, runtime, decode_tokens=ns.decode_tokens, repeats=ns.repeats)
        costs.append(c)
        print(f"{c.model}: decode {c.decode_ms:.2f} ms, score {c.score_pass_ms:.3f} / {c.score_online_ms:.3f} ms "
              f"(one pass / 16-token steps), prefill {c.prefill_ms:.3f} ms per token", flush=True)
        if ns.json:
            with ns.json.open("a") as f:
                f.write(json.dumps(asdict(c)) + "\n")
    by_name = {c.model: c for c in costs}
    pairs = []
    for pair in ns.pair:
        d, b = pair.split(",")
        pairs.append((by_name[d], by_name[b]))
    print(report(costs, pairs))


if __name__ == "__main__":
    main()
