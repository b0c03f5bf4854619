"""`wsd completion bash|zsh|fish`: the shell's hook into argcomplete. On Tab the shell
runs `wsd` itself, which completes from its own argparse tree: every command, flag and
choice that exists (including commands other packages register) and nothing else.

Model arguments (`--drafter`, `--base`, `wsd models info NAME`, ...) complete the names
`wsd models list --names` prints and .gguf files; file arguments complete file names.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

SHELLS = ("bash", "zsh", "fish")

INSTALL = {
    "bash": "wsd completion bash > ~/.local/share/bash-completion/completions/wsd",
    "zsh": "wsd completion zsh > ~/.zfunc/_wsd  (with fpath+=~/.zfunc before compinit in ~/.zshrc)",
    "fish": "wsd completion fish > ~/.config/fish/completions/wsd.fish",
}


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("completion", help="print a shell completion script (bash, zsh, fish)",
                            description="Print a completion script for your shell. Install it once:\n  " +
                                        "\n  ".join(INSTALL.values()) +
                                        "\nor load it for this session: source <(wsd completion bash)",
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("shell", choices=SHELLS, help="the shell to write the script for")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import argcomplete

    print(argcomplete.shellcode(["wsd"], shell=args.shell), end="")
    return 0


def complete_if_asked(parser: argparse.ArgumentParser) -> None:
    """When the shell asks for completions (argcomplete's environment), answer and exit."""
    if "_ARGCOMPLETE" not in os.environ:
        return
    import argcomplete
    from argcomplete.completers import SuppressCompleter

    _attach_completers(parser)
    # Options only once a dash is typed; free text (a prompt, a value) completes nothing.
    argcomplete.autocomplete(parser, always_complete_options=False, default_completer=SuppressCompleter())


def _attach_completers(parser: argparse.ArgumentParser) -> None:
    from argcomplete.completers import FilesCompleter

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                _attach_completers(child)
        elif not action.choices:
            kind = _kind(action)
            if kind == "model":
                action.completer = _model_names  # type: ignore[attr-defined]
            elif kind == "file":
                action.completer = FilesCompleter()  # type: ignore[attr-defined]


def _kind(action: argparse.Action) -> str | None:
    metavar = str(action.metavar or "")
    if "NAME" in metavar and ("PATH" in metavar or action.dest in ("drafter", "base", "model", "name")):
        return "model"
    if action.type is Path or any(word in metavar for word in ("FILE", "PATH", "FOLDER", "DIR")):
        return "file"
    if action.dest in ("drafter", "base"):
        return "model"
    return None


def _model_names(prefix: str, **_: object) -> list[str]:
    from argcomplete.completers import FilesCompleter

    from ..errors import WsdError
    from ..models.resolve import known_names

    try:
        names = [name for name in known_names() if name.startswith(prefix)]
    except WsdError:  # a broken registry or config: files still complete
        names = []
    return names + list(FilesCompleter(("gguf",))(prefix))
