"""Online chunk size against a base model on a server: which `chunk_tokens` to use.

    python -m devtools.chunk_sweep --base http://HOST:PORT/v1 [--chunks 8,16,32,64]
        [--modes base,paper] [--local-base NAME]

Every online scoring step re-sends the frame and the draft so far, and vLLM recomputes
all of it (no prefix cache for prompt log-probabilities). Small chunks mean more
requests and more server work; large chunks mean more drafted tokens past the switch.
For each prompt, paper mode and every chunk size run back to back (interleaved, so a
machine whose load drifts affects them alike); the totals per setting are printed.
With `--local-base` the same settings also run with a local base model, interleaved
too: time per answer token with the base on the server vs here.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field

from wsd_local.settings import DecodingSettings
from wsd_local.modes import PAPER_MODE, WSD_MODE, mode_named
from wsd_local.bench.prompts import BENCH_PROMPTS
from wsd_local.bench.remote import requests_since, server_requests


@dataclass
class Totals:
    wall_s: float = 0.0
    draft_s: float = 0.0
    score_s: float = 0.0
    continue_s: float = 0.0
    requests: float = 0.0
    prompt_tokens: float = 0.0
    answer_tokens: int = 0
    past_switch: list[int] = field(default_factory=list)
    switches: list[int | None] = field(default_factory=list)


def sweep(engine, prompts, chunks: list[int], settings: DecodingSettings, local=None,
          modes: tuple[str, ...] = (PAPER_MODE.name,)) -> dict[str, Totals]:
    """Totals per setting: `modes` and online WSD with each chunk size on `engine`; with
    `local` (an engine whose base model is local) `modes` and chunk 16 there too,
    prefixed `local `, so the remote and local base compare on the same prompts,
    interleaved."""
    import time

    names = [*modes, *(f"{WSD_MODE.name}/{c}" for c in chunks)]
    local_names = [*modes, f"{WSD_MODE.name}/16"]  # the local default, measured in BENCHMARKS.md
    settings_list = [(engine, n) for n in names] + ([(local, n) for n in local_names] if local is not None else [])
    results: dict[str, Totals] = {("local " if e is local else "") + n: Totals() for e, n in settings_list}
    for i, prompt in enumerate(prompts):
        for (engine_used, setting), (name, totals) in zip(settings_list, results.items()):
            print(f"prompt {i + 1}/{len(prompts)} · {name}", file=sys.stderr, flush=True)
            mode, _, chunk = setting.partition("/")
            run = settings.with_changes(mode=mode, **({"chunk_tokens": int(chunk)} if chunk else {}))
            engine = engine_used
            before = server_requests(engine)
            start = time.perf_counter()
            trace = engine.run(prompt, run)
            totals.wall_s += time.perf_counter() - start
            used = requests_since(before, server_requests(engine)) or {}
            t, c = trace.timings, trace.counts
            totals.draft_s += t.get("draft_s", 0.0)
            totals.score_s += t.get("score_s", 0.0)
            totals.continue_s += t.get("continue_s", 0.0)
            totals.requests += used.get("requests", 0)
            totals.prompt_tokens += used.get("prompt_tokens", 0)
            totals.answer_tokens += trace.answer_tokens
            totals.past_switch.append(c.get("draft_tokens_past_switch", 0))
            totals.switches.append(trace.switch_index)
    return results


def report(results: dict[str, Totals], n_prompts: int) -> str:
    head = (f"{'setting':<8} {'wall s':>7} {'ms/tok':>7} {'draft s':>7} {'check s':>7} {'cont. s':>7} "
            f"{'req/ans':>7} {'srv tok/ans':>11} {'past (max)':>10}")
    lines = [head, "-" * len(head)]
    for name, t in results.items():
        lines.append(f"{name:<8} {t.wall_s:>7.1f} {t.wall_s / max(1, t.answer_tokens) * 1e3:>7.1f} "
                     f"{t.draft_s:>7.1f} {t.score_s:>7.1f} {t.continue_s:>7.1f} {t.requests / n_prompts:>7.1f} "
                     f"{t.prompt_tokens / n_prompts:>11.0f} {sum(t.past_switch) / n_prompts:>5.1f} ({max(t.past_switch)})")
    for group in ("", "local "):
        switches = {name: t.switches for name, t in results.items()
                    if name.startswith("local ") == (group == "local ")
                    and mode_named(name.removeprefix("local ").partition("/")[0]).switches}
        if switches:
            first = next(iter(switches.values()))
            same = all(s == first for s in switches.values())
            where = "local base" if group else "base on the server"
            lines.append(f"switch points, {where}: " + ("identical in every setting" if same
                                                         else "differ: " + repr(switches)))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from wsd_local.backend.remote_spec import RemoteOptions
    from wsd_local.engine import Engine

    parser = argparse.ArgumentParser(prog="python -m devtools.chunk_sweep", description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, metavar="URL[#MODEL]")
    parser.add_argument("--drafter", default=None)
    parser.add_argument("--chunks", default="8,16,32,64")
    parser.add_argument("--prompts", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--modes", default=PAPER_MODE.name, help="other modes to run alongside (e.g. base,paper)")
    parser.add_argument("--local-base", default=None, metavar="NAME|PATH",
                        help="also run every setting with this local GGUF as the base model")
    parser.add_argument("--api-key", default=None)
    args = parser.parse_args(argv)
    chunks = [int(c) for c in args.chunks.split(",") if c]
    modes = tuple(m for m in args.modes.split(",") if m)
    engine = Engine.load(args.drafter, args.base, remote=RemoteOptions.from_env(args.api_key))
    local = Engine.load(args.drafter, args.local_base) if args.local_base else None
    names = {role: identity.label for role, identity in engine.identities.items()}
    if local is not None:
        names["local base"] = local.identities["base"].label
    try:
        prompts = BENCH_PROMPTS[: args.prompts]
        results = sweep(engine, prompts, chunks, DecodingSettings(max_tokens=args.max_tokens), local, modes)
    finally:
        engine.close()
        if local is not None:
            local.close()
    print("chunk sweep · " + " · ".join(f"{role} {name}" for role, name in names.items())
          + f" · {len(prompts)} prompts · max_tokens {args.max_tokens}")
    print(report(results, len(prompts)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
