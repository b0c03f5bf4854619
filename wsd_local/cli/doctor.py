"""`wsd doctor` and `wsd --version [--verbose]`: check an installation in one command."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("doctor", help="check the installation: versions, compute backend, folders, demo files",
                            description="Prints the versions, the compute backend llama.cpp was built with "
                                        "(CPU, CUDA, Metal, ...) and whether it offloads to a GPU, the data, "
                                        "models and config locations, the config, which demo files are present, "
                                        "the GGUF files in the Hugging Face cache and the models of Ollama, "
                                        "LM Studio and llama.cpp's cache. Exit status 1 when "
                                        "something is wrong.")
    parser.add_argument("--smoke", action="store_true",
                        help="also load the default model pair and decode one token (default: off)")
    parser.add_argument("--json", action="store_true", help="print JSON (default: text)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..doctor import format_lines, full_report, load_config, smoke_decode

    config = load_config()  # once for every line that needs it
    smoke = smoke_decode(config) if args.smoke else None  # first: it may assemble the demo base file
    lines = full_report(config) + ([smoke] if smoke else [])
    if args.json:
        print(json.dumps([line.as_dict() for line in lines], indent=2))
    else:
        print(format_lines(lines))
        problems = sum(line.problem for line in lines)
        if problems:
            print(f"\n{problems} problem{'s' if problems > 1 else ''} found (marked above)")
        elif not args.smoke:
            print("\nno problems found (`wsd doctor --smoke` also loads the models and decodes one token)")
    return 1 if any(line.problem for line in lines) else 0


def print_version(verbose: bool = False) -> int:
    from ..doctor import format_lines, short_report, version

    if not verbose:
        print(f"wsd-local {version()}")
        return 0
    print(format_lines(short_report()))
    return 0
