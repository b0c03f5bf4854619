"""Flags shared by `wsd generate`, `wsd bench` and `wsd chat`."""

from __future__ import annotations

import argparse

from ..config import MODES, DecodingSettings, RuntimeSettings


def add_model_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("models")
    group.add_argument("--drafter", metavar="NAME|PATH", default=None,
                       help="aligned drafter model (default: the demo SmolLM2-135M-Instruct)")
    group.add_argument("--base", metavar="NAME|PATH", default=None,
                       help="base model that checks and continues (default: the demo Gemma-3-270M)")
    group.add_argument("--n-gpu-layers", type=int, default=RuntimeSettings.n_gpu_layers,
                       help="layers to offload to the GPU (-1: all, 0: CPU only)")
    group.add_argument("--threads", type=int, default=None, help="CPU threads (default: llama.cpp's choice)")
    group.add_argument("--ctx", type=int, default=RuntimeSettings.n_ctx, help="context size in tokens")


def add_decoding_options(parser: argparse.ArgumentParser) -> None:
    d = DecodingSettings()
    group = parser.add_argument_group("decoding")
    group.add_argument("--mode", choices=MODES, default=d.mode,
                       help="wsd: online weak-to-strong (default); paper: draft all, then check; "
                            "base / draft: one model alone")
    group.add_argument("--threshold", type=float, default=d.threshold, help="switch threshold gamma in (0, 1]")
    group.add_argument("--window", type=int, default=d.window, help="window w of draft tokens")
    group.add_argument("--draft-max-tokens", type=int, default=d.draft_max_tokens)
    group.add_argument("--max-tokens", type=int, default=d.max_tokens, help="answer length limit in tokens")
    group.add_argument("--chunk-tokens", type=int, default=d.chunk_tokens,
                       help="online mode: drafter tokens per scoring step")
    group.add_argument("--temperature", type=float, default=d.temperature, help="0 is greedy")
    group.add_argument("--top-p", type=float, default=d.top_p)
    group.add_argument("--seed", type=int, default=d.seed)
    group.add_argument("--system", default=None, help="system prompt")


def settings_from_args(args: argparse.Namespace) -> DecodingSettings:
    return DecodingSettings(
        mode=args.mode, threshold=args.threshold, window=args.window,
        draft_max_tokens=args.draft_max_tokens, max_tokens=args.max_tokens,
        chunk_tokens=args.chunk_tokens, temperature=args.temperature, top_p=args.top_p,
        seed=args.seed, system=args.system,
    )


def runtime_from_args(args: argparse.Namespace) -> RuntimeSettings:
    return RuntimeSettings(n_ctx=args.ctx, threads=args.threads, n_gpu_layers=args.n_gpu_layers)
