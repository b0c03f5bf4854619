"""Downloads from the Hugging Face Hub with huggingface_hub: one GGUF file, or the files
of a safetensors checkpoint for conversion. Registering what was fetched is `pull`'s job.

- Transfers resume across runs (`fetch_file`); a file appears at its place only once
  its size and sha256 match the Hub's, so a partial download is never listed or used.
- GGUF files go into the models folder; checkpoints into the hidden
  `<models>/.checkpoints/OWNER--REPO` (kept for converting to another type).
- `HF_HUB_OFFLINE` is read at call time (huggingface_hub reads it once at import);
  `HF_TOKEN` and `HF_ENDPOINT` are honoured.
- huggingface_hub's failures become one-line errors (`hub_error`): a name the Hub does
  not have is a `ModelError` (exit 2), a failed transfer or access a `DownloadError`.
"""

from __future__ import annotations

import contextlib
import fnmatch
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import urlparse

from ..errors import DownloadError, ModelError
from ..fsutil import path_inside
from ..paths import models_dir
from .checksum import sha256_file
from ..gguf_format.reader import format_bytes

_TRUE = {"1", "true", "yes", "on"}
_RESUMES = "run the same command again: it resumes where it stopped"
_REPO_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
# Files a conversion needs from a checkpoint repository (weights, config, tokenizer).
CHECKPOINT_PATTERNS = [
    "config.json", "generation_config.json", "*.safetensors", "model.safetensors.index.json",
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
    "chat_template.jinja", "chat_template.json",
]


def is_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE


def offline_error(what_is_missing: str) -> DownloadError:
    """Offline and the file is not here: e.g. offline_error("x.gguf is not in FOLDER")."""
    return DownloadError(f"offline (HF_HUB_OFFLINE is set) and {what_is_missing}",
                         "unset HF_HUB_OFFLINE and connect once to download it")


def hf_cache_dir() -> str | None:
    """HF_HUB_CACHE or HF_HOME/hub, read now (huggingface_hub reads them at import)."""
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    if os.environ.get("HF_HOME"):
        return str(Path(os.environ["HF_HOME"]).expanduser() / "hub")
    return None


@contextlib.contextmanager
def _hub_env() -> Iterator[None]:
    """A huggingface_hub call under the current HF_HUB_OFFLINE (the library reads it once
    at import; tests and a long-lived TUI change it later). Offline, its "couldn't access
    the Hub" warnings stay off the terminal."""
    from huggingface_hub import constants

    offline = is_offline()
    saved = getattr(constants, "HF_HUB_OFFLINE", None)
    constants.HF_HUB_OFFLINE = offline
    logger = logging.getLogger("huggingface_hub")
    level = logger.level
    if offline:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = saved
        logger.setLevel(level)


def hf_token() -> str | None:
    """HF_TOKEN if set; otherwise huggingface_hub falls back to a stored login."""
    return os.environ.get("HF_TOKEN") or None


def is_repo_id(text: str) -> bool:
    return bool(_REPO_RE.match(text))


@dataclass(frozen=True)
class HfFile:
    repo: str
    filename: str

    @property
    def spec(self) -> str:
        return f"hf:{self.repo}/{self.filename}"


def parse_hf_spec(spec: str) -> HfFile:
    """`hf:OWNER/REPO/path/to/file.gguf` -> (OWNER/REPO, path/to/file.gguf)."""
    body = spec[3:] if spec.startswith("hf:") else spec
    parts = body.strip("/").split("/")
    if len(parts) < 3 or not all(parts):
        raise ModelError(f"bad Hugging Face file spec {spec!r}",
                         "write hf:OWNER/REPO/FILE.gguf, e.g. hf:QuantFactory/Llama-3.2-3B-GGUF/Llama-3.2-3B.Q4_K_M.gguf")
    repo = "/".join(parts[:2])
    filename = "/".join(parts[2:])
    if path_inside(Path("."), filename) is None:
        raise ModelError(f"bad file name {filename!r} in {spec!r}: it would be written outside the models folder",
                         "name a file inside the repository, e.g. hf:OWNER/REPO/FILE.gguf")
    if not is_repo_id(repo):
        raise ModelError(f"bad Hugging Face repository id {repo!r}", "write OWNER/REPO")
    if not filename.lower().endswith(".gguf"):
        raise ModelError(f"{filename} is not a .gguf file",
                         "pull a GGUF file; for a safetensors checkpoint use `wsd models convert REPO`")
    return HfFile(repo, filename)


# -- error mapping --------------------------------------------------------------------

def _transport_errors() -> tuple[type[BaseException], ...]:
    """Network failures: requests (huggingface_hub < 1.0), httpx or httpx2 (later)."""
    import httpx

    found: list[type[BaseException]] = [ConnectionError, TimeoutError, httpx.TransportError]
    with contextlib.suppress(ImportError, AttributeError):  # huggingface_hub 2.x: httpx's fork
        found.append(__import__("httpx2").TransportError)
    with contextlib.suppress(ImportError):
        import requests
        found += [requests.exceptions.ConnectionError, requests.exceptions.Timeout]
    return tuple(found)


