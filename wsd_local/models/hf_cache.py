"""GGUF files already in the Hugging Face cache (put there by `hf download`,
transformers or any tool using huggingface_hub), used in place: registered by their
path, never copied, moved or deleted.

`pick_file` reads `OWNER/REPO:Q4_K_M` as llama.cpp's `-hf` does: the quantization tag
picks the file (any case), no tag means Q4_K_M or the repository's only GGUF. The cache
folder is HF_HUB_CACHE, else HF_HOME/hub, else huggingface_hub's default, read when
called. Only complete files are found: the cache links a file into its snapshot once
the download is done.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelError
from .download import hf_cache_dir, is_repo_id

DEFAULT_QUANT = "Q4_K_M"
_SPLIT = re.compile(r"-\d{5}-of-\d{5}\.gguf$", re.IGNORECASE)
_QUANT_IN_NAME = re.compile(r"(?<![A-Za-z0-9])(I?Q\d(?:_[A-Z0-9]+)*|BF16|F16|F32)(?=[-._])", re.IGNORECASE)
# OWNER/REPO or OWNER/REPO:TAG, optionally written hf.co/OWNER/REPO:TAG as Ollama does.
_REPO_TAG = re.compile(r"^(?:(?:hf\.co|huggingface\.co)/)?(?P<repo>[A-Za-z0-9][A-Za-z0-9._-]*/"
                       r"[A-Za-z0-9][A-Za-z0-9._-]*)(?::(?P<tag>[A-Za-z0-9_.-]+))?$")


class QuantNotFound(ModelError):
    """The repository has GGUF files, but none of the asked quantization."""


@dataclass(frozen=True)
class RepoQuant:
    """What `OWNER/REPO:TAG` names: a repository and a quantization tag (None: default)."""

    repo: str
    tag: str | None

    @property
    def spec(self) -> str:
        return f"{self.repo}:{self.tag}" if self.tag else self.repo


def parse_repo_quant(text: str) -> RepoQuant | None:
    """`OWNER/REPO[:TAG]` -> RepoQuant, or None if `text` is not written that way."""
    match = _REPO_TAG.match(text.strip())
    if not match or not is_repo_id(match["repo"]):
        return None
    return RepoQuant(match["repo"], match["tag"])


@dataclass(frozen=True)
class CachedGguf:
    repo: str
    filename: str       # path inside the repository
    path: Path          # the file in the cache's snapshot folder
    size: int
    commit: str

    @property
    def quant(self) -> str | None:
        return quant_of(self.filename)

    @property
    def spec(self) -> str:
        """How to ask for this file: `OWNER/REPO:QUANT`, or `hf:OWNER/REPO/FILE`."""
        quant = self.quant
        return f"{self.repo}:{quant}" if quant else f"hf:{self.repo}/{self.filename}"


def quant_of(filename: str) -> str | None:
    """The quantization tag written in a GGUF file name (`Model.Q4_K_M.gguf` -> Q4_K_M)."""
    found = _QUANT_IN_NAME.findall(Path(filename).name)
    return found[-1].upper() if found else None


def _matches(filename: str, tag: str) -> bool:
    name = Path(filename).name
    pattern = rf"(?<![A-Za-z0-9_]){re.escape(tag)}(?![A-Za-z0-9_])"
    return re.search(pattern, name, re.IGNORECASE) is not None


def is_split_part(filename: str) -> bool:
    """One part of a model split into `-0000N-of-0000M.gguf` files."""
    return _SPLIT.search(filename) is not None


def _candidates(names: list[str]) -> list[str]:
    """GGUF model files (not the vision projectors some repositories ship beside them)."""
    return sorted(n for n in names if n.lower().endswith(".gguf") and "mmproj" not in Path(n).name.lower())


def pick_file(names: list[str], repo: str, tag: str | None, complete_list: bool = True) -> str:
    """The file of `repo` that `tag` names, out of `names` (paths in the repository).
    Without a tag, a repository's only GGUF is taken when `names` is its complete list."""
    ggufs = _candidates(names)
    if not ggufs:
        raise ModelError(f"{repo} has no GGUF files", "for a safetensors checkpoint use `wsd models convert REPO`")
    wanted = tag or DEFAULT_QUANT
    matches = [n for n in ggufs if _matches(n, wanted)]
    if not matches and tag is None and len(ggufs) == 1 and complete_list:
        matches = ggufs
    if not matches:
        tags = sorted({q for q in (quant_of(n) for n in ggufs) if q})
        hint = (f"available: {', '.join(tags)}; e.g. wsd models pull {repo}:{tags[0]}" if tags else
                "pull a file by name: wsd models pull hf:OWNER/REPO/FILE.gguf")
        raise QuantNotFound(f"no {wanted} file in {repo}", hint)
    whole = [n for n in matches if not is_split_part(n)]
    if not whole:
        raise ModelError(f"{repo}:{wanted} is split into several GGUF files ({Path(matches[0]).name}, ...)",
                         "split models are not supported yet: pick another quantization")
    if len(whole) > 1:
        raise ModelError(f"several files of {repo} match {wanted}: {', '.join(whole[:4])}",
                         f"pull one by name: wsd models pull hf:{repo}/{whole[0]}")
    return whole[0]


