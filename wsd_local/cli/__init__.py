"""`wsd`: the command line. Subcommands live in small modules with a `register()`.

Other packages add subcommands through the `wsd_local.commands` entry-point group
(the TUI registers `wsd chat` that way), so this package never imports them.
"""

from __future__ import annotations

import argparse
import sys
from importlib import metadata
from typing import Sequence

from ..errors import WsdError
from ..terminal_text import terminal_safe


class OneLineParser(argparse.ArgumentParser):
    """argparse, but usage errors are one line and exit 2 (no usage dump)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {terminal_safe(message, one_line=True)} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    from . import bench, completion, config, doctor, generate, log, models
    from . import eval as eval_command
    from . import serve

    parser = OneLineParser(prog="wsd", description="Weak-to-strong decoding with local GGUF models.",
                           epilog="Exit status: 0 success, 1 a command that failed while it ran, "
                                  "2 a usage error (see the README), 130 interrupted.")
    parser.add_argument("--version", action="store_true",
                        help="print the version and exit (with --verbose: versions, compute backend, folders)")
    parser.add_argument("--verbose", action="store_true", help="with --version: the short form of `wsd doctor`")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    generate.register(sub)
    log.register(sub)
    bench.register(sub)
    models.register(sub)
    eval_command.register(sub)
    serve.register(sub)
    config.register(sub)
    doctor.register(sub)
    completion.register(sub)
    for entry in metadata.entry_points(group="wsd_local.commands"):
        try:
            entry.load()(sub)
        except ImportError as exc:  # e.g. the TUI's dependencies are not installed
            sub.add_parser(entry.name, help=f"(unavailable: {exc})")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    if argv is None:
        from .completion import complete_if_asked

        complete_if_asked(parser)  # Tab in a shell: print the completions and exit
    args = parser.parse_args(argv)
    if args.version:
        from .doctor import print_version

        return print_version(verbose=args.verbose)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        if getattr(args, "config_applies", False):
            from .options import apply_config

            apply_config(args)  # flags > config.toml > built-in defaults
        return int(args.func(args) or 0)
    except WsdError as exc:
        # Errors quote what came from outside (names, paths, what a server said).
        print(f"wsd: error: {terminal_safe(exc.one_line(), one_line=True)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("wsd: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