def hub_error(exc: BaseException, what: str, repo: str, resumable: bool = False) -> ModelError | None:
    """One-line ModelError for a huggingface_hub failure, or None if it is not one."""
    from huggingface_hub import errors

    again = _RESUMES if resumable else "try again later"

    def isa(name: str) -> bool:  # a class this huggingface_hub lacks matches nothing
        return isinstance(exc, getattr(errors, name, ()))

    if isa("GatedRepoError"):
        return DownloadError(f"{repo} is gated on Hugging Face: accept its licence on the website first",
                          "then set HF_TOKEN to a token of that account")
    if isa("RepositoryNotFoundError"):
        return ModelError(f"repository {repo} not found on Hugging Face (or it is private)",
                          "check the name; for a private repository set HF_TOKEN")
    if isa("RevisionNotFoundError"):
        return ModelError(f"revision not found in {repo}", "check --revision")
    if isa("LocalEntryNotFoundError") or isa("OfflineModeIsEnabled"):
        if is_offline():
            return offline_error(f"{what} is not in the local cache")
        return DownloadError(f"could not download {what}: huggingface.co is unreachable and there is no local copy",
                          "check the network connection, or set HF_HUB_OFFLINE=1 to work with cached files only")
    if isa("EntryNotFoundError"):
        return ModelError(f"{what} does not exist in {repo}", "check the file name on the repository's Files page")
    if isa("HfHubHTTPError"):
        status = getattr(getattr(exc, "response", None), "status_code", None)
        if isinstance(status, int) and status >= 500:
            return DownloadError(f"Hugging Face had a server error ({status}) while sending {what}", again)
        if status in (401, 403):
            return DownloadError(f"Hugging Face refused access to {what} in {repo} ({status})",
                              "set HF_TOKEN to a token that can read the repository")
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        return DownloadError(f"Hugging Face refused the download of {what}: {first}",
                          "check the name and HF_TOKEN, and try again")
    if isinstance(exc, _transport_errors()):
        return DownloadError(f"could not reach huggingface.co to download {what} ({exc.__class__.__name__})",
                          "check the network connection and " + again +
                          ", or set HF_HUB_OFFLINE=1 to use cached files only")
    return None


@contextlib.contextmanager
def _hub_call(what: str, repo: str, broke_off: bool = False) -> Iterator[None]:
    """huggingface_hub failures as ModelError, under the current HF_HUB_OFFLINE. With
    `broke_off`, any I/O failure during a transfer (huggingface_hub raises a plain
    OSError when a stream ends short) says that the next run resumes."""
    try:
        with _hub_env():
            yield
    except (ModelError, KeyboardInterrupt):
        raise
    except Exception as exc:
        mapped = hub_error(exc, what, repo, resumable=broke_off)
        if mapped is None and broke_off and isinstance(exc, (OSError, *_transport_errors())):
            mapped = DownloadError(f"the download of {what} broke off ({exc.__class__.__name__})", _RESUMES)
        if mapped is None:
            raise
        raise mapped from None


# -- the downloads ----------------------------------------------------------------------

def download_gguf(item: HfFile, revision: str | None = None, dest: Path | None = None,
                  say: Callable[[str], None] = lambda s: None) -> Path:
    """Fetch one GGUF file into the models folder and return the complete file's path."""
    dest = dest or models_dir()
    final = target_in(dest, item.filename, item.repo)
    if is_offline():
        if final.is_file():
            return final
        raise offline_error(f"{item.filename} is not in {dest}")
    return fetch_file(item.repo, item.filename, final, revision, say)


