"""Models shared with other tools: GGUF files in a Hugging Face cache made by the test
(the layout huggingface_hub writes: blobs, refs, snapshots with links) are found by
`wsd models list`, used in place by `wsd models pull` (registered by path, never
copied) and by `--drafter OWNER/REPO:QUANT`; `OWNER/REPO:QUANT` picks a file by its
quantization tag as llama.cpp's `-hf` does."""

from __future__ import annotations

import hashlib
import inspect
import json
import os
from pathlib import Path

import pytest

from wsd_local.cli import main
from wsd_local.errors import DownloadError, ModelError
from devtools import tiny
from wsd_local.models import hf_cache, pull, registry
from wsd_local.models.resolve import resolve_model

pytest.importorskip("tokenizers")

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def put_in_cache(cache: Path, repo: str, filename: str, data: bytes, commit: str = COMMIT) -> Path:
    """Store a file as huggingface_hub does: the bytes in blobs/<sha256>, a ref to the
    commit, and a relative link at snapshots/<commit>/<filename>."""
    folder = cache / f"models--{repo.replace('/', '--')}"
    blob = folder / "blobs" / hashlib.sha256(data).hexdigest()
    blob.parent.mkdir(parents=True, exist_ok=True)
    blob.write_bytes(data)
    (folder / "refs").mkdir(exist_ok=True)
    (folder / "refs" / "main").write_text(commit)
    link = folder / "snapshots" / commit / filename
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(os.path.relpath(blob, link.parent))
    return link


