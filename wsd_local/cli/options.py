"""Flags shared by the commands that decode (`generate`, `bench`, `chat`, ...).

The decoding flags are derived from the declarations on `DecodingSettings`
(`settings.SETTINGS`): one flag per setting, with its help, range and default shown.
A flag the user did not give is absent from the parsed arguments (or None), so the
value comes from the next layer: a flag > the config file (`config_file`, applied by
`apply_config` before the command runs) > the built-in default. A command may fix some
settings for itself (`wsd bench` answers in 256 tokens so runs compare); those win over
the config file, and a flag still wins over them.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from ..backend.remote_spec import API_KEY_ENV, DEFAULT_TIMEOUT_S, RemoteOptions
from ..settings import SETTINGS, DecodingSettings, RuntimeSettings, SettingSpec
from ..errors import UsageError, WsdError
from ..modes import MODE_NAMES

if TYPE_CHECKING:
    from ..config_file import UserConfig

_CONFIG_NOTE = "config.toml (`wsd config show`) can change these defaults; a flag overrides it"


def add_model_options(parser: argparse.ArgumentParser, base_key_flag: str = "--api-key",
                      remote: bool = True) -> None:
    """The model pair and how it runs. `base_key_flag` names the flag for the API key of
    the model servers: `wsd serve` has its own `--api-key` (the key its clients send), so
    there the servers' key is `--base-api-key`; both read WSD_API_KEY. `remote=False`:
    the command runs local models only (no URL, no key, no timeout)."""
    parser.set_defaults(config_applies=True)
    group = parser.add_argument_group("models", _CONFIG_NOTE)
    if remote:
        group.add_argument("--drafter", metavar="NAME|PATH|URL", default=None,
                           help="aligned drafter model (default: models.drafter in config.toml, "
                                "else the demo SmolLM2-135M-Instruct); a vLLM server as URL[#MODEL], "
                                "whose chat template writes the prompt")
    else:
        group.add_argument("--drafter", metavar="NAME|PATH", default=None,
                           help="aligned drafter model (default: models.drafter in config.toml, "
                                "else the demo SmolLM2-135M-Instruct)")
    if remote:
        group.add_argument("--base", metavar="NAME|PATH|URL", default=None,
                           help="base model that checks and continues (default: models.base in "
                                "config.toml, else the demo Gemma-3-270M); a vLLM server as "
                                "URL[#MODEL], e.g. http://gpu-box:8000/v1")
        group.add_argument(base_key_flag, dest="base_api_key", metavar="KEY", default=None,
                           help=f"API key of the model servers (--drafter or --base URL; default: "
                                f"${API_KEY_ENV}; never saved)")
        group.add_argument("--remote-timeout", metavar="SECONDS", type=float, default=DEFAULT_TIMEOUT_S,
                           help="how long to wait for the server's next answer (default: %(default)g)")
    else:
        group.add_argument("--base", metavar="NAME|PATH", default=None,
                           help="base model that checks and continues (default: models.base in "
                                "config.toml, else the demo Gemma-3-270M)")
    group.add_argument("--n-gpu-layers", type=int, default=None, metavar="N",
                       help="layers to offload to the GPU (-1: all, 0: CPU only; "
                            f"default: {RuntimeSettings.n_gpu_layers})")
    group.add_argument("--threads", type=int, default=None, metavar="N",
                       help="CPU threads (default: llama.cpp's choice for this machine)")
    group.add_argument("--ctx", type=int, default=None, metavar="N",
                       help=f"context size in tokens (default: {RuntimeSettings.n_ctx})")


def add_decoding_options(parser: argparse.ArgumentParser,
                         defaults: DecodingSettings | None = None) -> None:
    """One flag per decoding setting; `defaults` are the values this command uses when
    a flag is not given (shown in --help)."""
    defaults = defaults or DecodingSettings()
    parser.set_defaults(decoding_defaults=defaults, config_applies=True)
    group = parser.add_argument_group("decoding", _CONFIG_NOTE)
    for spec in SETTINGS:
        default = getattr(defaults, spec.name)
        shown = (f" (default: {spec.format(default)})" if default is not None or spec.none_word
                 else " (default: none)")
        extra = f"; {spec.range_text()}" if spec.range_text() and not spec.choices else ""
        kwargs: dict = dict(dest=spec.name, default=argparse.SUPPRESS,
                            help=f"{spec.help}{extra}{shown}".replace("%", "%%"))
        if spec.kind is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["type"] = _typed(spec) if spec.none_word else spec.kind
            if spec.choices:
                kwargs["choices"] = spec.choices
            else:
                kwargs["metavar"] = {int: "N", float: "X", str: "TEXT"}[spec.kind]
                if spec.none_word:
                    kwargs["metavar"] += f"|{spec.none_word}"
        group.add_argument(spec.flag, **kwargs)


def _typed(spec: SettingSpec):
    """argparse type for a setting that also takes a word for None (`auto`)."""
    def parse(text: str):
        try:
            return spec.parse(text)
        except WsdError as exc:
            raise argparse.ArgumentTypeError(exc.one_line()) from None
    parse.__name__ = spec.key
    return parse


def parse_modes(text: str) -> list[str]:
    """`--modes base,draft,wsd`: the modes named, in order, each once."""
    modes = [m.strip() for m in text.split(",") if m.strip()]
    unknown = [m for m in modes if m not in MODE_NAMES]
    if unknown or not modes:
        raise UsageError(f"unknown mode {unknown[0]!r}" if unknown else "no modes given",
                         "--modes takes a comma-separated list of " + ", ".join(MODE_NAMES))
    return list(dict.fromkeys(modes))


def given_settings(args: argparse.Namespace) -> dict:
    """The decoding flags the user gave, by setting name (a flag not given is absent)."""
    return {spec.name: getattr(args, spec.name) for spec in SETTINGS if hasattr(args, spec.name)}


def settings_from_args(args: argparse.Namespace) -> DecodingSettings:
    """The command's defaults with the flags the user gave on top (validated). With the
    base model on a server, online mode scores in larger chunks unless --chunk-tokens
    is given or config.toml sets it (REMOTE_CHUNK_TOKENS)."""
    defaults: DecodingSettings = getattr(args, "decoding_defaults", None) or DecodingSettings()
    given = given_settings(args)
    built_in_chunk = defaults.chunk_tokens == DecodingSettings().chunk_tokens
    if "chunk_tokens" not in given and built_in_chunk and _remote_base(args):
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
    """The runtime flags; one not given (None) keeps the built-in default."""
    given = {"n_ctx": args.ctx, "threads": args.threads, "n_gpu_layers": args.n_gpu_layers}
    return RuntimeSettings(**{name: value for name, value in given.items() if value is not None})


def apply_config(args: argparse.Namespace, config: "UserConfig | None" = None) -> None:
    """Fill what the user did not give on the command line from config.toml: the model
    pair, the runtime values, and the decoding defaults under the flags. A bad config
    file is a one-line ConfigError naming the key and the file."""
    from .. import config_file

    config = config or config_file.load()
    args.user_config = config
    for option, dotted in (("drafter", "models.drafter"), ("base", "models.base"), ("ctx", "runtime.ctx"),
                           ("threads", "runtime.threads"), ("n_gpu_layers", "runtime.n-gpu-layers")):
        if hasattr(args, option) and getattr(args, option) is None and config.is_set(dotted):
            setattr(args, option, config.get(dotted))
    if hasattr(args, "decoding_defaults"):
        args.decoding_defaults = merged_defaults(args.decoding_defaults, config.section("decoding"))


def merged_defaults(command: DecodingSettings, from_config: dict) -> DecodingSettings:
    """Built-in defaults, then config.toml, then what the command fixes for itself."""
    built_in = DecodingSettings()
    fixed = {spec.name: getattr(command, spec.name) for spec in SETTINGS
             if getattr(command, spec.name) != getattr(built_in, spec.name)}
    return built_in.with_changes(**from_config).with_changes(**fixed)


def remote_from_args(args: argparse.Namespace) -> RemoteOptions:
    """API key (flag, else WSD_API_KEY) and timeout for the models on servers."""
    return RemoteOptions.from_env(getattr(args, "base_api_key", None), getattr(args, "remote_timeout", None))
