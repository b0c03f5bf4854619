"""`wsd models ...` end to end (in-process through main(), and one real subprocess)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from wsd_local.cli import main
from devtools import tiny
from wsd_local.models import registry

pytest.importorskip("tokenizers")


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli")
    tiny.make_tiny_gguf(root, "Q8_0", seed=0)
    tiny.make_tiny_gguf(root, "F32", seed=1, chat_template=False)
    return root


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("WSD_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("WSD_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # these tests never touch the network
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_info_on_demo_models(capsys: pytest.CaptureFixture[str], demo_paths: dict[str, Path]) -> None:
    code, out, _ = run(capsys, "models", "info", "smollm2-135m")
    assert code == 0
    assert "architecture    llama" in out and "quantization    Q4_1" in out
    assert "chat template   yes" in out and "<|im_end|>" in out
    code, out, _ = run(capsys, "models", "info", str(demo_paths["base"]), "--json")
    data = json.loads(out)
    assert code == 0
    assert (data["architecture"], data["quantization"], data["has_chat_template"]) == ("gemma3", "Q4_K_M", False)
    assert data["vocab_size"] == 262144 and data["context_length"] == 32768


def test_list_shows_installed_and_available(capsys, isolated: Path, tiny_root: Path) -> None:
    registry.register("tiny", tiny_root / "tiny-0-Q8_0.gguf", "drafter", "local")
    (isolated / "models").mkdir(exist_ok=True)
    stray = isolated / "models" / "stray.gguf"
    stray.write_bytes((tiny_root / "tiny-1-notemplate-F32.gguf").read_bytes())
    # Unfinished files never show up as models: huggingface_hub's resumable download and
    # a conversion's hidden partial file.
    cache = isolated / "models" / ".cache" / "huggingface" / "download"
    cache.mkdir(parents=True)
    (cache / "Big.Q4_K_M.gguf.incomplete").write_bytes(b"GGUF")
    (cache / "Other.gguf").write_bytes(b"GGUF")
    (isolated / "models" / ".Pilot-3B-Q4_K_M.gguf.partial-123").write_bytes(b"GGUF")
    code, out, _ = run(capsys, "models", "list", "--json")
    assert code == 0
    rows = {r["name"]: r for r in json.loads(out)}
    assert rows["smollm2-135m"]["status"] == "installed" and rows["smollm2-135m"]["quantization"] == "Q4_1"
    assert rows["gemma3-270m"]["role"] == "base"
    assert rows["pilot-3b"]["status"] == "available" and rows["pilot-3b"]["where"] == "convert:songff/Pilot-3B"
    assert rows["llama3.1-70b"]["status"] == "available"
    assert rows["tiny"]["status"] == "installed" and rows["tiny"]["quantization"] == "Q8_0"
    assert rows["tiny"]["context_length"] == 256 and rows["tiny"]["architecture"] == "llama"
    assert rows["stray"]["status"] == "unregistered"
    assert not {"Big.Q4_K_M", "Other", ".Pilot-3B-Q4_K_M"} & set(rows)
    code, out, _ = run(capsys, "models", "list")
    assert code == 0 and "NAME" in out.splitlines()[0] and "pilot-3b" in out


def test_add_check_remove(capsys, isolated: Path, tiny_root: Path) -> None:
    drafter, base = tiny_root / "tiny-0-Q8_0.gguf", tiny_root / "tiny-1-notemplate-F32.gguf"
    code, out, err = run(capsys, "models", "add", str(drafter), "--name", "td", "--role", "drafter")
    assert code == 0 and "td: drafter, llama Q8_0" in out and err == ""
    code, out, err = run(capsys, "models", "add", str(drafter), "--name", "tb", "--role", "base")
    assert code == 0 and "warning: tiny-0-Q8_0.gguf has a chat template" in err
    code, out, _ = run(capsys, "models", "add", str(base), "--name", "tb", "--role", "base")
    code, out, _ = run(capsys, "models", "check", "--drafter", "td", "--base", "tb")
    assert code == 0 and "shared tokenizer: yes (identical 320-token vocabularies)" in out
    code, out, _ = run(capsys, "models", "check", "--drafter", "smollm2-135m", "--base", "tb", "--json")
    data = json.loads(out)
    assert data["shared_tokenizer"] is False and data["base_name"] == "tb"
    assert "different vocabulary sizes (49152 vs 320)" in data["reason"]
    code, out, _ = run(capsys, "models", "remove", "td")
    assert code == 0 and registry.get("td") is None and drafter.exists()


def test_remove_delete_only_inside_models_folder(capsys, isolated: Path, tiny_root: Path) -> None:
    (isolated / "models").mkdir(exist_ok=True)
    inside = isolated / "models" / "copy.gguf"
    inside.write_bytes((tiny_root / "tiny-0-Q8_0.gguf").read_bytes())
    run(capsys, "models", "add", str(inside), "--name", "inside", "--role", "drafter")
    run(capsys, "models", "add", str(tiny_root / "tiny-0-Q8_0.gguf"), "--name", "outside", "--role", "drafter")
    code, out, _ = run(capsys, "models", "remove", "inside", "--delete")
    assert code == 0 and not inside.exists()
    code, out, err = run(capsys, "models", "remove", "outside", "--delete")
    assert code == 0 and "kept" in err and (tiny_root / "tiny-0-Q8_0.gguf").exists()


def test_bad_input_is_a_one_line_error(capsys, isolated: Path) -> None:
    text = isolated / "notes.txt"
    text.write_text("not a model")
    cases = [
        (["models", "add", str(text), "--name", "x", "--role", "base"], "not a GGUF file"),
        (["models", "add", str(isolated), "--name", "x", "--role", "base"], "is a directory"),
        (["models", "add", str(isolated / "nope.gguf"), "--name", "x", "--role", "base"], "model file not found"),
        (["models", "info", "gemma3-27"], "did you mean"),
        (["models", "info", "llama3-70b"], "not downloaded yet"),
        (["models", "pull", "pilot3b"], "did you mean pilot-3b"),
        (["models", "pull", "llama3.2-3b"], "HF_HUB_OFFLINE is set"),
        (["models", "convert", "songff/Pilot-3B"], "HF_HUB_OFFLINE is set"),
        (["models", "convert", str(isolated)], "has no config.json"),
        (["models", "convert", str(isolated), "--quant", "q9"], "unknown quantization type 'Q9'"),
    ]
    for argv, expected in cases:
        code, out, err = run(capsys, *argv)
        # Usage errors exit 2; offline without a local copy is a download that failed: 1.
        assert code == (1 if "HF_HUB_OFFLINE" in expected else 2), argv
        lines = err.strip().splitlines()
        # Status lines may come first ("wsd: offline: looking for ..."); one error line ends it.
        assert lines[-1].startswith("wsd: error: ") and expected in lines[-1], (argv, err)
        assert sum(line.startswith("wsd: error:") for line in lines) == 1 and "Traceback" not in err
    assert registry.load() == {}


def test_convert_through_the_cli(capsys, isolated: Path, tiny_root: Path) -> None:
    folder = tiny_root / "ckpt-0"
    code, out, err = run(capsys, "models", "convert", str(folder), "--quant", "q8_0", "--name", "tiny-cli")
    assert code == 0, err
    assert out.startswith("tiny-cli: llama, ") and "Q8_0" in out
    assert (isolated / "models" / "ckpt-0-Q8_0.gguf").is_file()
    assert "quantizing to Q8_0" in err
    entry = registry.get("tiny-cli")
    assert entry is not None and entry.role == "drafter" and entry.source.startswith("convert:")
    code, out, _ = run(capsys, "models", "info", "tiny-cli")
    assert code == 0 and "pre-tokenizer llama-bpe" in out


def test_subprocess_error_has_no_traceback(isolated: Path) -> None:
    exe = Path(sys.executable).with_name("wsd")
    if not exe.exists():
        pytest.skip("the wsd console script is not installed (pip install -e .)")
    result = subprocess.run([str(exe), "models", "info", str(isolated)], capture_output=True, text=True,
                            env={**os.environ}, timeout=60)
    assert result.returncode == 2
    assert result.stderr.startswith("wsd: error: ") and "is a directory" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    result = subprocess.run([str(exe), "models", "list", "--json"], capture_output=True, text=True,
                            env={**os.environ}, timeout=60)
    assert result.returncode == 0
    assert any(row["name"] == "pilot-3b" for row in json.loads(result.stdout))
