"""Downloads without the network: offline mode, error paths, and the rule that a
partial or failed download is never registered."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from wsd_local.errors import ModelError
from devtools import tiny
from wsd_local.models import download, listing, pull, registry

pytest.importorskip("tokenizers")


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny.make_tiny_gguf(tmp_path_factory.mktemp("dl"), "Q8_0")


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("WSD_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("WSD_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty Hugging Face cache
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    return tmp_path


def test_parse_hf_spec() -> None:
    item = download.parse_hf_spec("hf:QuantFactory/Llama-3.2-3B-GGUF/Llama-3.2-3B.Q4_K_M.gguf")
    assert (item.repo, item.filename) == ("QuantFactory/Llama-3.2-3B-GGUF", "Llama-3.2-3B.Q4_K_M.gguf")
    assert download.parse_hf_spec("hf:a/b/sub/dir/m.gguf").filename == "sub/dir/m.gguf"
    with pytest.raises(ModelError, match="bad Hugging Face file spec"):
        download.parse_hf_spec("hf:only/repo")
    with pytest.raises(ModelError, match="is not a .gguf file"):
        download.parse_hf_spec("hf:a/b/model.safetensors")


@pytest.mark.parametrize("spec", ["hf:owner/repo/../../x.gguf", "hf:owner/repo/sub/../../../x.gguf",
                                  "hf:owner/repo/..\\x.gguf", "hf:owner/repo/./x.gguf"])
def test_a_spec_cannot_name_a_file_outside_the_models_folder(isolated: Path, spec: str,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ModelError, match="it would be written outside the models folder"):
        download.parse_hf_spec(spec)
    from wsd_local.cli import main

    assert main(["models", "pull", spec]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "would be written outside the models folder" in err
    assert not (isolated / "x.gguf").exists() and not (isolated.parent / "x.gguf").exists()


def test_a_file_list_from_the_hub_cannot_place_a_file_outside(isolated: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The names a server lists are untrusted too: a repository (or a mirror set in
    HF_ENDPOINT) listing `../../evil.Q4_K_M.gguf` is refused before any transfer."""
    monkeypatch.setattr(pull, "list_repo_files", lambda repo, revision=None: ["../../evil.Q4_K_M.gguf"])
    monkeypatch.setattr(download, "fetch_file", lambda *a, **k: pytest.fail("nothing may be fetched"))
    with pytest.raises(ModelError, match=r"refusing to download '\.\./\.\./evil.Q4_K_M.gguf' from owner/repo: "
                                         r"it would be written outside"):
        pull.pull("owner/repo:Q4_K_M")
    with pytest.raises(ModelError, match="refusing to download '/etc/x.gguf'"):
        download.download_gguf(download.HfFile("owner/repo", "/etc/x.gguf"))


def test_unknown_name_suggests_close_names(isolated: Path) -> None:
    with pytest.raises(ModelError) as err:
        pull.pull("llama3.1-8")
    assert "unknown model 'llama3.1-8'" in str(err.value) and "llama3.1-8b" in str(err.value)
    with pytest.raises(ModelError, match="did you mean pilot-3b"):
        pull.pull("pilot3b")


def test_demo_models_are_not_pulled(isolated: Path) -> None:
    with pytest.raises(ModelError, match="part of the demo pair"):
        pull.pull("gemma3-270m")


def test_offline_with_nothing_cached(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError, match=r"offline \(HF_HUB_OFFLINE is set\) and Llama-3.2-3B.Q4_K_M.gguf is not in "):
        pull.pull("llama3.2-3b")
    with pytest.raises(ModelError, match="offline .* the checkpoint of songff/Pilot-3B is not in the local cache"):
        pull.pull("pilot-3b")
    with pytest.raises(ModelError, match="offline"):
        pull.pull("hf:someone/some-repo/model.Q4_0.gguf")
    assert registry.load() == {}
    assert list(listing.iter_local_ggufs(isolated / "models")) == []


