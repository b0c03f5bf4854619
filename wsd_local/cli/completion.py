"""`wsd completion bash|zsh|fish`: a shell completion script, generated from the
argparse tree itself, so every command, flag and choice that exists is completed
(including commands that other packages register) and nothing else.

Model names (`--drafter`, `--base`, `wsd models info NAME`, ...) come from `wsd models
list --names` when the user presses Tab; file arguments complete file names.
"""

from __future__ import annotations

import argparse
import functools
import shlex
from dataclasses import dataclass, field
from pathlib import Path

SHELLS = ("bash", "zsh", "fish")

INSTALL = {
    "bash": "wsd completion bash > ~/.local/share/bash-completion/completions/wsd",
    "zsh": "wsd completion zsh > ~/.zfunc/_wsd  (with fpath+=~/.zfunc before compinit in ~/.zshrc)",
    "fish": "wsd completion fish > ~/.config/fish/completions/wsd.fish",
}


def register(sub: argparse._SubParsersAction, root: argparse.ArgumentParser) -> None:
    """`root`: the whole `wsd` parser, walked once every command is on it."""
    parser = sub.add_parser("completion", help="print a shell completion script (bash, zsh, fish)",
                            description="Print a completion script for your shell. Install it once:\n  " +
                                        "\n  ".join(INSTALL.values()) +
                                        "\nor load it for this session: source <(wsd completion bash)",
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("shell", choices=SHELLS, help="the shell to write the script for")
    parser.set_defaults(func=functools.partial(run, root=root))


def run(args: argparse.Namespace, root: argparse.ArgumentParser) -> int:
    tree = walk(root)
    print({"bash": bash_script, "zsh": zsh_script, "fish": fish_script}[args.shell](tree), end="")
    return 0


# -- the tree -------------------------------------------------------------------------------

@dataclass
class Option:
    flags: list[str]
    help: str
    takes_value: bool
    choices: list[str] | None = None
    kind: str | None = None  # "file", "model" or None (free text)


@dataclass
class Command:
    path: str                      # "" for `wsd`, "models list" for `wsd models list`
    help: str
    options: list[Option] = field(default_factory=list)
    subcommands: dict[str, "Command"] = field(default_factory=dict)
    positional: Option | None = None  # what the first positional argument takes

    def walk(self):
        yield self
        for child in self.subcommands.values():
            yield from child.walk()


def _kind(action: argparse.Action) -> str | None:
    metavar = str(action.metavar or "")
    if "NAME" in metavar and ("PATH" in metavar or action.dest in ("drafter", "base", "model", "name")):
        return "model"
    if action.type is Path or any(word in metavar for word in ("FILE", "PATH", "FOLDER", "DIR")):
        return "file"
    if action.dest in ("drafter", "base"):
        return "model"
    return None


def walk(parser: argparse.ArgumentParser, path: str = "", help: str = "") -> Command:
    command = Command(path, help)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
            for name, child in action.choices.items():
                command.subcommands[name] = walk(child, f"{path} {name}".strip(), helps.get(name, ""))
        elif action.option_strings:
            if action.help == argparse.SUPPRESS:
                continue
            command.options.append(Option(list(action.option_strings), _first_sentence(_help_text(parser, action)),
                                          takes_value=action.nargs != 0,
                                          choices=[str(c) for c in action.choices] if action.choices else None,
                                          kind=_kind(action)))
        elif command.positional is None and action.help != argparse.SUPPRESS:
            command.positional = Option([action.dest], _first_sentence(_help_text(parser, action)), True,
                                        [str(c) for c in action.choices] if action.choices else None,
                                        _kind(action))
    return command


def _first_sentence(text: str, limit: int = 70) -> str:
    """Up to the first '. ' or '; ' outside parentheses, at most `limit` characters."""
    text = " ".join(text.split())
    depth = 0
    for i, char in enumerate(text):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth == 0 and char in ".;" and text[i + 1: i + 2] == " ":
            text = text[:i]
            break
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _help_text(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    """The help as --help prints it (%(default)s filled in)."""
    if isinstance(action, argparse._HelpAction):
        return "show the help"
    return parser._get_formatter()._expand_help(action) if action.help else ""


def _value_options(command: Command) -> list[str]:
    return [flag for option in command.options if option.takes_value for flag in option.flags]


# -- bash (3.2 and later: no associative arrays) -------------------------------------------------

def _case(entries: list[tuple[str, str]], indent: str = "        ") -> str:
    return "\n".join(f"{indent}{shlex.quote(key)}) printf '%s\\n' {shlex.quote(value)} ;;"
                     for key, value in entries if value)


def bash_script(tree: Command) -> str:
    commands = list(tree.walk())
    subs = [(c.path, " ".join(c.subcommands)) for c in commands]
    opts = [(c.path, " ".join(f for o in c.options for f in o.flags)) for c in commands]
    value_opts = [(c.path, " ".join(_value_options(c))) for c in commands]
    values = [(f"{c.path}|{flag}", _what(o)) for c in commands for o in c.options if o.takes_value
              for flag in o.flags]
    positionals = [(c.path, _what(c.positional)) for c in commands if c.positional is not None]
    return f"""# bash completion for wsd (generated by `wsd completion bash`)
_wsd_subcommands() {{
    case "$1" in
{_case(subs)}
    esac
}}
_wsd_options() {{
    case "$1" in
{_case(opts)}
    esac
}}
_wsd_value_options() {{
    case "$1" in
{_case(value_opts)}
    esac
}}
_wsd_value() {{
    case "$1|$2" in
{_case(values)}
    esac
}}
_wsd_positional() {{
    case "$1" in
{_case(positionals)}
    esac
}}
_wsd_complete_what() {{
    local cur="$1"
    case "$2" in
        model) COMPREPLY=( $(compgen -W "$(wsd models list --names 2>/dev/null)" -- "$cur") )
               compopt -o filenames 2>/dev/null
               COMPREPLY+=( $(compgen -f -X '!*.gguf' -- "$cur") $(compgen -d -- "$cur") ) ;;
        file) compopt -o filenames 2>/dev/null; COMPREPLY=( $(compgen -f -- "$cur") ) ;;
        choices:*) COMPREPLY=( $(compgen -W "${{2#choices:}}" -- "$cur") ) ;;
    esac
}}
_wsd() {{
    local cur="${{COMP_WORDS[COMP_CWORD]}}" prev="${{COMP_WORDS[COMP_CWORD-1]}}"
    local cmdpath="" word i skip=0
    for ((i = 1; i < COMP_CWORD; i++)); do
        word="${{COMP_WORDS[i]}}"
        if ((skip)); then skip=0; continue; fi
        case "$word" in
            -*=*) ;;
            -*) case " $(_wsd_value_options "$cmdpath") " in *" $word "*) skip=1 ;; esac ;;
            *) case " $(_wsd_subcommands "$cmdpath") " in
                   *" $word "*) cmdpath="${{cmdpath:+$cmdpath }}$word" ;;
               esac ;;
        esac
    done
    COMPREPLY=()
    if [[ "$prev" == -* && " $(_wsd_value_options "$cmdpath") " == *" $prev "* ]]; then
        _wsd_complete_what "$cur" "$(_wsd_value "$cmdpath" "$prev")"
        return 0
    fi
    if [[ "$cur" == -* ]]; then
        COMPREPLY=( $(compgen -W "$(_wsd_options "$cmdpath")" -- "$cur") )
        return 0
    fi
    local subs
    subs="$(_wsd_subcommands "$cmdpath")"
    if [[ -n "$subs" ]]; then
        COMPREPLY=( $(compgen -W "$subs" -- "$cur") )
        return 0
    fi
    _wsd_complete_what "$cur" "$(_wsd_positional "$cmdpath")"
}}
complete -F _wsd wsd
"""


def _what(option: Option | None) -> str:
    if option is None:
        return ""
    if option.choices:
        return "choices:" + " ".join(option.choices)
    return option.kind or ""


# -- zsh -------------------------------------------------------------------------------------

def _zsh_item(name: str, description: str) -> str:
    """One `_describe` entry, quoted for zsh: `name:description`."""
    return shlex.quote(f"{name.replace(':', chr(92) + ':')}:{description}")


def zsh_script(tree: Command) -> str:
    commands = list(tree.walk())

    def case(entries: list[tuple[str, str]]) -> str:
        return "\n".join(f"        {shlex.quote(k)}) reply=({v}) ;;" for k, v in entries if v)

    subs = [(c.path, " ".join(_zsh_item(n, child.help) for n, child in c.subcommands.items())) for c in commands]
    opts = [(c.path, " ".join(_zsh_item(f, o.help) for o in c.options for f in o.flags)) for c in commands]
    value_opts = [(c.path, " ".join(shlex.quote(f) for f in _value_options(c))) for c in commands]
    values = [(f"{c.path}|{flag}", shlex.quote(_what(o))) for c in commands for o in c.options if o.takes_value
              for flag in o.flags]
    positionals = [(c.path, shlex.quote(_what(c.positional))) for c in commands if c.positional is not None]
    return f"""#compdef wsd
# zsh completion for wsd (generated by `wsd completion zsh`)
_wsd_subcommands() {{
    case "$1" in
{case(subs)}
        *) reply=() ;;
    esac
}}
_wsd_options() {{
    case "$1" in
{case(opts)}
        *) reply=() ;;
    esac
}}
_wsd_value_options() {{
    case "$1" in
{case(value_opts)}
        *) reply=() ;;
    esac
}}
_wsd_value() {{
    case "$1|$2" in
{case(values)}
        *) reply=('') ;;
    esac
}}
_wsd_positional() {{
    case "$1" in
{case(positionals)}
        *) reply=('') ;;
    esac
}}
_wsd_complete_what() {{
    case "$1" in
        model) compadd -- ${{(f)"$(wsd models list --names 2>/dev/null)"}}; _files -g '*.gguf' ;;
        file) _files ;;
        choices:*) compadd -- ${{=1#choices:}} ;;
    esac
}}
_wsd() {{
    local cmdpath="" word i skip=0
    local -a reply names
    for ((i = 2; i < CURRENT; i++)); do
        word="${{words[i]}}"
        if ((skip)); then skip=0; continue; fi
        case "$word" in
            -*=*) ;;
            -*) _wsd_value_options "$cmdpath"; (( ${{reply[(Ie)$word]}} )) && skip=1 ;;
            *) _wsd_subcommands "$cmdpath"; names=(${{reply%%:*}})
               (( ${{names[(Ie)$word]}} )) && cmdpath="${{cmdpath:+$cmdpath }}$word" ;;
        esac
    done
    local prev="${{words[CURRENT-1]}}" cur="${{words[CURRENT]}}"
    if [[ "$prev" == -* ]]; then
        _wsd_value_options "$cmdpath"
        if (( ${{reply[(Ie)$prev]}} )); then
            _wsd_value "$cmdpath" "$prev"; _wsd_complete_what "${{reply[1]}}"
            return
        fi
    fi
    if [[ "$cur" == -* ]]; then
        _wsd_options "$cmdpath"; _describe -t options 'option' reply
        return
    fi
    _wsd_subcommands "$cmdpath"
    if (( ${{#reply}} )); then
        _describe -t commands 'command' reply
        return
    fi
    _wsd_positional "$cmdpath"; _wsd_complete_what "${{reply[1]}}"
}}
if [[ "${{zsh_eval_context[-1]}}" == loadautofunc ]]; then
    _wsd "$@"
else
    compdef _wsd wsd
fi
"""


# -- fish ------------------------------------------------------------------------------------

def _fish_quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def fish_script(tree: Command) -> str:
    commands = list(tree.walk())
    lines = ["# fish completion for wsd (generated by `wsd completion fish`)",
             "function __wsd_subcommands",
             "    switch $argv[1]"]
    for c in commands:
        if c.subcommands:
            lines += [f"        case {_fish_quote(c.path)}", f"            echo {' '.join(c.subcommands)}"]
    lines += ["    end", "end",
              "function __wsd_value_options",
              "    switch $argv[1]"]
    for c in commands:
        flags = _value_options(c)
        if flags:
            lines += [f"        case {_fish_quote(c.path)}", f"            echo {' '.join(flags)}"]
    lines += ["    end", "end",
              "function __wsd_path --description 'the wsd subcommand typed so far'",
              "    set -l tokens (commandline -opc)",
              "    set -l cmdpath ''",
              "    set -l skip 0",
              "    for word in $tokens[2..-1]",
              "        if test $skip -eq 1",
              "            set skip 0",
              "            continue",
              "        end",
              "        switch $word",
              "            case '-*=*'",
              "            case '-*'",
              "                if contains -- $word (string split ' ' -- (__wsd_value_options \"$cmdpath\"))",
              "                    set skip 1",
              "                end",
              "            case '*'",
              "                if contains -- $word (string split ' ' -- (__wsd_subcommands \"$cmdpath\"))",
              "                    set cmdpath (string trim -- \"$cmdpath $word\")",
              "                end",
              "        end",
              "    end",
              "    echo $cmdpath",
              "end",
              "function __wsd_at",
              "    test (__wsd_path) = \"$argv[1]\"",
              "end",
              "complete -c wsd -f"]
    for c in commands:
        at = f"-n {_fish_quote('__wsd_at ' + _fish_quote(c.path))}"
        for name, child in c.subcommands.items():
            lines.append(f"complete -c wsd {at} -a {name} -d {_fish_quote(child.help)}")
        for option in c.options:
            parts = []
            for flag in option.flags:
                parts.append(f"-l {flag[2:]}" if flag.startswith("--") else f"-s {flag[1:]}")
            lines.append(f"complete -c wsd {at} {' '.join(parts)}{_fish_value(option)} -d {_fish_quote(option.help)}")
        if c.positional is not None and not c.subcommands:
            value = _fish_value(c.positional, positional=True)
            if value:
                lines.append(f"complete -c wsd {at}{value}")
    return "\n".join(lines) + "\n"


def _fish_value(option: Option, positional: bool = False) -> str:
    """-x: a value and no file names; -r -F: a value, file names offered."""
    if not option.takes_value:
        return ""
    if option.choices:
        return f"{'' if positional else ' -x'} -a {_fish_quote(' '.join(option.choices))}"
    if option.kind == "file":
        return " -F" if positional else " -r -F"
    if option.kind == "model":
        return f"{'' if positional else ' -r'} -F -a '(wsd models list --names 2>/dev/null)'"
    return "" if positional else " -x"