@pytest.fixture(scope="module")
def tiny_ggufs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    root = tmp_path_factory.mktemp("hf-tiny")
    chat = tiny.make_tiny_gguf(root, "Q8_0", seed=0).read_bytes()
    plain = tiny.make_tiny_gguf(root, "F32", seed=1, chat_template=False).read_bytes()
    return {"chat": chat, "plain": plain}


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_ggufs: dict[str, bytes]) -> Path:
    """An HF cache under HF_HOME with one repository in two quantizations, plus a
    projector file that is never a model."""
    monkeypatch.setenv("WSD_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("WSD_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("WSD_CONFIG", str(tmp_path / "config.toml"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    hub = tmp_path / "hf" / "hub"
    put_in_cache(hub, "someone/Tiny-GGUF", "Tiny-Chat.Q8_0.gguf", tiny_ggufs["chat"])
    put_in_cache(hub, "someone/Tiny-GGUF", "Tiny-Chat.F32.gguf", tiny_ggufs["plain"])
    put_in_cache(hub, "someone/Tiny-GGUF", "mmproj-Tiny-F16.gguf", b"not a model")
    return hub


def test_pick_file_reads_quant_tags_like_llama_cpp() -> None:
    names = ["README.md", "Model-Q4_K_M.gguf", "Model-Q4_K_S.gguf", "Model-IQ4_XS.gguf",
             "Model-Q8_0.gguf", "mmproj-Model-Q8_0.gguf", "Model-BF16-00001-of-00002.gguf",
             "Model-BF16-00002-of-00002.gguf"]
    assert hf_cache.pick_file(names, "o/r", None) == "Model-Q4_K_M.gguf"  # the default tag
    assert hf_cache.pick_file(names, "o/r", "q8_0") == "Model-Q8_0.gguf"  # any case; not the projector
    assert hf_cache.pick_file(names, "o/r", "Q4_K_S") == "Model-Q4_K_S.gguf"
    assert hf_cache.pick_file(names, "o/r", "IQ4_XS") == "Model-IQ4_XS.gguf"
    with pytest.raises(ModelError, match="no Q4_K file in o/r") as err:
        hf_cache.pick_file(names, "o/r", "Q4_K")  # a prefix of Q4_K_M is not Q4_K
    assert "available: BF16, IQ4_XS, Q4_K_M, Q4_K_S, Q8_0" in str(err.value)
    with pytest.raises(ModelError, match="split into several GGUF files"):
        hf_cache.pick_file(names, "o/r", "BF16")
    assert hf_cache.pick_file(["only.Q6_K.gguf"], "o/r", None) == "only.Q6_K.gguf"
    with pytest.raises(ModelError, match="no Q4_K_M file"):
        hf_cache.pick_file(["only.Q6_K.gguf"], "o/r", None, complete_list=False)
    with pytest.raises(ModelError, match="several files of o/r match Q8_0"):
        hf_cache.pick_file(["a/M.Q8_0.gguf", "b/M.Q8_0.gguf"], "o/r", "Q8_0")
    with pytest.raises(ModelError, match="has no GGUF files"):
        hf_cache.pick_file(["model.safetensors"], "o/r", None)


def test_parse_repo_quant() -> None:
    assert hf_cache.parse_repo_quant("bartowski/Llama-3.2-3B-GGUF:Q4_K_M") == \
        hf_cache.RepoQuant("bartowski/Llama-3.2-3B-GGUF", "Q4_K_M")
    assert hf_cache.parse_repo_quant("hf.co/a/b:q8_0") == hf_cache.RepoQuant("a/b", "q8_0")
    assert hf_cache.parse_repo_quant("a/b") == hf_cache.RepoQuant("a/b", None)
    for text in ("a", "a/b/c.gguf", "./a/b", "/abs/path", "a/b:", "http://host:8080"):
        assert hf_cache.parse_repo_quant(text) is None, text


def test_list_shows_cached_ggufs(cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "list", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    row = rows["someone/Tiny-GGUF:Q8_0"]
    assert row["status"] == "hf-cache" and row["quantization"] == "Q8_0"
    assert row["where"] == str(cache / "models--someone--Tiny-GGUF" / "snapshots" / COMMIT / "Tiny-Chat.Q8_0.gguf")
    assert "someone/Tiny-GGUF:F32" in rows
    assert not any("mmproj" in name for name in rows)


def test_pull_repo_quant_uses_the_cached_file_in_place(cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there: no request may be made
    assert main(["models", "pull", "someone/Tiny-GGUF:q8_0"]) == 0
    out, err = capsys.readouterr()
    snapshot = cache / "models--someone--Tiny-GGUF" / "snapshots" / COMMIT
    entry = registry.get("tiny-chat.q8_0")
    assert entry is not None and entry.role == "drafter"  # it has a chat template
    assert entry.file == snapshot / "Tiny-Chat.Q8_0.gguf"  # by path, the link kept
    assert entry.source == "hf:someone/Tiny-GGUF/Tiny-Chat.Q8_0.gguf"
    assert "from the Hugging Face cache" in err and "nothing to download" in err
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").rglob("*.gguf"))  # not copied
    # Listed once, as registered; usable by name.
    assert main(["models", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["status"] for r in rows if r["name"] == "tiny-chat.q8_0"] == ["installed"]
    assert not any(r["name"] == "someone/Tiny-GGUF:Q8_0" for r in rows)
    assert resolve_model("tiny-chat.q8_0", "drafter").path == entry.file
    # Removing it with --delete never deletes another tool's file.
    assert main(["models", "remove", "tiny-chat.q8_0", "--delete"]) == 0
    assert (snapshot / "Tiny-Chat.Q8_0.gguf").is_file()


def test_pull_hf_file_and_default_tag_offline(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    entry = pull.pull("hf:someone/Tiny-GGUF/Tiny-Chat.F32.gguf", name="plain")
    assert entry.role == "base" and entry.file.name == "Tiny-Chat.F32.gguf" and cache in entry.file.parents
    # No tag: Q4_K_M is not cached, and offline the cache cannot say what else the
    # repository has, so two cached quantizations are not guessed between.
    with pytest.raises(DownloadError, match="has no Q4_K_M GGUF of someone/Tiny-GGUF"):
        pull.pull("someone/Tiny-GGUF")
    with pytest.raises(DownloadError, match="offline"):
        pull.pull("someone/Other-GGUF:Q8_0")
    assert sorted(registry.load()) == ["plain"]


def test_catalog_model_found_in_the_cache(cache: Path, tiny_ggufs: dict[str, bytes],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A catalog model someone already fetched with another tool is not downloaded again."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    put_in_cache(cache, "QuantFactory/Llama-3.2-3B-GGUF", "Llama-3.2-3B.Q4_K_M.gguf", tiny_ggufs["plain"])
    entry = pull.pull("llama3.2-3b")
    assert entry.name == "llama3.2-3b" and entry.role == "base"
    assert entry.file.parent == cache / "models--QuantFactory--Llama-3.2-3B-GGUF" / "snapshots" / COMMIT


def test_hf_hub_cache_overrides_hf_home(cache: Path, tmp_path: Path, tiny_ggufs: dict[str, bytes],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    other = tmp_path / "elsewhere"
    put_in_cache(other, "else/Where-GGUF", "W.Q8_0.gguf", tiny_ggufs["chat"])
    monkeypatch.setenv("HF_HUB_CACHE", str(other))
    assert [g.spec for g in hf_cache.cached_ggufs()] == ["else/Where-GGUF:Q8_0"]
    monkeypatch.delenv("HF_HUB_CACHE")
    assert "else/Where-GGUF:Q8_0" not in [g.spec for g in hf_cache.cached_ggufs()]


def test_drafter_flag_takes_a_cached_repo_quant(cache: Path) -> None:
    resolved = resolve_model("someone/Tiny-GGUF:Q8_0", "drafter")
    assert resolved.path.name == "Tiny-Chat.Q8_0.gguf" and cache in resolved.path.parents
    with pytest.raises(ModelError, match="not a file, nor a GGUF in the Hugging Face cache") as err:
        resolve_model("someone/Missing-GGUF:Q8_0", "drafter")
    assert "wsd models pull someone/Missing-GGUF:Q8_0" in str(err.value)


def test_pull_repo_quant_downloads_when_not_cached(cache: Path, tiny_ggufs: dict[str, bytes], tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Not in the cache: the file list comes from the Hub, the tag picks the file, and the
    resumable download puts it in the models folder (a local stand-in Hub serves it)."""
    from test_models_download import FakeHub

    from wsd_local.models import download

    server = FakeHub({"New.Q8_0.gguf": tiny_ggufs["chat"]})
    try:
        monkeypatch.setenv("HF_ENDPOINT", server.endpoint)
        monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        listed = {"someone/New-GGUF": ["README.md", "New.Q8_0.gguf", "New.Q2_K.gguf"]}
        monkeypatch.setattr(download, "list_repo_files", lambda repo, revision=None: listed[repo])
        monkeypatch.setattr(pull, "list_repo_files", lambda repo, revision=None: listed[repo])
        entry = pull.pull("someone/New-GGUF:Q8_0")
        assert entry.file == tmp_path / "models" / "New.Q8_0.gguf"
        assert entry.file.read_bytes() == tiny_ggufs["chat"]
        with pytest.raises(ModelError, match="no Q4_K_M file in someone/New-GGUF") as err:
            pull.pull("someone/New-GGUF")
        assert "available: Q2_K, Q8_0" in str(err.value)
    finally:
        server.close()


def test_download_relies_on_these_huggingface_hub_calls() -> None:
    """The contract behind the version range in pyproject.toml: the resumable download
    and the cache lookup call these with these keywords."""
    import huggingface_hub
    from huggingface_hub.file_download import http_get
    from huggingface_hub.utils import build_hf_headers

    assert {"resume_size", "headers", "expected_size", "displayed_filename"} <= set(inspect.signature(http_get).parameters)
    assert "token" in inspect.signature(huggingface_hub.get_hf_file_metadata).parameters
    assert "token" in inspect.signature(build_hf_headers).parameters
    assert {"revision", "endpoint"} <= set(inspect.signature(huggingface_hub.hf_hub_url).parameters)
    assert {"cache_dir", "revision"} <= set(inspect.signature(huggingface_hub.try_to_load_from_cache).parameters)
    assert "cache_dir" in inspect.signature(huggingface_hub.scan_cache_dir).parameters
