"""`wsd generate`: one answer on the command line (streamed, or the trace as JSON).

The prompt comes from the argument, or from standard input (`wsd generate -`, or a pipe
when no prompt is given). The answer is saved in the chat store (`wsd log` lists it,
`wsd chat` opens it) unless `--no-log` or `generate.log = false` in config.toml.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import threading
from pathlib import Path

from ..errors import PromptError, WsdError
from ..modes import mode_named
from ..terminal_text import terminal_safe, terminal_safe_json
from ..trace import SERVER_STOPS
from .options import (add_decoding_options, add_model_options, remote_from_args, runtime_from_args,
                      settings_from_args)
from .render import AnswerPrinter
from .term import ctrl_c_stops, is_terminal, use_color

SAMPLE_PROMPT = "How do I make my neighbour's dog stop barking?"


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("generate", help="answer one prompt with weak-to-strong decoding",
                            description="Answer one prompt: the drafter starts, the base model "
                                        "takes over at the switch point. The answer is saved in the "
                                        "chat store (`wsd log` lists it).")
    parser.add_argument("prompt", nargs="?",
                        help="the question; `-` reads it from standard input, as does a pipe when "
                             "no prompt is given")
    parser.add_argument("--messages", type=Path, metavar="FILE",
                        help="a JSON list of {role, content} messages (multi-turn; `-` reads it from "
                             "standard input; default: none)")
    parser.add_argument("--json", action="store_true", help="print the full trace as JSON (default: text)")
    parser.add_argument("--no-color", action="store_true",
                        help="plain text output (default: colour on a terminal, off when NO_COLOR is set "
                             "or the output is a pipe)")
    parser.add_argument("--no-log", action="store_true",
                        help="do not save this answer in the chat store (default: saved, unless "
                             "generate.log = false in config.toml)")
    add_model_options(parser)
    add_decoding_options(parser)
    parser.set_defaults(func=run)


def _read_stdin(what: str) -> str:
    try:
        text = sys.stdin.read()
    except (OSError, ValueError, AttributeError):  # no standard input at all
        text = ""
    if not text.strip():
        raise PromptError(f"no {what} given: standard input was empty", 'try: wsd generate "How do I ...?"')
    return text


def _load_messages(args: argparse.Namespace) -> list[dict] | str:
    prompt = args.prompt
    if prompt == "-":
        prompt = _read_stdin("prompt").strip()
    if args.messages is not None:
        if str(args.messages) == "-":
            if args.prompt == "-":
                raise PromptError("standard input can hold the prompt or the messages, not both")
            source, text = "standard input", _read_stdin("messages")
        else:
            source = str(args.messages)
            try:
                text = args.messages.read_text(encoding="utf-8")
            except FileNotFoundError:
                raise PromptError(f"messages file not found: {args.messages}") from None
            except OSError as exc:
                raise PromptError(f"cannot read messages from {args.messages}: {exc}") from None
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise PromptError(f"cannot read messages from {source}: {exc}",
                              'expected a JSON list like [{"role": "user", "content": "..."}]') from None
        if not isinstance(data, list) or not all(isinstance(m, dict) for m in data):
            raise PromptError(f"{source} must hold a JSON list of {{role, content}} objects")
        if prompt:
            data.append({"role": "user", "content": prompt})
        return data
    if prompt is None:
        if is_terminal(sys.stdin):
            raise PromptError("no prompt given", 'try: wsd generate "How do I ...?" or pipe text into it')
        prompt = _read_stdin("prompt").strip()
    return prompt


def run(args: argparse.Namespace) -> int:
    from ..engine import Engine
    from ..events import Finished
    from ..messages import normalize

    settings = settings_from_args(args)
    runtime = runtime_from_args(args)
    messages = normalize(_load_messages(args), settings.system)  # fail fast, before loading
    engine = Engine.load(args.drafter, args.base, runtime, roles=mode_named(settings.mode).models,
                         remote=remote_from_args(args))
    for warning in engine.warnings:
        print(f"wsd: warning: {terminal_safe(warning, one_line=True)}", file=sys.stderr)
    session = _start_session(args, messages, settings)
    cancel = threading.Event()
    printer = AnswerPrinter(out=sys.stdout, err=sys.stderr, color=use_color(sys.stdout, args.no_color),
                            progress=is_terminal(sys.stderr))
    trace = None
    try:
        with ctrl_c_stops(cancel):
            if args.json:
                trace = engine.run(messages, settings, cancel)
            else:
                for event in engine.generate(messages, settings, cancel):
                    printer.handle(event)
                    if isinstance(event, Finished):
                        trace = event.trace
                    elif session is not None:
                        session.save_partial(printer.answer.text)
    except KeyboardInterrupt:
        if session is not None:
            session.stop(printer.answer.text)
        raise
    except BaseException as exc:
        if session is not None:
            session.fail(printer.answer.text, exc.one_line() if isinstance(exc, WsdError) else repr(exc))
        raise
    finally:
        if session is not None:
            if trace is not None:
                session.finish(trace)
            session.store.close()
    if args.json and trace is not None:
        print(terminal_safe_json(trace.to_json()))
    return _exit_code(trace, cancel)


def _exit_code(trace, cancel: threading.Event) -> int:  # noqa: ANN001 - a Trace or None
    """0 for a complete answer; 130 when stopped with Ctrl-C; 1 (a command that failed
    while it ran) when the model server was lost mid-answer: the partial answer was
    printed and is kept in the log."""
    if trace is not None and trace.stop_reason in SERVER_STOPS:
        print(f"wsd: warning: the answer is incomplete: {terminal_safe(trace.stop_note, one_line=True)}",
              file=sys.stderr)
        return 1
    return 130 if cancel.is_set() else 0


def _start_session(args: argparse.Namespace, messages, settings):
    """The stored answer, or None (--no-log, generate.log = false). A store that cannot
    be written is a warning: the answer matters more than its record."""
    from .. import config_file
    from ..answer_session import AnswerSession
    from ..store import Store

    if args.no_log:
        return None
    config = getattr(args, "user_config", None) or config_file.load()
    if not config.get("generate.log"):
        return None
    try:
        return AnswerSession.new_chat(Store(), messages, settings, source="generate", on_error=_warn)
    except (WsdError, sqlite3.Error, OSError) as exc:
        _warn(f"the answer is not logged: {exc.one_line() if isinstance(exc, WsdError) else exc}")
        return None


def _warn(message: str) -> None:
    print(f"wsd: warning: {terminal_safe(message, one_line=True)}", file=sys.stderr)
