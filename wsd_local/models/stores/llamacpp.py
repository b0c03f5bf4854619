"""llama.cpp's download cache (`llama-cli -hf`, `llama-server -hf`), read in place.

The folder is `LLAMA_CACHE`, else `llama.cpp/` in the platform's cache folder. Two
layouts are read there:

- the flat one llama.cpp wrote until early 2026: `<owner>_<repo>_<file>.gguf`, with
  `manifest=<owner>=<repo>=<tag>.json` naming the file `-hf owner/repo:tag` took.
  Named `llamacpp:OWNER/REPO:TAG` (no tag for `latest`), else by file name;
- the Hugging Face cache layout that later releases write into `LLAMA_CACHE` when it
  is set. Named `llamacpp:OWNER/REPO:QUANT`; the tag picks the file as `-hf` does.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from .base import StoreModel, files, is_model_file, read_json, subfolders

SOURCE = "llamacpp"
LABEL = "llama.cpp"
ENV = "LLAMA_CACHE"
LATEST = "latest"
_REPO_PART = re.compile(r"^[A-Za-z0-9_.-]{1,96}$")
_TAG = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_REFETCH = "run llama.cpp's `-hf` download again"


def platform_cache() -> Path:
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches"
    if os.name == "nt":
        local = os.environ.get("LOCALAPPDATA")
        return Path(local) if local else Path.home() / "AppData" / "Local"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return Path(xdg) if xdg else Path.home() / ".cache"


def folders() -> list[Path]:
    override = os.environ.get(ENV)
    if override:
        return [Path(override).expanduser()]
    return [platform_cache() / "llama.cpp"]


def normalize(text: str) -> str | None:
    text = text.strip().lower()
    return text or None


def scan(store: Path) -> list[StoreModel]:
    found = _flat(store)
    if any(entry.name.startswith("models--") for entry in subfolders(store)):
        found += _hub_layout(store)
    return found


def _flat(store: Path) -> list[StoreModel]:
    ggufs = {entry.name: entry for entry in files(store) if is_model_file(entry.name) and entry.name.isprintable()}
    named: dict[str, list[tuple[str, str, str, int | None]]] = {}  # file -> [(owner, repo, tag, size)]
    for entry in files(store):
        parsed = _manifest_name(entry.name)
        if parsed is None:
            continue
        owner, repo, tag = parsed
        manifest = read_json(Path(entry.path))
        gguf = manifest.get("ggufFile") if isinstance(manifest, dict) else None
        rfilename = gguf.get("rfilename") if isinstance(gguf, dict) else None
        if not isinstance(rfilename, str) or not rfilename or ".." in rfilename.split("/"):
            continue
        file_name = f"{owner}/{repo}_{rfilename}".replace("/", "_")
        if file_name not in ggufs:
            continue  # not downloaded (or not finished): nothing to use
        size = gguf.get("size")
        named.setdefault(file_name, []).append(
            (owner, repo, tag, size if isinstance(size, int) and not isinstance(size, bool) else None))
    models: list[StoreModel] = []
    for file_name, entry in ggufs.items():
        keys = {file_name.lower(), file_name[:-5].lower()}
        tags = named.get(file_name, [])
        expected = next((size for *_, size in tags if size is not None), None)
        if tags:
            # An explicit tag names it better than `latest`.
            owner, repo, tag, _ = sorted(tags, key=lambda t: (t[2].lower() == LATEST, t[2].lower()))[0]
            name = f"{owner}/{repo}" if tag.lower() == LATEST else f"{owner}/{repo}:{tag}"
            for o, r, t, _ in tags:
                keys.add(f"{o}/{r}:{t}".lower())
                if t.lower() == LATEST:
                    keys.add(f"{o}/{r}".lower())
            refetch = f"`llama-cli -hf {owner}/{repo}:{tag}` downloads it again"
        else:
            name, refetch = file_name, _REFETCH
        models.append(StoreModel(source=SOURCE, label=LABEL, name=name, path=Path(entry.path), store=store,
                                 keys=frozenset(keys), expected_size=expected, refetch=refetch))
    return models


def _manifest_name(file_name: str) -> tuple[str, str, str] | None:
    """`manifest=owner=repo=tag.json` -> (owner, repo, tag)."""
    if not (file_name.startswith("manifest=") and file_name.endswith(".json")):
        return None
    parts = file_name[len("manifest="):-len(".json")].split("=")
    if len(parts) != 3 or not all(_REPO_PART.match(p) for p in parts[:2]) or not _TAG.match(parts[2]):
        return None
    return parts[0], parts[1], parts[2]


def _hub_layout(store: Path) -> list[StoreModel]:
    from ...errors import ModelError
    from ..hf_cache import cached_ggufs, pick_file

    cached = [c for c in cached_ggufs(folder=store) if is_model_file(Path(c.filename).name)]
    by_repo: dict[str, list[str]] = {}
    for c in cached:
        by_repo.setdefault(c.repo, []).append(c.filename)
    defaults: dict[str, str] = {}
    for repo, names in by_repo.items():
        try:
            defaults[repo] = pick_file(names, repo, None)
        except ModelError:
            pass  # several files and none Q4_K_M: each needs its tag
    models: list[StoreModel] = []
    for c in cached:
        by_file = f"{c.repo}/{c.filename}"
        name = f"{c.repo}:{c.quant}" if c.quant else by_file
        keys = {name.lower(), by_file.lower()}
        if defaults.get(c.repo) == c.filename:
            keys.add(c.repo.lower())
        models.append(StoreModel(source=SOURCE, label=LABEL, name=name, path=c.path, store=store,
                                 keys=frozenset(keys), refetch=f"`llama-cli -hf {c.repo}` downloads it again"))
    return models