def fetch_file(repo: str, filename: str, final: Path, revision: str | None = None,
               say: Callable[[str], None] = lambda s: None) -> Path:
    """Download `repo`/`filename` to `final`, resumably.

    `hf_hub_download` drops a half-downloaded file when its process stops, so resuming
    is ours: bytes go to `.partial/<file>.<etag>.part` beside `final`, a later run
    continues it with a Range request (huggingface_hub's `http_get`, which draws the
    progress bar), and it moves to `final` only once its size and, for LFS files, its
    sha256 (the Hub's ETag) match. A file at `final` with the Hub's size is complete."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url
    from huggingface_hub.file_download import http_get
    from huggingface_hub.utils import build_hf_headers

    token = hf_token()
    url = hf_hub_url(repo, filename, revision=revision, endpoint=os.environ.get("HF_ENDPOINT") or None)
    with _hub_call(filename, repo):
        meta = get_hf_file_metadata(url, token=token)
    size = meta.size
    etag = (meta.etag or "").lower()
    if final.is_file() and size is not None and final.stat().st_size == size:
        return final

    part_dir = final.parent / ".partial"
    part_dir.mkdir(parents=True, exist_ok=True)
    tag = re.sub(r"[^0-9a-z]", "", etag)[:16] or "noetag"
    part = part_dir / f"{final.name}.{tag}.part"
    headers = dict(build_hf_headers(token=token))
    source = url
    if meta.location and meta.location != url:
        source = meta.location  # the CDN: no credentials there
        if urlparse(source).netloc != urlparse(url).netloc:
            headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
    with part.open("ab") as fh:
        _lock_or_fail(fh, filename)
        done = part.stat().st_size
        if size is not None and done > size:  # not ours to continue
            fh.truncate(0)
            done = 0
        if done:
            say(f"resuming {filename} after {format_bytes(done)}")
        if size is None or done < size:
            with _hub_call(filename, repo, broke_off=True):
                http_get(source, fh, resume_size=done, headers=headers, expected_size=size,
                         displayed_filename=Path(filename).name)
        fh.flush()
        os.fsync(fh.fileno())
    got = part.stat().st_size
    if size is not None and got != size:
        raise DownloadError(f"the download of {filename} is incomplete ({got} of {size} bytes)", _RESUMES)
    if re.fullmatch(r"[0-9a-f]{64}", etag):
        say(f"checking the sha256 of {filename}")
        if sha256_file(part) != etag:
            part.unlink()
            raise DownloadError(f"{filename} does not match its sha256 on the Hub", "run the same command again")
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(part, final)
    return final


def target_in(folder: Path, name: str, repo: str) -> Path:
    """Where a file of `repo` goes: inside `folder`, whatever the name a spec or the
    Hub's file list gave (`../../x.gguf` and absolute names are refused)."""
    target = path_inside(folder, name)
    if target is None:
        raise ModelError(f"refusing to download {name!r} from {repo}: it would be written outside {folder}",
                         "name a file inside the repository")
    return target


def _lock_or_fail(fh, name: str) -> None:
    """Two pulls of one file must not append to the same partial file."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks here
        return
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise DownloadError(f"another `wsd models pull` is downloading {name}", "wait for it to finish") from None


def list_repo_files(repo: str, revision: str | None = None) -> list[str]:
    """File names in a repository (online only)."""
    from huggingface_hub import HfApi

    with _hub_call(f"the file list of {repo}", repo):
        return list(HfApi().list_repo_files(repo, revision=revision, token=hf_token()))


def checkpoint_dir(repo: str) -> Path:
    """Where a checkpoint downloaded for conversion is kept (hidden in the models folder,
    so listings skip it): `<models>/.checkpoints/OWNER--REPO`."""
    return models_dir() / ".checkpoints" / repo.replace("/", "--")


def download_checkpoint(repo: str, revision: str | None = None,
                        say: Callable[[str], None] = lambda s: None) -> Path:
    """The folder of `repo`'s safetensors checkpoint, for conversion. Online: the file
    list is checked first (no safetensors weights: fail before anything large), then
    each file is fetched resumably. Offline: `checkpoint_dir(repo)` if complete, else a
    copy in the Hugging Face cache."""
    folder = checkpoint_dir(repo)
    if is_offline():
        if _checkpoint_complete(folder):
            return folder
        from huggingface_hub import snapshot_download

        with _hub_call(f"the checkpoint of {repo}", repo):
            cached = snapshot_download(repo_id=repo, revision=revision, allow_patterns=CHECKPOINT_PATTERNS,
                                       cache_dir=hf_cache_dir(), local_files_only=True)
        return Path(cached)
    files = list_repo_files(repo, revision)
    check_checkpoint_files(repo, files)
    wanted = [f for f in files if "/" not in f and any(fnmatch.fnmatch(f, p) for p in CHECKPOINT_PATTERNS)]
    for name in wanted:
        fetch_file(repo, name, target_in(folder, name, repo), revision, say)
    (folder / ".complete").write_text("\n".join(wanted) + "\n")
    return folder


def _checkpoint_complete(folder: Path) -> bool:
    marker = folder / ".complete"
    if not marker.is_file():
        return False
    names = [n for n in marker.read_text().splitlines() if n]
    return bool(names) and all((folder / n).is_file() for n in names)


def check_checkpoint_files(repo: str, files: list[str]) -> None:
    names = {Path(f).name for f in files}
    if not any(f.endswith(".safetensors") for f in files):
        other = sorted(n for n in names if n.endswith((".bin", ".pt", ".pth", ".gguf")))
        hint = ("it has PyTorch .bin weights only; convert them to safetensors first"
                if any(n.endswith((".bin", ".pt", ".pth")) for n in other) else
                "it already has GGUF files: pull one with `wsd models pull hf:REPO/FILE`"
                if any(n.endswith(".gguf") for n in other) else
                "a checkpoint in Hugging Face layout (config.json + *.safetensors) is needed")
        raise ModelError(f"{repo} has no .safetensors weights", hint)
    if "config.json" not in names:
        raise ModelError(f"{repo} has no config.json", "a checkpoint in Hugging Face layout is needed")
