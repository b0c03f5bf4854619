"""`wsd serve` as a user starts it: flags, the missing extra, a busy port, and a server
started with its own defaults (no key, no store, a model name)."""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest
from openai import OpenAI
from server_process import ServerProcess

from wsd_local.cli import main
from wsd_local.settings import DecodingSettings
from wsd_local.cli.serve import register


@pytest.fixture(autouse=True)
def no_user_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WSD_CONFIG", str(tmp_path / "config.toml"))


def test_without_the_server_extra_it_says_how_to_install(tmp_path: Path) -> None:
    # `sys.modules[name] = None` makes `import name` fail, as on a machine without it.
    code = ("import sys; sys.modules['fastapi'] = None; from wsd_local.cli import main; "
            "sys.exit(main(['serve']))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "pip install 'wsd-local[server]'" in result.stderr and "fastapi" in result.stderr


@pytest.mark.parametrize("flags, message", [
    (["--max-queue", "0"], "--max-queue must be >= 1"),
    (["--port", "70000"], "--port must be in [0, 65535]"),
    (["--threshold", "2"], "threshold must be in (0, 1]"),
    (["--model-name", " "], "--model-name must not be empty"),
    (["--max-body-mb", "0"], "--max-body-mb must be > 0"),
    (["--max-tokens-limit", "0"], "--max-tokens-limit must be >= 1"),
    (["--max-tokens-limit", "100"],  # the default draft length is above it
     f"--draft-max-tokens {DecodingSettings().draft_max_tokens} is above --max-tokens-limit 100"),
    (["--request-timeout", "-1"], "--request-timeout must be >= 0"),
    (["--allow-origin", "evil.example"], "--allow-origin takes an origin"),
    (["--allow-host", "http://x/"], "--allow-host takes a host name"),
    (["--api-key", "k", "--api-key-file", "k.txt"], "give --api-key or --api-key-file, not both"),
    (["--api-key-file", "/no/such/key-file"], "cannot read --api-key-file /no/such/key-file"),
])
def test_bad_flags_fail_in_one_line_before_loading(capsys, flags: list[str], message: str) -> None:
    assert main(["serve", *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_the_key_comes_from_the_flag_the_file_or_the_environment(tmp_path: Path, monkeypatch) -> None:
    from wsd_local.cli.serve import API_KEY_ENV, api_key_from_args

    def key(*flags: str) -> str | None:
        parser = argparse.ArgumentParser()
        sub = parser.add_subparsers()
        register(sub)
        return api_key_from_args(parser.parse_args(["serve", *flags]))

    monkeypatch.setenv(API_KEY_ENV, "from-env")
    (tmp_path / "key").write_text("  from-file  \nsecond line\n")
    assert key() == "from-env"
    assert key("--api-key-file", str(tmp_path / "key")) == "from-file"
    assert key("--api-key", "from-flag") == "from-flag"  # the flag still works
    monkeypatch.delenv(API_KEY_ENV)
    assert key() is None
    (tmp_path / "empty").write_text("\n")
    assert main(["serve", "--api-key-file", str(tmp_path / "empty")]) == 2


def test_a_busy_port_is_one_line(capsys) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 1  # a valid command that failed as it ran
    err = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1:{port}" in err and err.count("\n") == 1


@pytest.mark.models
def test_server_defaults_no_key_no_store_and_model_name(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data", args=[
        "--mode", "base", "--max-tokens", "6", "--no-store", "--model-name", "team-pair", "--ctx", "1024",
        "--system", "Answer briefly."])
    server.start()
    try:
        client = OpenAI(base_url=server.url + "/v1", api_key="anything", max_retries=0, timeout=180)
        assert [m.id for m in client.models.list().data] == ["team-pair"]
        question = [{"role": "user", "content": "Name a colour."}]
        default = client.chat.completions.create(model="team-pair", messages=question)
        extras = default.model_extra["wsd"]
        assert extras["mode"] == "base" and extras["settings"]["max_tokens"] == 6
        assert {s["model"] for s in extras["spans"]} <= {"base"} and extras["chat_id"] is None
        # The server's default prompt applied, and stays the server's own.
        assert extras["server_system_prompt"] is True and extras["settings"]["system"] is None
        # A request overrides the defaults; its own system message wins over the server's.
        asked = client.chat.completions.create(
            model="team-pair", messages=[{"role": "system", "content": "Be kind."}, *question],
            max_tokens=3, extra_body={"wsd": {"mode": "draft", "trace": True}})
        extras = asked.model_extra["wsd"]
        assert extras["mode"] == "draft" and extras["settings"]["max_tokens"] == 3
        assert extras["trace"]["messages"][0] == {"role": "system", "content": "Be kind."}
        assert httpx.get(server.url + "/v1/models").status_code == 200  # no key needed

        # Stopping the server ends an open stream properly: the answer stops, the last
        # chunk and [DONE] still arrive.
        long = {"messages": [{"role": "user", "content": "Tell me a long story about a dragon."}],
                "stream": True, "max_tokens": 1000, "wsd": {"mode": "wsd", "draft_max_tokens": 1000}}
        with httpx.stream("POST", server.url + "/v1/chat/completions", json=long, timeout=120) as response:
            lines = response.iter_lines()
            next(line for line in lines if '"content": "' in line and '"content": ""' not in line)
            stopper = threading.Thread(target=server.stop)
            stopper.start()
            rest = [line for line in lines if line.startswith("data: ")]
        stopper.join(timeout=60)
        assert rest[-1] == "data: [DONE]"
        last = json.loads(rest[-2][6:])
        assert last["choices"][0]["finish_reason"] == "stop" and last["wsd"]["stop_reason"] == "cancelled"
    finally:
        server.stop()
    assert server.process.returncode == 0
    assert "wsd serve: stopped" in server.stdout_path.read_text()
    assert not (server.data_dir / "chats.sqlite3").exists()
