"""`wsd config show|path|set|unset`: the user's config.toml (see `config_file`)."""

from __future__ import annotations

import argparse
import json
import sys

from ..terminal_text import terminal_safe


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("config", help="show or change defaults in config.toml",
                            description="Defaults for the model pair, every decoding setting and how models "
                                        "are loaded, in config.toml in the user config folder (WSD_CONFIG "
                                        "overrides the location). A flag on the command line overrides the "
                                        "file; the file overrides the built-in defaults.")
    parser.set_defaults(func=lambda args: parser.print_help() or 2)
    cmds = parser.add_subparsers(dest="config_command", metavar="ACTION")

    p = cmds.add_parser("show", help="every key with its value and where the value comes from")
    p.add_argument("--json", action="store_true", help="print JSON (default: TOML with comments)")
    p.set_defaults(func=cmd_show)

    p = cmds.add_parser("path", help="print where the config file is (or would be)")
    p.set_defaults(func=cmd_path)

    p = cmds.add_parser("set", help="check a value and write it (other keys and comments are kept)",
                        description="Write KEY = VALUE into config.toml (created if missing). KEY is "
                                    "SECTION.NAME or just NAME (`decoding.threshold` or `threshold`); "
                                    "the value is checked first.")
    p.add_argument("key", metavar="KEY", help="e.g. threshold, models.base, runtime.n-gpu-layers")
    p.add_argument("value", metavar="VALUE", help="the new value (\"\" removes an optional key)")
    p.set_defaults(func=cmd_set)

    p = cmds.add_parser("unset", help="remove a key: it takes its built-in default again")
    p.add_argument("key", metavar="KEY", help="e.g. threshold or decoding.threshold")
    p.set_defaults(func=cmd_unset)


def cmd_path(args: argparse.Namespace) -> int:
    from ..paths import config_path

    print(config_path())
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from .. import config_file

    config = config_file.load()
    keys = config_file.keys()
    if args.json:
        print(json.dumps({"path": str(config.path), "exists": config.exists,
                          "values": {k.dotted: {"value": config.get(k.dotted),
                                                "from": "config" if config.is_set(k.dotted) else "default"}
                                     for k in keys}}, indent=2))
        return 0
    state = "" if config.exists else " (not created yet: `wsd config set KEY VALUE` writes it)"
    print(terminal_safe(f"# {config.path}{state}", one_line=True))
    print("# values marked `default` are built in; the others come from the file")
    section = None
    for key in keys:
        if key.section != section:
            section = key.section
            print(f"\n[{section}]")
        value = config.get(key.dotted)
        origin = "config.toml" if config.is_set(key.dotted) else "default"
        if value is None:
            print(f"# {key.name} = (not set)  # {key.help}")
        else:
            print(terminal_safe(f"{key.name} = {config_file.format_value(value)}  # {origin}", one_line=True))
    return 0


def cmd_set(args: argparse.Namespace) -> int:
    from .. import config_file

    key, value, path = config_file.set_value(args.key, args.value)
    shown = "(removed: built-in default)" if value is None else config_file.format_value(value)
    print(terminal_safe(f"{key.dotted} = {shown}", one_line=True), file=sys.stdout)
    print(f"wsd: wrote {path}", file=sys.stderr)
    return 0


def cmd_unset(args: argparse.Namespace) -> int:
    from .. import config_file

    key = config_file.find_key(args.key)
    path = config_file.unset_value(args.key)
    default = key.default
    print(f"{key.dotted} = {config_file.format_value(default) if default is not None else '(not set)'}  # default")
    print(f"wsd: wrote {path}" if path.exists() else f"wsd: {path} does not exist; nothing to remove",
          file=sys.stderr)
    return 0
