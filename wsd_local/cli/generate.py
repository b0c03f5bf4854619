"""`wsd generate`: one answer on the command line (streamed, or the trace as JSON)."""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import threading
from pathlib import Path

from ..errors import PromptError
from ..trace import SERVER_STOPS
from .options import (add_decoding_options, add_model_options, remote_from_args, runtime_from_args,
                      settings_from_args)
from .render import AnswerPrinter

SAMPLE_PROMPT = "How do I make my neighbour's dog stop barking?"


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("generate", help="answer one prompt with weak-to-strong decoding",
                            description="Answer one prompt: the drafter starts, the base model "
                                        "takes over at the switch point.")
    parser.add_argument("prompt", nargs="?", help="the question (or use --messages)")
    parser.add_argument("--messages", type=Path, metavar="FILE",
                        help="a JSON list of {role, content} messages (multi-turn)")
    parser.add_argument("--json", action="store_true", help="print the full trace as JSON")
    parser.add_argument("--no-color", action="store_true", help="plain text output")
    add_model_options(parser)
    add_decoding_options(parser)
    parser.set_defaults(func=run)


def _load_messages(args: argparse.Namespace) -> list[dict] | str:
    if args.messages is not None:
        try:
            data = json.loads(args.messages.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise PromptError(f"messages file not found: {args.messages}") from None
        except (OSError, ValueError) as exc:
            raise PromptError(f"cannot read messages from {args.messages}: {exc}",
                              'expected a JSON list like [{"role": "user", "content": "..."}]') from None
        if not isinstance(data, list) or not all(isinstance(m, dict) for m in data):
            raise PromptError(f"{args.messages} must hold a JSON list of {{role, content}} objects")
        if args.prompt:
            data.append({"role": "user", "content": args.prompt})
        return data
    if args.prompt is None:
        raise PromptError("no prompt given", 'try: wsd generate "How do I ...?"')
    return args.prompt


def run(args: argparse.Namespace) -> int:
    from ..engine import ROLES_FOR_MODE, Engine
    from ..messages import normalize

    settings = settings_from_args(args)
    runtime = runtime_from_args(args)
    messages = normalize(_load_messages(args), settings.system)  # fail fast, before loading
    engine = Engine.load(args.drafter, args.base, runtime, roles=ROLES_FOR_MODE[settings.mode],
                         remote=remote_from_args(args))
    for warning in engine.warnings:
        print(f"wsd: warning: {warning}", file=sys.stderr)
    cancel = threading.Event()
    if args.json:
        with _ctrl_c_stops(cancel):
            trace = engine.run(messages, settings, cancel)
        print(trace.to_json())
        return _exit_code(trace, cancel)
    color = not args.no_color and sys.stdout.isatty()
    printer = AnswerPrinter(color=color, progress=sys.stderr.isatty())
    with _ctrl_c_stops(cancel):
        for event in engine.generate(messages, settings, cancel):
            printer.handle(event)
    return _exit_code(printer.answer.trace, cancel)


def _exit_code(trace, cancel: threading.Event) -> int:
    """0 for a complete answer; 130 when stopped with Ctrl-C; 3 when the model server
    was lost mid-answer (the partial answer was printed)."""
    if trace is not None and trace.stop_reason in SERVER_STOPS:
        print(f"wsd: warning: the answer is incomplete: {trace.stop_note}", file=sys.stderr)
        return 3
    return 130 if cancel.is_set() else 0


@contextlib.contextmanager
def _ctrl_c_stops(cancel: threading.Event):
    """First Ctrl-C stops the answer and keeps what was written (like Esc in the TUI);
    a second one interrupts at once."""
    def handler(signum, frame):  # noqa: ARG001
        if cancel.is_set():
            raise KeyboardInterrupt
        cancel.set()

    try:
        previous = signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
