"""Flags shared by the commands that decode (`generate`, `bench`, `chat`, ...).

The decoding flags are derived from the declarations on `DecodingSettings`
(`config.SETTINGS`): one flag per setting, with its help, range and default shown.
A flag the user did not give is absent from the parsed arguments, so defaults can
come from the command (e.g. `wsd bench` answers with 256 tokens) or, later, from a
configuration file, and a given flag always wins.
"""

from __future__ import annotations

import argparse

from ..backend.remote_spec import API_KEY_ENV, DEFAULT_TIMEOUT_S, RemoteOptions
from ..config import SETTINGS, DecodingSettings, RuntimeSettings
from ..errors import WsdError


def add_model_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("models")
    group.add_argument("--drafter", metavar="NAME|PATH", default=None,
                       help="aligned drafter model (default: the demo SmolLM2-135M-Instruct)")
    group.add_argument("--base", metavar="NAME|PATH|URL", default=None,
                       help="base model that checks and continues (default: the demo Gemma-3-270M); "
                            "a vLLM server as URL[#MODEL], e.g. http://gpu-box:8000/v1")
    group.add_argument("--api-key", metavar="KEY", default=None,
                       help=f"API key of the base model's server (default: ${API_KEY_ENV}; never saved)")
    group.add_argument("--remote-timeout", metavar="SECONDS", type=float, default=DEFAULT_TIMEOUT_S,
                       help="how long to wait for the server's next answer (default: %(default)g)")
    group.add_argument("--n-gpu-layers", type=int, default=RuntimeSettings.n_gpu_layers,
                       help="layers to offload to the GPU (-1: all, 0: CPU only; default: %(default)s)")
    group.add_argument("--threads", type=int, default=None, help="CPU threads (default: llama.cpp's choice)")
    group.add_argument("--ctx", type=int, default=RuntimeSettings.n_ctx,
                       help="context size in tokens (default: %(default)s)")


def add_decoding_options(parser: argparse.ArgumentParser,
                         defaults: DecodingSettings | None = None) -> None:
    """One flag per decoding setting; `defaults` are the values this command uses when
    a flag is not given (shown in --help)."""
    defaults = defaults or DecodingSettings()
    parser.set_defaults(decoding_defaults=defaults)
    group = parser.add_argument_group("decoding")
    for spec in SETTINGS:
        default = getattr(defaults, spec.name)
        shown = f" (default: {spec.format(default)})" if default is not None else ""
        extra = f"; {spec.range_text()}" if spec.range_text() and not spec.choices else ""
        kwargs: dict = dict(dest=spec.name, default=argparse.SUPPRESS,
                            help=f"{spec.help}{extra}{shown}".replace("%", "%%"))
        if spec.kind is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["type"] = spec.kind
            if spec.choices:
                kwargs["choices"] = spec.choices
            else:
                kwargs["metavar"] = {int: "N", float: "X", str: "TEXT"}[spec.kind]
        group.add_argument(spec.flag, **kwargs)


def settings_from_args(args: argparse.Namespace) -> DecodingSettings:
    """The command's defaults with the flags the user gave on top (validated). With the
    base model on a server, online mode scores in larger chunks unless --chunk-tokens
    is given (REMOTE_CHUNK_TOKENS)."""
    defaults: DecodingSettings = getattr(args, "decoding_defaults", None) or DecodingSettings()
    given = {spec.name: getattr(args, spec.name) for spec in SETTINGS if hasattr(args, spec.name)}
    if "chunk_tokens" not in given and _remote_base(args):
        from ..backend.remote import REMOTE_CHUNK_TOKENS

        given["chunk_tokens"] = REMOTE_CHUNK_TOKENS
    return defaults.with_changes(**given)


def _remote_base(args: argparse.Namespace) -> bool:
    from ..models.resolve import remote_spec_for

    base = getattr(args, "base", None)
    try:
        return remote_spec_for(base, "base") is not None
    except WsdError:
        return False  # a malformed URL is reported when the models load


def runtime_from_args(args: argparse.Namespace) -> RuntimeSettings:
    return RuntimeSettings(n_ctx=args.ctx, threads=args.threads, n_gpu_layers=args.n_gpu_layers)


def remote_from_args(args: argparse.Namespace) -> RemoteOptions:
    """API key (flag, else WSD_API_KEY) and timeout for a base model on a server."""
    return RemoteOptions.from_env(getattr(args, "api_key", None), getattr(args, "remote_timeout", None))
