"""`wsd chat`: registered through the `wsd_local.commands` entry point, so the engine's
CLI never imports Textual."""

from __future__ import annotations

import argparse
import sys

from wsd_local.cli.options import (add_decoding_options, add_model_options, remote_from_args,
                                   runtime_from_args, settings_from_args)
from wsd_local.cli.term import is_terminal
from wsd_local.errors import UsageError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "chat", help="chat in the terminal UI (demo pair by default)",
        description="Open the chat app. Settings flags are the defaults for new chats; "
                    "each chat keeps its own (F3). Chats are saved in the data folder "
                    "(WSD_DATA_DIR overrides it).")
    add_model_options(parser)
    add_decoding_options(parser)
    parser.add_argument("--open", type=int, metavar="CHAT_ID", default=None,
                        help="open this saved chat at start (`wsd log` shows the ids; default: a new chat)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Validate every flag before the screen switches to the app: errors stay one line.
    settings = settings_from_args(args)
    runtime = runtime_from_args(args)
    if not (is_terminal(sys.stdin) and is_terminal(sys.stdout)):
        raise UsageError("wsd chat needs a terminal (its input or output is a pipe or a file)",
                         'for one answer in a script use: wsd generate "..."')
    from .app import WsdChatApp  # Textual loads only for this command

    app = WsdChatApp(drafter=args.drafter, base=args.base, runtime=runtime, settings=settings,
                     open_chat=args.open, remote=remote_from_args(args))
    app.run()
    return app.return_code or 0
