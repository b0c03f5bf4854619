"""`wsd bench`: base-only, drafter-only, paper and online WSD over a fixed prompt set."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..bench.prompts import BENCH_PROMPTS
from ..bench.measure import DEFAULT_MODES
from ..settings import DecodingSettings
from ..modes import COMPARISON_ORDER, PAPER_MODE, names
from ..terminal_text import terminal_safe
from .options import (add_decoding_options, add_model_options, parse_modes, remote_from_args,
                      runtime_from_args, settings_from_args)

#: The bench answers in 256 tokens (enough for the switch and a continuation, quick to
#: run) so runs compare; no repetition stop, so every mode writes its full
#: answer (the benchmark measures decoding, and its traces compare across versions).
BENCH_DEFAULTS = DecodingSettings(max_tokens=256, draft_max_tokens=512, repetition_stop=0)


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("bench", help="benchmark the modes on a fixed prompt set",
                            description=f"Runs every prompt in {', '.join(DEFAULT_MODES[:-1])} and "
                                        f"{DEFAULT_MODES[-1]} modes and prints a table and the tracked ratios.")
    parser.add_argument("--prompts", type=int, default=len(BENCH_PROMPTS),
                        help=f"how many of the {len(BENCH_PROMPTS)} fixed prompts to run (default: %(default)s)")
    parser.add_argument("--modes", default=",".join(DEFAULT_MODES),
                        help=f"comma-separated modes of {', '.join(names(COMPARISON_ORDER))} "
                             "(default: %(default)s)")
    parser.add_argument("--skip-baselines", action="store_true",
                        help="skip the scoring-pass and controller-overhead comparisons")
    parser.add_argument("--save-traces", type=Path, metavar="DIR", default=None,
                        help="write every answer's trace to DIR/<mode>-<prompt>.json (compare two "
                             "runs with `python -m wsd_local.bench.compare_traces A B`; default: not saved)")
    parser.add_argument("--compare-local", metavar="NAME|PATH", default=None,
                        help="with a base model on a server: run the same prompts again with this "
                             "local GGUF as the base model and compare the time per answer token (default: none)")
    add_model_options(parser)
    add_decoding_options(parser, defaults=BENCH_DEFAULTS)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..bench.report import summary, table
    from ..bench.remote import remote_summary
    from ..bench.measure import measure_overhead, measure_scoring, run_bench
    from ..engine import Engine
    from ..errors import ConfigError

    settings = settings_from_args(args)
    modes = parse_modes(args.modes)
    settings.check_modes(modes)
    if not 1 <= args.prompts <= len(BENCH_PROMPTS):
        raise ConfigError(f"--prompts must be between 1 and {len(BENCH_PROMPTS)}")
    engine = Engine.load(args.drafter, args.base, runtime_from_args(args), remote=remote_from_args(args))
    remote_base = engine.base.identity.remote
    prompts = BENCH_PROMPTS[: args.prompts]
    base = engine.base.identity
    print(terminal_safe(  # model names come from files and servers
          f"wsd bench · backend {engine.backend_name} · drafter {engine.drafter.identity.name} "
          f"({engine.drafter.identity.quantization}) · base "
          f"{base.label if base.remote else f'{base.name} ({base.quantization})'} · {len(prompts)} prompts · max_tokens "
          f"{settings.max_tokens}, draft_max_tokens {settings.draft_max_tokens}, threshold "
          f"{settings.threshold}, window {settings.window}, chunk {settings.chunk_tokens}", one_line=True), flush=True)

    def progress(text: str) -> None:
        # A live line on a terminal; a plain line per step in logs.
        if sys.stderr.isatty():
            sys.stderr.write(f"\r\x1b[2K{text}")
        elif text:
            sys.stderr.write(text + "\n")
        sys.stderr.flush()

    result = run_bench(engine, prompts, settings, modes, progress)
    if args.save_traces is not None:
        args.save_traces.mkdir(parents=True, exist_ok=True)
        for row in result.rows:
            (args.save_traces / f"{row.mode}-{row.prompt_index}.json").write_text(
                row.trace.to_json(), encoding="utf-8")
    if not args.skip_baselines and not remote_base:  # both baselines drive llama.cpp directly
        paper = [r for r in result.by_mode(PAPER_MODE.name) if r.trace.draft_tokens]
        if paper:
            longest = max(paper, key=lambda r: len(r.trace.draft_tokens))
            progress("scoring pass vs logits_all")
            result.scoring = measure_scoring(engine, longest.trace)
        progress("controller overhead")
        result.overhead = measure_overhead(engine, prompts[0])
    local = None
    if args.compare_local and remote_base:
        engine.close()
        progress(f"the same prompts with {args.compare_local} as a local base")
        engine = Engine.load(args.drafter, args.compare_local, runtime_from_args(args))
        local = run_bench(engine, prompts, settings, modes, progress)
    progress("")
    print(terminal_safe(table(result)))
    print()
    print(terminal_safe(summary(result, settings.chunk_tokens, settings.window)))
    if remote_base:
        print()
        print(terminal_safe(remote_summary(result, local, args.compare_local or "")))
    engine.close()
    return 0
