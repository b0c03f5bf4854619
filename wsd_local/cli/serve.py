"""`wsd serve`: weak-to-strong decoding behind an OpenAI-compatible API.

The decoding flags are the server's defaults; each request may override them in its
`wsd` object (and with the OpenAI fields max_tokens, temperature, top_p, seed).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from ..settings import SETTINGS, DecodingSettings
from ..engine_pool import MAX_CONCURRENCY
from ..errors import ConfigError, UsageError
from ..server.limits import MIB, RequestLimits
from ..terminal_text import terminal_safe
from .options import (add_decoding_options, add_model_options, remote_from_args, runtime_from_args,
                      settings_from_args)

if TYPE_CHECKING:
    from ..server.guard import AccessPolicy

#: Answers at once with both models on servers: enough to keep a server's batch busy,
#: few enough that one process's threads and connections stay small.
DEFAULT_CONCURRENCY = 8

#: This server's own key (what its clients send); WSD_API_KEY is a remote base model's key.
API_KEY_ENV = "WSD_SERVE_API_KEY"


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
                            f"(default: --api-key-file, else ${API_KEY_ENV} if set, else no key); "
                            f"other users of this machine can read a command line (ps): prefer "
                            f"--api-key-file or ${API_KEY_ENV}")
    group.add_argument("--api-key-file", default=None, metavar="PATH", type=Path,
                       help="read the API key from this file (its first line; default: none)")
    group.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                       help="also answer requests addressed to NAME (the Host header; repeatable; "
                            "* for any). By default, on a loopback --host only loopback names are "
                            "answered, which keeps web pages that rebind their own name to 127.0.0.1 out")
    group.add_argument("--allow-origin", action="append", default=[], metavar="ORIGIN",
                       help="let web pages from ORIGIN (e.g. https://chat.example.org; repeatable; "
                            "* for any) call the API from a browser (default: none; other pages are refused)")
    group.add_argument("--max-queue", type=int, default=16, metavar="N",
                       help="requests that may wait while the running ones are answered; more get 503 "
                            "(default: %(default)s)")
    group.add_argument("--max-concurrency", type=int, default=DEFAULT_CONCURRENCY, metavar="N",
                       help="answers that may run at once when both models are on model servers "
                            "(their batching does the work); a pair with a local model answers one "
                            "request at a time whatever N is (default: %(default)s)")
    group.add_argument("--max-body-mb", type=float, default=RequestLimits.max_body_bytes / MIB,
                       metavar="MB", help="largest request body in MiB; larger ones get 413 "
                                          "(default: %(default)g)")
    group.add_argument("--max-tokens-limit", type=int, default=RequestLimits.max_tokens, metavar="N",
                       help="most tokens a request may ask for (max_tokens, wsd.draft_max_tokens, ...); "
                            "more is a 400 (default: %(default)s)")
    group.add_argument("--request-timeout", type=float, default=RequestLimits.deadline_s,
                       metavar="SECONDS", help="seconds one answer may run; then it stops and what "
                                               "was written is sent and stored, marked (0: no limit; "
                                               "default: %(default)g)")
    group.add_argument("--no-store", action="store_true",
                       help="do not record answers in the chat store")
    group.add_argument("--model-name", default=None, metavar="NAME",
                       help="the model id in /v1/models (default: wsd:<drafter>+<base>)")
    parser.set_defaults(func=run)


def api_key_from_args(args: argparse.Namespace) -> str | None:
    """The key clients must send: --api-key, --api-key-file, then the environment."""
    if args.api_key is not None and args.api_key_file is not None:
        raise UsageError("give --api-key or --api-key-file, not both")
    if args.api_key is not None:
        if not args.api_key.strip():
            raise ConfigError("--api-key must not be empty")
        return args.api_key
    if args.api_key_file is not None:
        try:
            lines = args.api_key_file.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise ConfigError(f"cannot read --api-key-file {args.api_key_file}: {reason}") from None
        key = lines[0].strip() if lines else ""
        if not key:
            raise ConfigError(f"--api-key-file {args.api_key_file} is empty",
                              "put the key on its first line")
        return key
    return os.environ.get(API_KEY_ENV) or None


def limits_from_args(args: argparse.Namespace, settings: DecodingSettings) -> RequestLimits:
    if not (math.isfinite(args.max_body_mb) and args.max_body_mb > 0):
        raise ConfigError(f"--max-body-mb must be > 0, got {args.max_body_mb:g}")
    if args.max_tokens_limit < 1:
        raise ConfigError(f"--max-tokens-limit must be >= 1, got {args.max_tokens_limit}")
    if not (math.isfinite(args.request_timeout) and args.request_timeout >= 0):
        raise ConfigError(f"--request-timeout must be >= 0 seconds, got {args.request_timeout:g}")
    # The server's own defaults must be answers it would accept from a client.
    for spec in SETTINGS:
        value = getattr(settings, spec.name)
        if spec.kind is int and spec.name != "seed" and value is not None and value > args.max_tokens_limit:
            raise ConfigError(f"{spec.flag} {value} is above --max-tokens-limit {args.max_tokens_limit}",
                              f"lower {spec.flag} or raise --max-tokens-limit")
    return RequestLimits(max_body_bytes=max(1, int(args.max_body_mb * MIB)),
                         max_tokens=args.max_tokens_limit, deadline_s=args.request_timeout)


def concurrency_note(concurrency: int, runs_nothing_here: bool) -> str:
    """How many answers run at once, and why, for the startup line."""
    if runs_nothing_here:
        return f"up to {concurrency} answers at once" if concurrency > 1 else "one answer at a time"
    return "one answer at a time (a local model)"


def access_from_args(args: argparse.Namespace) -> "AccessPolicy":
    from ..server.guard import ANY, AccessPolicy

    for name in args.allow_host:
        if not name.strip() or any(c in name for c in "/ "):
            raise ConfigError(f"--allow-host takes a host name (e.g. wsd.lan), got {name!r}")
    for origin in args.allow_origin:
        parts = urlsplit(origin.strip())
        if origin.strip() != ANY and not (parts.scheme in ("http", "https") and parts.netloc
                                          and parts.path in ("", "/")):
            raise ConfigError(f"--allow-origin takes an origin such as https://chat.example.org, "
                              f"got {origin!r}")
    return AccessPolicy.for_bind(args.host, args.allow_host, args.allow_origin)


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
    if not 1 <= args.max_concurrency <= MAX_CONCURRENCY:
        raise ConfigError(f"--max-concurrency must be in [1, {MAX_CONCURRENCY}], got {args.max_concurrency}")
    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port must be in [0, 65535], got {args.port}")
    api_key = api_key_from_args(args)
    if args.model_name is not None and not args.model_name.strip():
        raise ConfigError("--model-name must not be empty")
    limits = limits_from_args(args, settings)
    access = access_from_args(args)

    from ..engine import Engine
    from ..engine_pool import answer_slots
    from ..server.app import ServerConfig, create_app
    from ..server.guard import is_loopback
    from ..server.logs import configure_logging
    from ..server.runner import bind, serve
    from ..store import Store

    if not api_key and not is_loopback(args.host):
        print(f"wsd: warning: listening on {args.host} without an API key: anyone who can reach "
              f"this machine can use the models (add --api-key-file)", file=sys.stderr)
    sock = bind(args.host, args.port)
    try:
        engine = Engine.load(args.drafter, args.base, runtime, remote=remote_from_args(args))
    except BaseException:
        sock.close()
        raise
    concurrency = answer_slots(engine, args.max_concurrency)
    for warning in engine.warnings:
        print(f"wsd: warning: {terminal_safe(warning, one_line=True)}", file=sys.stderr)
    names = engine.identities
    model_name = args.model_name or f"wsd:{names['drafter'].name}+{names['base'].name}"
    store = None if args.no_store else Store()
    log_file = configure_logging()
    app = create_app(engine, ServerConfig(model_name=model_name, defaults=settings,
                                          max_queue=args.max_queue, concurrency=concurrency,
                                          api_key=api_key, store=store, limits=limits, access=access))

    def ready(url: str) -> None:
        details = [f"model {model_name}", f"mode {settings.mode}",
                   "API key required" if api_key else "no API key",
                   concurrency_note(concurrency, engine.runs_nothing_here),
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