def test_offline_uses_a_complete_local_copy(isolated: Path, tiny_gguf: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A file already in the models folder is used offline (huggingface_hub's local_dir
    lookup), checked and registered under the catalog name and role."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    (isolated / "models").mkdir()
    shutil.copy(tiny_gguf, isolated / "models" / "Llama-3.2-3B.Q4_K_M.gguf")
    entry = pull.pull("llama3.2-3b")
    assert entry.name == "llama3.2-3b" and entry.role == "base"
    assert entry.source == "hf:QuantFactory/Llama-3.2-3B-GGUF/Llama-3.2-3B.Q4_K_M.gguf"
    assert registry.get("llama3.2-3b") == entry


def test_partial_download_is_never_registered(isolated: Path, tiny_gguf: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    data = tiny_gguf.read_bytes()

    def fake_download(item, revision=None, dest=None, say=None):
        path = isolated / "models" / Path(item.filename).name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data[: len(data) * 2 // 3])
        return path

    monkeypatch.setattr(pull, "download_gguf", fake_download)
    with pytest.raises(ModelError, match="truncated"):
        pull.pull("hf:someone/repo/model.gguf")
    with pytest.raises(ModelError, match="truncated"):
        pull.pull("llama3.1-8b")
    assert registry.load() == {}


class FakeHub:
    """A local stand-in for huggingface.co's resolve endpoint: HEAD gives the metadata
    huggingface_hub reads (X-Repo-Commit, ETag = sha256, size), GET honours Range. With
    `cut_after` set, a GET sends that many bytes and drops the connection, then the
    server answers 503 until `cut_after` is cleared (a network that went away)."""

    def __init__(self, files: dict[str, bytes]) -> None:
        import hashlib
        import http.server
        import threading

        self.files = files
        self.requests: list[tuple[str, str, str | None]] = []
        self.cut_after: int | None = None
        self.broken = False
        hub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def _file(self) -> bytes | None:
                # /{owner}/{repo}/resolve/{revision}/{filename}
                parts = self.path.split("/", 5)
                return hub.files.get(parts[5]) if len(parts) == 6 and parts[3] == "resolve" else None

            def _head(self, data: bytes, status: int = 200, length: int | None = None) -> None:
                self.send_response(status)
                self.send_header("X-Repo-Commit", "0" * 40)
                self.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
                self.send_header("Content-Length", str(len(data) if length is None else length))
                self.send_header("Accept-Ranges", "bytes")

            def do_HEAD(self) -> None:
                hub.requests.append(("HEAD", self.path, None))
                data = self._file()
                if data is None:
                    self.send_response(404)
                    self.send_header("X-Error-Code", "EntryNotFound")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self._head(data)
                self.end_headers()

            def do_GET(self) -> None:
                rng = self.headers.get("Range")
                hub.requests.append(("GET", self.path, rng))
                data = self._file() or b""
                if hub.broken:
                    self.send_response(503)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                start = int(rng.split("=")[1].split("-")[0]) if rng else 0
                body = data[start:]
                self._head(data, 206 if rng else 200, len(body))
                if rng:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.end_headers()
                if hub.cut_after is not None:
                    self.wfile.write(body[: hub.cut_after])
                    self.wfile.flush()
                    hub.broken = True
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hub(isolated: Path, tiny_gguf: Path, monkeypatch: pytest.MonkeyPatch):
    server = FakeHub({"Tiny.Q8_0.gguf": tiny_gguf.read_bytes()})
    monkeypatch.setenv("HF_ENDPOINT", server.endpoint)
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    yield server
    server.close()


def test_pull_hf_spec_downloads_and_registers(hub: FakeHub, isolated: Path, tiny_gguf: Path) -> None:
    entry = pull.pull("hf:someone/Tiny-GGUF/Tiny.Q8_0.gguf")
    path = isolated / "models" / "Tiny.Q8_0.gguf"
    assert path.read_bytes() == tiny_gguf.read_bytes()
    assert entry.name == "tiny.q8_0" and entry.role == "drafter"  # it has a chat template
    assert Path(entry.path) == path and registry.get("tiny.q8_0") == entry
    assert ("HEAD", "/someone/Tiny-GGUF/resolve/main/Tiny.Q8_0.gguf", None) in hub.requests
    assert list((isolated / "models" / ".partial").iterdir()) == []
    # Pulled again: complete already, nothing fetched but the metadata.
    hub.requests.clear()
    entry = pull.pull("hf:someone/Tiny-GGUF/Tiny.Q8_0.gguf", name="mine", role="base")
    assert (entry.name, entry.role) == ("mine", "base")
    assert [r[0] for r in hub.requests] == ["HEAD"]


def test_interrupted_pull_resumes_and_registers_only_when_complete(hub: FakeHub, isolated: Path, tiny_gguf: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    # huggingface_hub writes in 10 MB chunks; small ones let a 100 kB file break midway.
    monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", 4096)
    data = tiny_gguf.read_bytes()
    hub.cut_after = 20_480
    with pytest.raises(ModelError, match="run the same command again"):
        pull.pull("hf:someone/Tiny-GGUF/Tiny.Q8_0.gguf")
    parts = list((isolated / "models" / ".partial").iterdir())
    assert len(parts) == 1 and parts[0].stat().st_size == 20_480
    assert not (isolated / "models" / "Tiny.Q8_0.gguf").exists()
    assert registry.load() == {}
    # The network is back: the next pull asks only for the rest.
    hub.cut_after, hub.broken = None, False
    hub.requests.clear()
    entry = pull.pull("hf:someone/Tiny-GGUF/Tiny.Q8_0.gguf")
    assert ("GET", "/someone/Tiny-GGUF/resolve/main/Tiny.Q8_0.gguf", "bytes=20480-") in hub.requests
    assert Path(entry.path).read_bytes() == data
    assert list((isolated / "models" / ".partial").iterdir()) == []


def test_corrupt_partial_fails_the_checksum(hub: FakeHub, isolated: Path) -> None:
    part_dir = isolated / "models" / ".partial"
    part_dir.mkdir(parents=True)
    import hashlib

    tag = hashlib.sha256(hub.files["Tiny.Q8_0.gguf"]).hexdigest()[:16]
    (part_dir / f"Tiny.Q8_0.gguf.{tag}.part").write_bytes(b"X" * 1000)  # wrong bytes
    with pytest.raises(ModelError, match="does not match its sha256"):
        pull.pull("hf:someone/Tiny-GGUF/Tiny.Q8_0.gguf")
    assert list(part_dir.iterdir()) == [] and registry.load() == {}
    entry = pull.pull("hf:someone/Tiny-GGUF/Tiny.Q8_0.gguf")  # a clean retry works
    assert Path(entry.path).is_file()


def test_missing_file_on_the_hub(hub: FakeHub, isolated: Path) -> None:
    with pytest.raises(ModelError, match="Nope.gguf does not exist in someone/Tiny-GGUF"):
        pull.pull("hf:someone/Tiny-GGUF/Nope.gguf")
    assert registry.load() == {}


def test_hf_token_is_sent(hub: FakeHub, isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str | None] = []
    import huggingface_hub.utils

    original = huggingface_hub.utils.build_hf_headers

    def spy(*args, **kwargs):
        seen.append(kwargs.get("token"))
        return original(*args, **kwargs)

    monkeypatch.setattr(huggingface_hub.utils, "build_hf_headers", spy)
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    pull.pull("hf:someone/Tiny-GGUF/Tiny.Q8_0.gguf")
    assert "hf_test_token" in seen


def test_repo_without_safetensors_fails_before_downloading(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub

    monkeypatch.setattr(download, "list_repo_files",
                        lambda repo, revision=None: ["README.md", "config.json", "pytorch_model.bin"])

    def no_snapshot(**kwargs):
        raise AssertionError("nothing should be downloaded")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", no_snapshot)
    with pytest.raises(ModelError, match="someone/old-model has no .safetensors weights"):
        from wsd_local.models.convert import convert

        convert("someone/old-model")
    monkeypatch.setattr(download, "list_repo_files", lambda repo, revision=None: ["model.Q4_K_M.gguf"])
    with pytest.raises(ModelError, match="already has GGUF files"):
        download.download_checkpoint("someone/gguf-only")
    assert registry.load() == {}


def test_hub_errors_become_one_line_model_errors() -> None:
    from huggingface_hub import errors as hf_errors

    missing = hf_errors.LocalEntryNotFoundError("not cached")
    err = download.hub_error(missing, "x.gguf", "a/b")
    assert isinstance(err, ModelError) and "unreachable" in str(err)
    err = download.hub_error(ConnectionError("down"), "x.gguf", "a/b")
    assert isinstance(err, ModelError) and "could not reach huggingface.co" in str(err)
    assert download.hub_error(ValueError("a bug"), "x.gguf", "a/b") is None


def test_env_is_read_at_call_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert download.is_offline()
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    assert not download.is_offline()
    monkeypatch.setenv("HF_HOME", "/somewhere")
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    assert download.hf_cache_dir() == "/somewhere/hub"


def test_slug() -> None:
    assert registry.slug("Meta-Llama-3.1-8B.Q4_K_M.gguf") == "meta-llama-3.1-8b.q4_k_m"
    assert registry.slug("My Model (v2).gguf") == "my-model-v2"


def test_pull_pilot_3b_converts_from_the_hub(isolated: Path, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """`wsd models pull pilot-3b` end to end against the local stand-in Hub serving a tiny
    Llama checkpoint under songff/Pilot-3B's name: fetched resumably into the hidden
    checkpoint folder, converted, registered as pilot-3b; then converted again offline
    from the kept checkpoint."""
    ckpt = tmp_path / "ckpt"
    tiny.build_checkpoint(ckpt)
    files = {p.name: p.read_bytes() for p in ckpt.iterdir()}
    server = FakeHub(files)
    try:
        monkeypatch.setenv("HF_ENDPOINT", server.endpoint)
        monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        listed = sorted(files) + ["README.md", "original/consolidated.00.pth"]
        monkeypatch.setattr(download, "list_repo_files", lambda repo, revision=None: listed)
        entry = pull.pull("pilot-3b", quant="Q8_0")
        assert (entry.name, entry.role, entry.source) == ("pilot-3b", "drafter", "convert:songff/Pilot-3B")
        assert Path(entry.path) == isolated / "models" / "Pilot-3B-Q8_0.gguf"
        kept = download.checkpoint_dir("songff/Pilot-3B")
        assert sorted(p.name for p in kept.iterdir() if not p.name.startswith(".")) == sorted(files)
        fetched = {r[1].rsplit("/", 1)[1] for r in server.requests if r[0] == "GET"}
        assert fetched == set(files)  # README and the original/ weights were not fetched
    finally:
        server.close()
    from wsd_local.gguf_format.reader import read_gguf

    info = read_gguf(entry.path)
    assert info.metadata["general.source.url"] == "https://huggingface.co/songff/Pilot-3B"
    assert info.quantization == "Q8_0" and info.chat_template
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the server is gone; the kept checkpoint suffices
    again = pull.pull("pilot-3b", quant="F16", name="pilot-3b-f16")
    assert Path(again.path).name == "Pilot-3B-F16.gguf"
