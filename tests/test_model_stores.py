"""Models other tools keep on disk, used in place: Ollama's store (manifests and blobs
written as Ollama writes them), LM Studio's models folder and llama.cpp's download
cache (its flat files with manifests, and the Hugging Face layout it uses later). The
stores are built in temporary folders with the real demo GGUFs as their files (hard
links where the filesystem allows, else one copy per module); never a running Ollama.
Files that only need a header (layouts, ambiguity, corruption) are small GGUFs written
with the gguf package."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

import gguf
import numpy as np
import pytest

from wsd_local import doctor
from wsd_local.cli import main
from wsd_local.errors import ModelError
from wsd_local.models import stores
from wsd_local.models.checksum import sha256_file as sha256
from wsd_local.gguf_format.reader import read_gguf
from wsd_local.models.pair import check_pair
from wsd_local.models.resolve import resolve_model
from wsd_local.models.stores import llamacpp, lmstudio, ollama

LMSTUDIO_BASE = "google/gemma-3-270m-GGUF/gemma-3-270m-Q4_K_M.gguf"


def link(source: Path, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:  # another filesystem, or no hard links there
        shutil.copyfile(source, target)
    return target


def put_in_ollama(store: Path, name: str, model_file: Path, *, size: int | None = None,
                  template: bool = True) -> Path:
    """A model as `ollama pull` leaves it: the GGUF, a template and a config as blobs
    `sha256-<hex>`, and a Docker v2 manifest at manifests/<registry>/<ns>/<model>/<tag>
    listing them. `size`: what the manifest records (default: the file's size)."""
    parsed = ollama.parse_name(name)
    assert parsed is not None
    blobs = store / "blobs"
    blobs.mkdir(parents=True, exist_ok=True)

    def blob(data: bytes) -> dict:
        hexdigest = hashlib.sha256(data).hexdigest()
        (blobs / f"sha256-{hexdigest}").write_bytes(data)
        return {"digest": f"sha256:{hexdigest}", "size": len(data)}

    hexdigest = sha256(model_file)
    model_blob = blobs / f"sha256-{hexdigest}"
    if not model_blob.exists():
        link(model_file, model_blob)
    layers = [{"mediaType": "application/vnd.ollama.image.model", "digest": f"sha256:{hexdigest}",
               "size": model_file.stat().st_size if size is None else size}]
    if template:
        layers.append({"mediaType": "application/vnd.ollama.image.template",
                       **blob(b"{{ if .System }}<|im_start|>system\n{{ .System }}<|im_end|>{{ end }}")})
    layers.append({"mediaType": "application/vnd.ollama.image.params", **blob(b'{"stop":["<|im_end|>"]}')})
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                           **blob(b'{"model_format":"gguf","model_family":"llama"}')},
                "layers": layers}
    path = store / "manifests" / parsed.registry / parsed.namespace / parsed.model / parsed.tag
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(manifest))
    return model_blob


