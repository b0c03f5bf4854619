"""`wsd serve`: weak-to-strong decoding behind an OpenAI-compatible API.

The decoding flags are the server's defaults; each request may override them in its
`wsd` object (and with the OpenAI fields max_tokens, temperature, top_p, seed).
"""

from __future__ import annotations

import argparse
import os
import sys

from ..errors import ConfigError, UsageError
from ..terminal_text import terminal_safe
from .options import (add_decoding_options, add_model_options, remote_from_args, runtime_from_args,
                      settings_from_args)

#: This server's own key (what its clients send); WSD_API_KEY is a remote base model's key.
API_KEY_ENV = "WSD_SERVE_API_KEY"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "serve", help="serve WSD behind an OpenAI-compatible API (/v1/chat/completions)",
        description="Serve a drafter + base pair as one model behind an OpenAI-compatible API. "
                    "Decoding flags set the server's defaults; a request overrides them in its "
                    "`wsd` object. Answers are stored with the TUI's chats (marked ⇄) unless "
                    "--no-store. Needs the server extra: pip install 'wsd-local[server]'.")
    add_model_options(parser, base_key_flag="--base-api-key")
    add_decoding_options(parser)
    group = parser.add_argument_group("server")
    group.add_argument("--host", default="127.0.0.1",
                       help="address to listen on (default: %(default)s, this machine only; "
                            "0.0.0.0 for every interface)")
    group.add_argument("--port", type=int, default=8080,
                       help="port (default: %(default)s; 0 picks a free one)")
    group.add_argument("--api-key", default=None, metavar="KEY",
                       help=f"require 'Authorization: Bearer KEY' on every route but /health "
                            f"(default: ${API_KEY_ENV} if set, else no key)")
    group.add_argument("--max-queue", type=int, default=16, metavar="N",
                       help="requests that may wait while one is answered; more get 503 "
                            "(default: %(default)s)")
    group.add_argument("--no-store", action="store_true",
                       help="do not record answers in the chat store")
    group.add_argument("--model-name", default=None, metavar="NAME",
                       help="the model id in /v1/models (default: wsd:<drafter>+<base>)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..server import INSTALL_HINT, missing_dependency

    missing = missing_dependency()
    if missing:
        raise UsageError(f"wsd serve needs the server extra ({missing} is not installed)",
                         f"install it with: {INSTALL_HINT}")
    # Everything the user typed is checked before the port is bound and models load.
    settings = settings_from_args(args)
    runtime = runtime_from_args(args)
    if args.max_queue < 1:
        raise ConfigError(f"--max-queue must be >= 1, got {args.max_queue}")
    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port must be in [0, 65535], got {args.port}")
    api_key = args.api_key if args.api_key is not None else os.environ.get(API_KEY_ENV) or None
    if args.model_name is not None and not args.model_name.strip():
        raise ConfigError("--model-name must not be empty")

    from ..engine import Engine
    from ..server.app import ServerConfig, create_app
    from ..server.logs import configure_logging
    from ..server.runner import bind, serve
    from ..store import Store

    if not api_key and args.host not in LOOPBACK:
        print(f"wsd: warning: listening on {args.host} without an API key: anyone who can reach "
              f"this machine can use the models (add --api-key)", file=sys.stderr)
    sock = bind(args.host, args.port)
    try:
        engine = Engine.load(args.drafter, args.base, runtime, remote=remote_from_args(args))
    except BaseException:
        sock.close()
        raise
    for warning in engine.warnings:
        print(f"wsd: warning: {terminal_safe(warning, one_line=True)}", file=sys.stderr)
    names = engine.identities
    model_name = args.model_name or f"wsd:{names['drafter'].name}+{names['base'].name}"
    store = None if args.no_store else Store()
    log_file = configure_logging()
    app = create_app(engine, ServerConfig(model_name=model_name, defaults=settings,
                                          max_queue=args.max_queue, api_key=api_key, store=store))

    def ready(url: str) -> None:
        details = [f"model {model_name}", f"mode {settings.mode}",
                   "API key required" if api_key else "no API key",
                   f"answers stored in {store.path}" if store else "answers not stored",
                   f"log {log_file}"]
        print(f"wsd serve: listening on {url}/v1 · " + " · ".join(details), flush=True)

    try:
        serve(app, sock, ready)
    except KeyboardInterrupt:
        pass  # Ctrl-C: uvicorn has already stopped gracefully
    finally:
        sock.close()
        if not app.state.worker.alive:  # never free the models under a running answer
            engine.close()
        if store is not None:
            store.close()
    print("wsd serve: stopped", flush=True)
    return 0
