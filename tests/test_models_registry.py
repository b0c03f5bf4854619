"""The registry (a JSON file written atomically) and name resolution for --drafter/--base."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from wsd_local.errors import ModelError
from devtools import tiny
from wsd_local.models import catalog, registry
from wsd_local.models.resolve import resolve_model

pytest.importorskip("tokenizers")


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny.make_tiny_gguf(tmp_path_factory.mktemp("reg"), "Q8_0")


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("WSD_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("WSD_MODELS_DIR", str(tmp_path / "models"))
    return tmp_path


def test_register_load_unregister(isolated: Path, tiny_gguf: Path) -> None:
    entry = registry.register("My-Model", tiny_gguf, "drafter", "local")
    assert entry.name == "my-model"
    raw = json.loads((isolated / "data" / "models.json").read_text())
    assert raw["schema"] == 1 and raw["models"]["my-model"]["role"] == "drafter"
    assert registry.get("MY-MODEL") == entry
    assert registry.unregister("my-model") == entry
    assert registry.load() == {}
    assert [p.name for p in (isolated / "data").iterdir()] == ["models.json"]  # no temp files left
    with pytest.raises(ModelError, match="no registered model named 'my-model'"):
        registry.unregister("my-model")


def test_bad_names_roles_and_registry_file(isolated: Path, tiny_gguf: Path) -> None:
    with pytest.raises(ModelError, match="invalid model name"):
        registry.register("has space", tiny_gguf, "base", "local")
    with pytest.raises(ModelError, match="invalid role 'judge'"):
        registry.register("ok", tiny_gguf, "judge", "local")
    (isolated / "data").mkdir(exist_ok=True)
    (isolated / "data" / "models.json").write_text("{ not json")
    with pytest.raises(ModelError, match="registry .* is unreadable"):
        registry.load()


def test_resolve_registered_catalog_and_unknown_names(isolated: Path, tiny_gguf: Path) -> None:
    registry.register("tiny", tiny_gguf, "drafter", "local")
    resolved = resolve_model("tiny", "drafter")
    assert resolved.path == tiny_gguf.resolve() and resolved.name == "tiny"
    with pytest.raises(ModelError, match=r"llama3.1-8b is not downloaded yet \(run `wsd models pull llama3.1-8b`"):
        resolve_model("llama3.1-8b", "base")
    with pytest.raises(ModelError, match="pilot-3b is not downloaded yet .* converts songff/Pilot-3B"):
        resolve_model("pilot-3b", "drafter")
    with pytest.raises(ModelError, match="unknown model 'tinny' .*did you mean tiny"):
        resolve_model("tinny", "drafter")
    with pytest.raises(ModelError, match="did you mean smollm2-135m"):
        resolve_model("smollm2", "drafter")


def test_resolve_registered_file_gone(isolated: Path, tiny_gguf: Path) -> None:
    copy = isolated / "copy.gguf"
    copy.write_bytes(tiny_gguf.read_bytes())
    registry.register("gone", copy, "base", "local")
    copy.unlink()
    with pytest.raises(ModelError, match="registered model gone points to a missing file"):
        resolve_model("gone", "base")


def test_resolve_paths_are_checked(isolated: Path, tiny_gguf: Path) -> None:
    assert resolve_model(str(tiny_gguf), "base").path == tiny_gguf.resolve()
    with pytest.raises(ModelError, match="is a directory"):
        resolve_model(str(isolated), "base")
    text = isolated / "readme.txt"
    text.write_text("hello")
    with pytest.raises(ModelError, match="not a GGUF file"):
        resolve_model(str(text), "base")
    cut = isolated / "cut.gguf"
    cut.write_bytes(tiny_gguf.read_bytes()[:5000])
    with pytest.raises(ModelError, match="truncated"):
        resolve_model(str(cut), "base")
    with pytest.raises(ModelError, match="model file not found"):
        resolve_model(str(isolated / "missing.gguf"), "base")


def test_resolve_demo_defaults(demo_paths: dict[str, Path]) -> None:
    assert resolve_model(None, "drafter").path == demo_paths["drafter"]
    assert resolve_model("", "base").path == demo_paths["base"]


def test_catalog_is_consistent() -> None:
    names = catalog.names()
    assert len(names) == len(set(names))
    assert catalog.get("pilot-3b").repo == "songff/Pilot-3B"
    assert catalog.by_repo("SONGFF/pilot-3b").name == "pilot-3b"
    for entry in catalog.CATALOG:
        assert entry.role in ("drafter", "base")
        if entry.kind == "gguf":
            assert entry.repo and entry.filename and entry.filename.endswith(".gguf")
            assert entry.quant in entry.filename
        assert entry.name == registry.check_name(entry.name)
    tiers = {e.tier for e in catalog.CATALOG if e.role == "base"}
    assert {"demo", "laptop", "workstation"} <= tiers