def small_gguf(path: Path, chat_template: bool = True, rows: int = 64) -> Path:
    """A small but complete GGUF (a header and one tensor), for what only reads headers."""
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_context_length(64)
    if chat_template:
        writer.add_chat_template("{% for m in messages %}{{ m['content'] }}{% endfor %}")
    writer.add_tensor("token_embd.weight", np.zeros((rows, 16), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.fixture(scope="module")
def shelf(tmp_path_factory: pytest.TempPathFactory, demo_paths: dict[str, Path]) -> dict[str, Path]:
    """The demo drafter in an Ollama store under two names (one blob, as `ollama pull
    smollm2:135m` then `ollama cp` leave it) and the demo base model in an LM Studio folder."""
    root = tmp_path_factory.mktemp("stores")
    blob = put_in_ollama(root / "ollama", "smollm2:135m", demo_paths["drafter"])
    put_in_ollama(root / "ollama", "smollm2", demo_paths["drafter"])
    lms_file = link(demo_paths["base"], root / "lmstudio" / LMSTUDIO_BASE)
    return {"root": root, "ollama": root / "ollama", "lmstudio": root / "lmstudio",
            "llamacpp": root / "llamacpp", "blob": blob, "lms_file": lms_file}


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shelf: dict[str, Path]) -> dict[str, Path]:
    monkeypatch.setenv("WSD_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("WSD_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("WSD_CONFIG", str(tmp_path / "config.toml"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("OLLAMA_MODELS", str(shelf["ollama"]))
    monkeypatch.setenv("WSD_LMSTUDIO_MODELS", str(shelf["lmstudio"]))
    monkeypatch.setenv("LLAMA_CACHE", str(tmp_path / "llama.cpp"))
    return {**shelf, "tmp": tmp_path}


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("wsd: error: "), err
    return lines[0]


# -- names ---------------------------------------------------------------------------------

def test_ollama_names_read_as_ollama_reads_them() -> None:
    key = "registry.ollama.ai/library/llama3.1:8b-text-q4_k_m"
    assert ollama.normalize("llama3.1:8b-text-q4_K_M") == key
    assert ollama.normalize("library/llama3.1:8b-text-q4_K_M") == key
    assert ollama.normalize("registry.ollama.ai/library/llama3.1:8b-text-q4_K_M") == key
    assert ollama.normalize("llama3.1") == "registry.ollama.ai/library/llama3.1:latest"
    assert ollama.normalize("User/Model:Tag") == "registry.ollama.ai/user/model:tag"
    assert ollama.normalize("hf.co/bartowski/Llama-3.2-1B-GGUF:Q4_K_M") == \
        "hf.co/bartowski/llama-3.2-1b-gguf:q4_k_m"
    assert ollama.parse_name("user/model:tag").short == "user/model:tag"
    assert ollama.parse_name("llama3.1").short == "llama3.1:latest"
    for bad in ("", "a/b/c/d", "model:", "../model", "a b", "model:ta/g", "/model"):
        assert ollama.normalize(bad) is None, bad


# -- listing -------------------------------------------------------------------------------

def test_list_shows_store_models_with_source_and_header_columns(env: dict[str, Path], capsys,
                                                                demo_paths: dict[str, Path]) -> None:
    code, out, _ = run(capsys, "models", "list", "--json")
    assert code == 0
    rows = {r["name"]: r for r in json.loads(out)}
    drafter, base = read_gguf(demo_paths["drafter"]), read_gguf(demo_paths["base"])
    for name in ("ollama:smollm2:135m", "ollama:smollm2:latest"):  # one blob, both names
        row = rows[name]
        assert (row["source"], row["status"], row["where"]) == ("ollama", "installed", str(env["blob"]))
        assert (row["architecture"], row["quantization"], row["size_bytes"]) == \
            (drafter.architecture, drafter.quantization, drafter.file_size)
        assert row["role"] == "drafter" and "chat template in the GGUF" in row["notes"]
        assert "Go template" in row["notes"] and str(env["ollama"]) in row["notes"]
    row = rows[f"lmstudio:{LMSTUDIO_BASE}"]
    assert (row["source"], row["status"], row["role"]) == ("lmstudio", "installed", "base")
    assert (row["architecture"], row["quantization"]) == (base.architecture, base.quantization)
    assert "no chat template" in row["notes"]
    code, out, _ = run(capsys, "models", "list")
    header = out.splitlines()[0].split()
    assert header[:4] == ["NAME", "ROLE", "STATUS", "SOURCE"]
    line = next(l for l in out.splitlines() if l.startswith("ollama:smollm2:135m "))
    assert line.split()[1:4] == ["drafter", "installed", "ollama"]
    code, out, _ = run(capsys, "models", "list", "--names")
    assert {"ollama:smollm2:135m", f"lmstudio:{LMSTUDIO_BASE}"} <= set(out.split())
    assert not list((env["tmp"] / "models").rglob("*.gguf"))  # nothing copied


def test_doctor_lists_the_stores_found(env: dict[str, Path]) -> None:
    lines = {line.label: line for line in doctor.store_lines()}
    assert str(env["ollama"]) in lines["Ollama models"].value
    assert "(2 models, as ollama:NAME)" in lines["Ollama models"].value
    assert "(1 model, as lmstudio:NAME)" in lines["LM Studio models"].value
    assert "none found" in lines["llama.cpp models"].value and "LLAMA_CACHE" in lines["llama.cpp models"].value
    assert not any(line.problem for line in lines.values())


# -- names wherever a model is asked for ---------------------------------------------------

def test_store_names_resolve_prefixed_and_bare(env: dict[str, Path], capsys) -> None:
    blob, lms_file = env["blob"], env["lms_file"]
    for spec in ("ollama:smollm2:135m", "ollama:SmolLM2:135M", "ollama:library/smollm2:135m", "smollm2:135m"):
        resolved = resolve_model(spec, "drafter")
        assert (resolved.name, resolved.path) == ("ollama:smollm2:135m", blob), spec
    assert resolve_model("ollama:smollm2", "drafter").name == "ollama:smollm2:latest"
    for spec in (f"lmstudio:{LMSTUDIO_BASE}", f"lmstudio:{LMSTUDIO_BASE[:-5]}", "lmstudio:gemma-3-270m-Q4_K_M",
                 "gemma-3-270m-Q4_K_M", "gemma-3-270m-Q4_K_M.gguf", LMSTUDIO_BASE):
        resolved = resolve_model(spec, "base")
        assert (resolved.name, resolved.path) == (f"lmstudio:{LMSTUDIO_BASE}", lms_file), spec

    # `wsd models check` and `info` take them; the pair check says what it says for the files.
    expected = check_pair(blob, lms_file)
    code, out, _ = run(capsys, "models", "check", "--drafter", "ollama:smollm2:135m",
                       "--base", "lmstudio:gemma-3-270m-Q4_K_M", "--json")
    data = json.loads(out)
    assert code == 0 and data["drafter_name"] == "ollama:smollm2:135m"
    assert (data["shared_tokenizer"], data["reason"]) == (expected.shared_tokenizer, expected.reason)
    code, out, _ = run(capsys, "models", "info", "ollama:smollm2:135m")
    assert code == 0 and f"source          Ollama store {env['ollama']}" in out and "Go template" in out
    code, out, err = run(capsys, "models", "info", "--verify", "ollama:smollm2:135m", "--json")
    assert code == 0 and json.loads(out)["source"] == "ollama" and "sha256 matches" in err

    # config.toml's [models] takes them too.
    (env["tmp"] / "config.toml").write_text('[models]\ndrafter = "ollama:smollm2:135m"\n'
                                            f'base = "lmstudio:{LMSTUDIO_BASE}"\n')
    code, out, _ = run(capsys, "models", "check", "--json")
    data = json.loads(out)
    assert (data["drafter_name"], data["base_name"]) == ("ollama:smollm2:135m", f"lmstudio:{LMSTUDIO_BASE}")


def test_unknown_ambiguous_and_missing_stores_are_one_line_errors(env: dict[str, Path], capsys,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    code, _, err = run(capsys, "models", "info", "ollama:smollm2:1b")
    line = one_line_error(err)
    assert code == 2 and f"no Ollama model named 'smollm2:1b' in {env['ollama']}" in line
    assert "did you mean ollama:smollm2:135m" in line
    code, _, err = run(capsys, "models", "info", "ollama:not a name")
    assert code == 2 and "'ollama:not a name' is not a valid Ollama model name" in one_line_error(err)

    # One bare name, a file in two stores: the candidates are listed, nothing is guessed.
    cache = env["tmp"] / "llama.cpp"
    small_gguf(cache / "shared-model.gguf")
    small_gguf(env["tmp"] / "lms2" / "someone" / "repo" / "shared-model.gguf")
    monkeypatch.setenv("WSD_LMSTUDIO_MODELS", str(env["tmp"] / "lms2"))
    code, _, err = run(capsys, "models", "info", "shared-model")
    line = one_line_error(err)
    assert code == 2 and "lmstudio:someone/repo/shared-model.gguf" in line and "llamacpp:shared-model.gguf" in line
    assert resolve_model("llamacpp:shared-model", "base").path == cache / "shared-model.gguf"

    monkeypatch.setenv("OLLAMA_MODELS", str(env["tmp"] / "no-ollama"))
    code, _, err = run(capsys, "generate", "--drafter", "ollama:smollm2:135m", "--max-tokens", "1", "Hi")
    line = one_line_error(err)
    assert code == 2 and f"no Ollama models folder found (looked in {env['tmp'] / 'no-ollama'}" in line
    assert "OLLAMA_MODELS" in line


def test_broken_ollama_models_are_listed_and_refused_in_one_line(tmp_path: Path, capsys,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    store = tmp_path / "ollama"
    monkeypatch.setenv("OLLAMA_MODELS", str(store))
    monkeypatch.setenv("WSD_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("WSD_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    whole = small_gguf(tmp_path / "whole.gguf", rows=4096)
    data = whole.read_bytes()
    short = tmp_path / "short.gguf"
    short.write_bytes(data[: len(data) // 2])
    put_in_ollama(store, "cut:size", short, size=len(data))      # the manifest knows the full size
    put_in_ollama(store, "cut:same", short)                      # it does not: the header does
    gone = put_in_ollama(store, "gone", small_gguf(tmp_path / "gone.gguf", rows=8))
    gone.unlink()
    flipped = bytearray(data)
    flipped[-100] ^= 0xFF                                        # tensor data: the header reads fine
    corrupt = tmp_path / "corrupt.gguf"
    corrupt.write_bytes(bytes(flipped))
    blob = put_in_ollama(store, "corrupt", corrupt)
    blob.rename(blob.with_name(f"sha256-{sha256(whole)}"))       # named by the digest of the good bytes
    manifest = store / "manifests" / "registry.ollama.ai" / "library" / "corrupt" / "latest"
    manifest.write_text(manifest.read_text().replace(sha256(corrupt), sha256(whole)))
    bad = store / "manifests" / "registry.ollama.ai" / "library" / "bad" / "latest"
    bad.parent.mkdir(parents=True)
    bad.write_text("{ not json")

    expected = {"ollama:cut:size": f"has {len(data) // 2:,} bytes where the store recorded {len(data):,}",
                "ollama:cut:same": "is truncated", "ollama:gone": "is gone",
                "ollama:bad": "is not a readable Ollama manifest"}
    for spec, problem in expected.items():
        code, _, err = run(capsys, "models", "info", spec)
        line = one_line_error(err)
        assert code == 2 and f"(in the Ollama store {store})" in line and problem in line, (spec, line)
        assert "ollama pull" in line
    code, _, err = run(capsys, "models", "info", "--verify", "ollama:corrupt")
    status, error = err.strip().splitlines()  # "hashing ..." while it reads, then the error
    assert code == 2 and status.startswith("wsd: hashing ")
    assert "does not match its sha256 digest" in one_line_error(error)
    code, out, _ = run(capsys, "models", "list", "--json")
    rows = {r["name"]: r for r in json.loads(out)}
    assert code == 0
    assert [rows[n]["status"] for n in ("ollama:cut:size", "ollama:cut:same", "ollama:gone:latest",
                                        "ollama:bad:latest", "ollama:corrupt:latest")] == \
        ["broken", "broken", "missing", "broken", "installed"]


# -- llama.cpp's cache and where the stores are looked for -------------------------------

def test_llamacpp_cache_flat_files_and_hub_layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "llama.cpp"
    monkeypatch.setenv("LLAMA_CACHE", str(cache))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    flat = small_gguf(cache / "someone_Tiny-GGUF_Tiny-Q8_0.gguf")
    size = flat.stat().st_size
    for tag in ("Q8_0", "latest"):
        (cache / f"manifest=someone=Tiny-GGUF={tag}.json").write_text(json.dumps(
            {"ggufFile": {"rfilename": "Tiny-Q8_0.gguf", "size": size}}))
    (cache / "someone_Tiny-GGUF_Tiny-Q8_0.gguf.etag").write_text('"etag"')
    (cache / "manifest=someone=Other-GGUF=latest.json").write_text(json.dumps(
        {"ggufFile": {"rfilename": "Other-Q4_K_M.gguf"}}))
    (cache / "someone_Other-GGUF_Other-Q4_K_M.gguf.downloadInProgress").write_bytes(b"GGUF")  # not done
    loose = small_gguf(cache / "plain-file.gguf", chat_template=False)
    # The Hugging Face layout later releases write into LLAMA_CACHE.
    repo = cache / "models--owner--Hub-GGUF"
    blob = small_gguf(repo / "blobs" / ("ab" * 32))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("c" * 40)
    snapshot = repo / "snapshots" / ("c" * 40)
    snapshot.mkdir(parents=True)
    (snapshot / "Hub-Q4_K_M.gguf").symlink_to(os.path.relpath(blob, snapshot))

    names = {m.spec: m for m in stores.all_models()}
    assert set(names) == {"llamacpp:someone/Tiny-GGUF:Q8_0", "llamacpp:plain-file.gguf", "llamacpp:owner/Hub-GGUF:Q4_K_M"}
    for spec in ("llamacpp:someone/Tiny-GGUF:Q8_0", "llamacpp:someone/tiny-gguf:q8_0", "llamacpp:someone/Tiny-GGUF",
                 "llamacpp:someone_Tiny-GGUF_Tiny-Q8_0.gguf"):
        assert resolve_model(spec, "drafter").path == flat, spec
    assert resolve_model("llamacpp:plain-file", "base").path == loose
    for spec in ("llamacpp:owner/Hub-GGUF:Q4_K_M", "llamacpp:owner/Hub-GGUF"):
        assert resolve_model(spec, "base").path == snapshot / "Hub-Q4_K_M.gguf", spec
    with pytest.raises(ModelError, match="no llama.cpp model named 'someone/Other-GGUF'"):
        resolve_model("llamacpp:someone/Other-GGUF", "base")
    # A size the manifest records is checked.
    (cache / "manifest=someone=Tiny-GGUF=Q8_0.json").write_text(json.dumps(
        {"ggufFile": {"rfilename": "Tiny-Q8_0.gguf", "size": size + 1}}))
    with pytest.raises(ModelError, match="a truncated or corrupt file"):
        resolve_model("llamacpp:someone/Tiny-GGUF:Q8_0", "drafter")


def test_default_folders_follow_each_tool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("USERPROFILE", str(home))
    for variable in ("OLLAMA_MODELS", "WSD_LMSTUDIO_MODELS", "LLAMA_CACHE"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr(ollama, "SERVICE_FOLDER", tmp_path / "service")
    assert ollama.folders() == [home / ".ollama" / "models", tmp_path / "service"]
    monkeypatch.setenv("OLLAMA_MODELS", str(tmp_path / "elsewhere"))
    assert ollama.folders() == [tmp_path / "elsewhere"]

    assert lmstudio.folders() == [home / ".lmstudio" / "models", home / ".cache" / "lm-studio" / "models"]
    moved = tmp_path / "moved-home"
    (home).mkdir(parents=True)
    (home / ".lmstudio-home-pointer").write_text(f"{moved}\n")
    (moved).mkdir()
    (moved / "settings.json").write_text(json.dumps({"downloadsFolder": str(tmp_path / "big-disk")}))
    assert lmstudio.folders() == [tmp_path / "big-disk", moved / "models", home / ".cache" / "lm-studio" / "models"]
    monkeypatch.setenv("WSD_LMSTUDIO_MODELS", str(tmp_path / "chosen"))
    assert lmstudio.folders() == [tmp_path / "chosen"]

    monkeypatch.setattr(sys, "platform", "darwin")
    assert llamacpp.folders() == [home / "Library" / "Caches" / "llama.cpp"]
    if os.name != "nt":
        monkeypatch.setattr(sys, "platform", "linux")
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
        assert llamacpp.folders() == [tmp_path / "xdg" / "llama.cpp"]
        monkeypatch.delenv("XDG_CACHE_HOME")
        assert llamacpp.folders() == [home / ".cache" / "llama.cpp"]
    monkeypatch.setenv("LLAMA_CACHE", str(tmp_path / "lc"))
    assert llamacpp.folders() == [tmp_path / "lc"]


# -- end to end ------------------------------------------------------------------------------

def test_generate_with_a_drafter_from_ollama_and_a_base_from_lmstudio(env: dict[str, Path], capsys,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, err = run(capsys, "generate", "--drafter", "ollama:smollm2:135m",
                         "--base", f"lmstudio:{LMSTUDIO_BASE[:-5]}", "--max-tokens", "8", "--ctx", "512",
                         "--no-log", "--json",
                         "What is the capital of France?")
    assert code == 0, err
    trace = json.loads(out)
    models = trace["models"]
    assert (models["drafter"]["name"], models["drafter"]["path"]) == ("ollama:smollm2:135m", str(env["blob"]))
    assert (models["base"]["name"], models["base"]["path"]) == (f"lmstudio:{LMSTUDIO_BASE}", str(env["lms_file"]))
    assert trace["answer"].strip()
    assert not list((env["tmp"] / "models").rglob("*.gguf"))  # used in place, never copied

    # The same model with its blob cut short: one line naming the store, exit 2.
    store = env["tmp"] / "ollama-cut"
    data = env["blob"].read_bytes()[: 4 << 20]
    short = env["tmp"] / "short.gguf"
    short.write_bytes(data)
    put_in_ollama(store, "smollm2:135m", short, size=env["blob"].stat().st_size)
    monkeypatch.setenv("OLLAMA_MODELS", str(store))
    code, out, err = run(capsys, "generate", "--drafter", "ollama:smollm2:135m",
                         "--base", f"lmstudio:{LMSTUDIO_BASE}", "--max-tokens", "8", "--no-log", "Hi")
    line = one_line_error(err)
    assert code == 2 and out == "" and f"(in the Ollama store {store})" in line and "truncated" in line