# -- the cache ------------------------------------------------------------------------------

def cache_folder() -> Path:
    folder = hf_cache_dir()
    if folder:
        return Path(folder)
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def cached_file(repo: str, filename: str, revision: str | None = None) -> Path | None:
    """The complete file in the cache, or None."""
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(repo, filename, cache_dir=str(cache_folder()), revision=revision)
    except (OSError, ValueError):  # an unreadable or odd cache: as if it were empty
        return None
    if isinstance(found, str) and Path(found).is_file():
        return Path(found)
    return None


def cached_ggufs(repo: str | None = None, folder: Path | None = None) -> list[CachedGguf]:
    """GGUF files in the cache (of `repo` only, when given). For each file the newest
    snapshot that has it; a file that several snapshots share is listed once. `folder`:
    another folder in the cache's layout (llama.cpp's, when LLAMA_CACHE is set)."""
    from huggingface_hub import scan_cache_dir

    try:
        from huggingface_hub.errors import CacheNotFound
    except ImportError:  # pragma: no cover - older huggingface_hub
        from huggingface_hub.utils import CacheNotFound  # type: ignore[no-redef]
    try:
        info = scan_cache_dir(str(folder or cache_folder()))
    except (CacheNotFound, OSError, ValueError):
        return []
    found: dict[tuple[str, str], CachedGguf] = {}
    for repo_info in sorted(info.repos, key=lambda r: r.repo_id.lower()):
        if repo_info.repo_type != "model" or (repo is not None and repo_info.repo_id.lower() != repo.lower()):
            continue
        for revision in sorted(repo_info.revisions, key=lambda r: r.last_modified, reverse=True):
            for file in revision.files:
                relative = Path(file.file_path).relative_to(revision.snapshot_path).as_posix()
                if (not _candidates([relative]) or (repo_info.repo_id, relative) in found
                        or not Path(file.file_path).is_file()):
                    continue
                found[(repo_info.repo_id, relative)] = CachedGguf(
                    repo_info.repo_id, relative, Path(file.file_path), int(file.size_on_disk), revision.commit_hash)
    return sorted(found.values(), key=lambda g: (g.repo.lower(), g.filename))


def find_cached(wanted: RepoQuant, only_source: bool = False) -> CachedGguf | None:
    """The cached file `OWNER/REPO:TAG` names, or None when the cache has none (the Hub
    may). An ambiguous tag is an error. `only_source`: the cache is all there is (offline),
    so without a tag its only GGUF of the repository counts as the one meant."""
    files = cached_ggufs(wanted.repo)
    if not files:
        return None
    try:
        name = pick_file([f.filename for f in files], wanted.repo, wanted.tag, complete_list=only_source)
    except QuantNotFound:
        return None  # not cached in that quantization: the Hub may have it
    return next(f for f in files if f.filename == name)
