"""The command line with a base model on vLLM: `wsd models` shows the server's model,
`wsd generate --base URL` answers, the key comes from the flag or the environment."""

from __future__ import annotations

import pytest

from wsd_local.cli import main


def test_models_info_add_list_and_check(smollm2, capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    url = smollm2.url.split("#")[0]
    if smollm2.api_key:
        monkeypatch.setenv("WSD_API_KEY", smollm2.api_key)
    assert main(["models", "info", url]) == 0
    out = capsys.readouterr().out
    assert out.startswith("smollm2\n") and f"{url} (vLLM)" in out and "context length  2048" in out

    assert main(["models", "add", url, "--name", "smol-server", "--role", "base"]) == 0
    assert f"smol-server: base, vLLM at {url}, model smollm2" in capsys.readouterr().out
    assert main(["models", "list"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("smol-server"))
    assert "remote" in row and f"{url}#smollm2" in row

    assert main(["models", "check", "--base", "smol-server"]) == 0
    assert "shared tokenizer: yes" in capsys.readouterr().out
    assert main(["models", "remove", "smol-server"]) == 0


def test_generate_with_a_remote_base(smollm2, capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WSD_API_KEY", raising=False)
    argv = ["generate", "--base", smollm2.url, "--mode", "paper", "--max-tokens", "24", "--no-color", "--json", "Hi"]
    if smollm2.api_key:
        argv[1:1] = ["--api-key", smollm2.api_key]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert '"engine": "vLLM"' in out and '"backend": "CPU + vLLM"' in out
    if smollm2.api_key:
        assert smollm2.api_key not in out


def test_generate_with_both_models_on_servers_and_a_registered_drafter(
        smollm2, tiny, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """`wsd models add URL --role drafter` checks the server can draft; `wsd generate
    --drafter NAME --base URL` then answers with nothing running here."""
    import json

    if smollm2.api_key:
        monkeypatch.setenv("WSD_API_KEY", smollm2.api_key)
    url = smollm2.url.split("#")[0]
    assert main(["models", "add", url, "--name", "smol-drafter", "--role", "drafter"]) == 0
    assert f"smol-drafter: drafter, vLLM at {url}, model smollm2" in capsys.readouterr().out
    try:
        assert main(["generate", "--drafter", "smol-drafter", "--base", tiny.url, "--mode", "paper",
                     "--max-tokens", "24", "--draft-max-tokens", "12", "--json", "Hi"]) == 0
        trace = json.loads(capsys.readouterr().out)
        assert trace["backend"] == "vLLM"
        assert trace["models"]["drafter"]["engine"] == "vLLM" and trace["models"]["drafter"]["path"] == url
        assert trace["models"]["base"]["engine"] == "vLLM" and trace["counts"]["shared_vocabulary"] == 0
        assert trace["answer"] and trace["answer"] == trace["kept_draft"] + trace["continuation"]
    finally:
        assert main(["models", "remove", "smol-drafter"]) == 0
