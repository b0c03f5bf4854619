"""What users of other command-line tools expect from `wsd`: help text and defaults for
every flag, exit codes (1: a run that failed, 2: a usage error), the prompt from
standard input, colour only for terminals that want it (NO_COLOR), shell completion
scripts generated from the parser, and `wsd generate` answers logged for `wsd log`."""

from __future__ import annotations

import argparse
import json
import os
import pty
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from wsd_local.cli import build_parser, main
from wsd_local.cli.term import use_color

WSD = Path(sys.executable).with_name("wsd")
needs_console_script = pytest.mark.skipif(not WSD.exists(), reason="the wsd console script is not installed")


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("WSD_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("WSD_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("WSD_CONFIG", str(tmp_path / "config.toml"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return tmp_path


def env_for(isolated: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    env.update(WSD_DATA_DIR=str(isolated / "data"), WSD_CONFIG=str(isolated / "config.toml"),
               WSD_MODELS_DIR=str(isolated / "models"),
               HF_HOME=str(isolated / "hf"), HF_HUB_OFFLINE="1", OMP_WAIT_POLICY="PASSIVE",
               PATH=f"{WSD.parent}{os.pathsep}{os.environ.get('PATH', '')}", **extra)
    return env


# -- help ------------------------------------------------------------------------------------

def _all_actions(parser: argparse.ArgumentParser, path: tuple[str, ...] = ("wsd",)):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for name, child in action.choices.items():
                yield path + (name,), None, helps.get(name)
                yield from _all_actions(child, path + (name,))
        elif not isinstance(action, argparse._HelpAction):
            yield path, action, action.help


def test_every_command_and_flag_has_help_and_says_its_default() -> None:
    missing = []
    for path, action, text in _all_actions(build_parser()):
        where = " ".join(path) + (" " + ("/".join(action.option_strings) or action.dest) if action else "")
        if not text or text == argparse.SUPPRESS:
            missing.append(f"{where}: no help")
        elif action is not None and action.option_strings and action.nargs != 0 and not action.required \
                and "default" not in text.lower():
            missing.append(f"{where}: help does not say the default")
    assert not missing, "\n".join(missing)


def test_help_renders_for_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    commands = {path for path, action, _ in _all_actions(build_parser()) if action is None}
    assert {("wsd", "generate"), ("wsd", "log"), ("wsd", "config", "set"), ("wsd", "doctor"),
            ("wsd", "completion"), ("wsd", "models", "pull")} <= commands
    for path in commands:
        with pytest.raises(SystemExit) as done:
            main([*path[1:], "--help"])
        assert done.value.code == 0
        assert capsys.readouterr().out.startswith("usage: wsd")


# -- exit codes ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def unloadable_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A GGUF whose header and tensors check out but whose architecture llama.cpp does
    not know: the file is fine to hand over, loading it fails while the command runs."""
    pytest.importorskip("tokenizers")
    from devtools import tiny

    path = tiny.make_tiny_gguf(tmp_path_factory.mktemp("arch"), "Q8_0")
    data = path.read_bytes()
    at = data.index(b"llama", data.index(b"general.architecture"))
    bad = path.with_name("unknown-arch.gguf")
    bad.write_bytes(data[:at] + b"llamz" + data[at + 5:])
    return bad


def test_exit_codes(isolated: Path, capsys: pytest.CaptureFixture[str], unloadable_gguf: Path) -> None:
    (isolated / "data").mkdir()
    usage = [
        ["generate", "hi", "--threshold", "2"],                 # a setting out of range
        ["generate", "hi", "--drafter", "no-such-model"],       # an unknown model name
        ["generate", "hi", "--drafter", str(isolated / "missing.gguf")],
        ["generate", "   "],                                     # an empty prompt
        ["models", "info", str(isolated)],                       # not a GGUF file
        ["config", "set", "nope", "1"],                          # an unknown config key
        ["log", "-n", "-1"],
        ["chat"],                                                # not a terminal (pytest captures it)
    ]
    for argv in usage:
        assert main(argv) == 2, argv
        assert capsys.readouterr().err.startswith("wsd: error: ")
    (isolated / "config.toml").write_text("[decoding]\nwindow = 0\n")
    assert main(["generate", "hi"]) == 2                         # a bad config file
    assert "decoding.window" in capsys.readouterr().err
    (isolated / "config.toml").unlink()
    runtime = [
        ["models", "pull", "llama3.2-3b"],                       # offline, nothing cached: cannot download
        ["generate", "--mode", "draft", "--no-log", "--drafter", str(unloadable_gguf), "hi"],  # llama.cpp fails
    ]
    for argv in runtime:
        assert main(argv) == 1, argv
        err = capsys.readouterr().err  # status lines may come first; one error line ends it
        assert err.splitlines()[-1].startswith("wsd: error: ") and "Traceback" not in err
    (isolated / "data" / "chats.sqlite3").write_bytes(b"not a database" * 100)
    assert main(["log"]) == 1                                    # an unreadable chat database
    assert "cannot open the chat database" in capsys.readouterr().err
    with pytest.raises(SystemExit) as done:                      # argparse: a missing value
        main(["generate", "--threshold"])
    assert done.value.code == 2
    assert main([]) == 2                                         # no command: the help, exit 2


@needs_console_script
def test_exit_codes_of_the_process(isolated: Path) -> None:
    usage = subprocess.run([str(WSD), "generate", "--window", "0", "hi"], capture_output=True, text=True,
                           env=env_for(isolated), timeout=120)
    assert usage.returncode == 2 and usage.stderr.count("\n") == 1
    failed = subprocess.run([str(WSD), "models", "pull", "someone/Some-GGUF:Q4_K_M"], capture_output=True,
                            text=True, env=env_for(isolated), timeout=120)
    assert failed.returncode == 1 and "HF_HUB_OFFLINE is set" in failed.stderr
    assert "Traceback" not in usage.stderr + failed.stderr


# -- colour ----------------------------------------------------------------------------------

class _Terminal:
    """A stream that says it is a terminal (only `isatty` is asked)."""

    def isatty(self) -> bool:
        return True


class _Pipe:
    def isatty(self) -> bool:
        return False


def test_color_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("NO_COLOR", "FORCE_COLOR", "TERM"):
        monkeypatch.delenv(name, raising=False)
    assert use_color(_Terminal()) and not use_color(_Pipe())
    assert not use_color(_Terminal(), disabled=True)  # --no-color
    monkeypatch.setenv("TERM", "dumb")
    assert not use_color(_Terminal())
    monkeypatch.delenv("TERM")
    monkeypatch.setenv("NO_COLOR", "1")
    assert not use_color(_Terminal())
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert not use_color(_Terminal())  # NO_COLOR wins
    monkeypatch.delenv("NO_COLOR")
    assert use_color(_Pipe())  # FORCE_COLOR: colour into a pipe (less -R)
    monkeypatch.setenv("NO_COLOR", "")  # empty means unset
    assert use_color(_Pipe())


def _run_in_terminal(argv: list[str], env: dict[str, str]) -> str:
    """Run with stdout and stderr on a pseudo-terminal; what the terminal showed."""
    leader, follower = pty.openpty()
    try:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=follower, stderr=follower, env=env)
        os.close(follower)
        chunks = []
        while True:
            try:
                data = os.read(leader, 4096)
            except OSError:  # the terminal closed with the process
                break
            if not data:
                break
            chunks.append(data)
        assert process.wait(timeout=300) == 0
    finally:
        os.close(leader)
    return b"".join(chunks).decode("utf-8", errors="replace")


@needs_console_script
@pytest.mark.models
def test_no_color_is_respected_on_a_terminal(isolated: Path, demo_paths) -> None:
    argv = [str(WSD), "generate", "--no-log", "--mode", "draft", "--max-tokens", "6", "Name a colour."]
    coloured = _run_in_terminal(argv, env_for(isolated, TERM="xterm-256color"))
    assert "\x1b[38;5;" in coloured  # the drafter's blue
    plain = _run_in_terminal(argv, env_for(isolated, TERM="xterm-256color", NO_COLOR="1"))
    assert "\x1b[38;5;" not in plain and "\x1b[2m" not in plain and "total" in plain


# -- standard input, logging -----------------------------------------------------------------

@needs_console_script
@pytest.mark.models
def test_prompt_from_a_pipe_plain_output_and_logged(isolated: Path, demo_paths) -> None:
    env = env_for(isolated, TERM="xterm-256color")
    result = subprocess.run([str(WSD), "generate", "--max-tokens", "6", "--draft-max-tokens", "8"],
                            input="What colour is the sky?\n", capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "\x1b[" not in result.stdout  # a pipe gets no colour
    answer = result.stdout.splitlines()[0].replace("⟫", "")
    logged = subprocess.run([str(WSD), "log", "--json"], capture_output=True, text=True, env=env, timeout=60)
    entries = json.loads(logged.stdout)
    assert len(entries) == 1
    entry = entries[0]
    assert entry["source"] == "generate" and entry["status"] == "complete"
    assert entry["question"] == "What colour is the sky?"  # from standard input
    assert entry["answer"] == answer.rstrip() or entry["answer"].startswith(answer.strip())
    assert entry["trace"]["settings"]["max_tokens"] == 6


@pytest.mark.models
def test_dash_reads_stdin_and_messages_from_stdin(isolated: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str], demo_paths) -> None:
    import io

    monkeypatch.setattr(sys, "stdin", io.StringIO("Name a fruit.\n"))
    flags = ["--json", "--no-log", "--mode", "draft", "--max-tokens", "4", "--draft-max-tokens", "4"]
    assert main(["generate", "-", *flags]) == 0
    trace = json.loads(capsys.readouterr().out)
    assert trace["messages"][-1] == {"role": "user", "content": "Name a fruit."}
    conversation = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"},
                    {"role": "user", "content": "Name a fruit."}]
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps(conversation)))
    assert main(["generate", "--messages", "-", *flags]) == 0
    assert json.loads(capsys.readouterr().out)["messages"][-3:] == conversation


def test_empty_or_missing_stdin_is_a_usage_error(isolated: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    import io

    for argv in (["generate", "-"], ["generate"]):
        monkeypatch.setattr(sys, "stdin", io.StringIO("  \n"))
        assert main(argv) == 2
        assert "standard input was empty" in capsys.readouterr().err
    monkeypatch.setattr(sys, "stdin", _Terminal())
    assert main(["generate"]) == 2
    assert "no prompt given" in capsys.readouterr().err


@pytest.mark.models
def test_generate_is_logged_unless_told_not_to(isolated: Path, capsys: pytest.CaptureFixture[str],
                                               demo_paths) -> None:
    from wsd_local.store import Store

    flags = ["--max-tokens", "6", "--draft-max-tokens", "8"]
    assert main(["generate", *flags, "Name a colour."]) == 0
    printed = capsys.readouterr().out.splitlines()[0].replace("⟫", "").strip()
    drafter_only = ["--mode", "draft", *flags]  # loads one model: quicker, and logged the same way
    assert main(["generate", "--no-log", *drafter_only, "Name a shape."]) == 0
    (isolated / "config.toml").write_text("[generate]\nlog = false\n")
    assert main(["generate", *drafter_only, "Name a number."]) == 0
    (isolated / "config.toml").unlink()
    # Failing while it runs: the prompt does not fit the context (llama.cpp keeps at least 256).
    assert main(["generate", "--ctx", "64", *drafter_only, "word " * 1000]) == 2
    capsys.readouterr()
    assert main(["log", "--json", "-n", "0"]) == 0
    entries = json.loads(capsys.readouterr().out)
    assert [e["question"].split()[0] for e in entries] == ["Name", "word"]
    done, failed = entries
    assert done["status"] == "complete" and done["answer"].strip() == printed
    assert failed["status"] == "error" and "context" in failed["error"]
    with Store() as store:  # the chat app opens it like any chat
        chat = store.get_chat(done["chat_id"])
        assert chat is not None and chat.source == "generate"
        assert [m.role for m in store.messages(chat.id)] == ["user", "assistant"]
    assert main(["log", "-n", "1"]) == 0
    out = capsys.readouterr().out
    assert "> word word" in out and f"wsd chat --open {failed['chat_id']}" in out and "Name a colour" not in out


def test_log_lists_the_newest_answers_oldest_first(isolated: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Entries written straight into the store (no model needed for ordering and filters)."""
    from wsd_local.store import Store

    with Store() as store:
        for i, source in enumerate(["generate", "chat", "generate", "serve", "generate"]):
            chat = store.create_chat(f"q{i}", source=source)
            store.add_message(chat.id, "user", f"question {i}")
            store.add_message(chat.id, "assistant", f"answer {i}")
        store.add_message(1, "user", "question 5")  # the oldest chat gets the newest answer
        store.add_message(1, "assistant", "answer 5")
    assert main(["log", "--json", "-n", "3"]) == 0
    assert [e["answer"] for e in json.loads(capsys.readouterr().out)] == ["answer 3", "answer 4", "answer 5"]
    assert main(["log", "--json", "-n", "0", "--source", "generate"]) == 0
    assert [e["answer"] for e in json.loads(capsys.readouterr().out)] == ["answer 0", "answer 2", "answer 4",
                                                                         "answer 5"]
    assert main(["log", "--short", "-n", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[1].endswith("question 5 → answer 5") and "\x1b[" not in lines[1]


# -- completion ------------------------------------------------------------------------------

def _script(shell: str, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["completion", shell]) == 0
    return capsys.readouterr().out


def test_bash_completion_completes_commands_flags_and_choices(isolated: Path, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """The script bash sources; on Tab it runs `wsd` (argcomplete), as a shell would."""
    script = tmp_path / "wsd.bash"
    script.write_text(_script("bash", capsys))
    cases = {
        "wsd models ": "list info pull add remove convert check",
        "wsd generate --thres": "--threshold",
        "wsd generate --mode ": "wsd paper base draft nudging",
        "wsd generate --threshold 0.5 --wi": "--window",  # a flag's value is skipped
        "wsd --verbose models l": "list",
        "wsd completion ": "bash zsh fish",
        "wsd log --source g": "generate",
        "wsd generate --drafter smoll": "smollm2-135m",  # model names from `wsd models list --names`
        "wsd config set ": "",
        "wsd ": "",
    }
    driver = [f"source {script}",
              'comp() { COMP_LINE="$1"; COMP_POINT=${#COMP_LINE}; COMP_TYPE=9; COMPREPLY=();'
              ' _python_argcomplete wsd; echo "${COMPREPLY[*]}"; }']
    driver += [f"comp {shlex.quote(line)}" for line in cases]
    result = subprocess.run(["bash", "--norc", "-c", "\n".join(driver)], capture_output=True, text=True,
                            env=env_for(isolated), timeout=120)
    assert result.returncode == 0, result.stderr
    got = [line.strip() for line in result.stdout.splitlines()]  # a lone completion ends in a space
    assert len(got) == len(cases)
    for (line, expected), completions in zip(list(cases.items())[:-1], got):
        assert completions == expected, (line, completions)
    commands = got[-1].split()
    assert {"generate", "log", "bench", "models", "config", "doctor", "completion", "chat"} <= set(commands)


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed")
def test_zsh_completion(isolated: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Run the completion function with zsh's `_describe` replaced by a printer."""
    script = tmp_path / "_wsd"
    script.write_text(_script("zsh", capsys))
    assert subprocess.run(["zsh", "-n", str(script)]).returncode == 0
    driver = f"""
autoload -Uz is-at-least
compdef() {{ }}
source {script}
_describe() {{ print -rl -- ${{(P)2}} }}
comp() {{ words=("$@"); CURRENT=${{#words}}; BUFFER="$*"; CURSOR=${{#BUFFER}}; _python_argcomplete; print -- '--' }}
comp wsd ''
comp wsd models ''
comp wsd generate --mode ''
comp wsd generate --drafter sm
comp wsd generate --messages ''
"""
    result = subprocess.run(["zsh", "-f", "-c", driver], capture_output=True, text=True, env=env_for(isolated),
                            cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    blocks = [block.strip().splitlines() for block in result.stdout.split("--\n")]
    assert "generate:answer one prompt with weak-to-strong decoding" in blocks[0]
    assert "pull:get a catalog model, OWNER/REPO:QUANT or hf:REPO/FILE.gguf" in blocks[1]
    assert [line.split(":")[0] for line in blocks[2]] == ["wsd", "paper", "base", "draft", "nudging"]
    assert "smollm2-135m:" in blocks[3]
    assert "_wsd:" in blocks[4]  # a file argument completes file names


@pytest.mark.skipif(shutil.which("fish") is None, reason="fish is not installed")
def test_fish_completion(isolated: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    script = tmp_path / "wsd.fish"
    script.write_text(_script("fish", capsys))
    assert subprocess.run(["fish", "--no-execute", str(script)]).returncode == 0

    def complete(line: str) -> list[str]:
        result = subprocess.run(["fish", "--no-config", "-c", f"source {script}; complete -C {line!r}"],
                                capture_output=True, text=True, env=env_for(isolated), timeout=120)
        assert result.returncode == 0, result.stderr
        return [row.split("\t")[0] for row in result.stdout.splitlines()]

    assert {"list", "info", "pull", "add", "remove", "convert", "check"} == set(complete("wsd models "))
    assert complete("wsd generate --mode ") == ["base", "draft", "nudging", "paper", "wsd"]
    assert complete("wsd generate --threshold 0.5 --win") == ["--window"]
    assert complete("wsd completion ") == ["bash", "fish", "zsh"]
    assert "smollm2-135m" in complete("wsd generate --drafter smoll")
