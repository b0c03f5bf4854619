"""Turn what the user typed (`--drafter`, `--base`) into a GGUF file path, in the order
docs/MODELS.md gives. Every file's header and tensor data are checked (`read_gguf`)
before llama.cpp sees it, so a folder, a text file or a truncated download is a
one-line error here rather than a crash at load time.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..backend.remote_spec import RemoteSpec, is_remote_spec, parse_remote_spec
from ..errors import ModelError
from . import catalog, demo, registry, stores
from .hf_cache import find_cached, parse_repo_quant
from ..gguf_format.reader import read_gguf

#: Registry entries for a model on a server carry this source and the URL as their path.
REMOTE_SOURCE = "remote"


@dataclass(frozen=True)
class ResolvedModel:
    name: str
    path: Path
    role: str
    store: stores.StoreModel | None = None  # where another tool keeps it, for a store model


def remote_spec_for(spec: str | None, role: str) -> RemoteSpec | None:
    """The server behind `spec` (a URL, or a name registered for one), else None.
    Either model may be on a server (`role` is kept for the callers' symmetry)."""
    if not spec:
        return None
    if not is_remote_spec(spec):
        entry = registry.get(spec) if "/" not in spec and "\\" not in spec else None
        if entry is None or entry.source != REMOTE_SOURCE:
            return None
        spec = entry.path
    del role
    return parse_remote_spec(spec)


def resolve_model(spec: str | None, role: str) -> ResolvedModel:
    """A path to a file, a known model name, or None for the demo model of that role."""
    if is_remote_spec(spec):
        raise ModelError(f"{spec} is a model server, not a GGUF file",
                         "only --drafter, --base and `wsd models info` take a server URL")
    if spec is None or spec == "":
        spec = demo.DEMO_DRAFTER if role == "drafter" else demo.DEMO_BASE
    if spec == demo.DEMO_DRAFTER:
        return ResolvedModel(spec, demo.drafter_path(), role)
    if spec == demo.DEMO_BASE:
        return ResolvedModel(spec, demo.base_path(), role)
    if stores.split_source(spec) is not None:
        return _from_store(stores.find(spec), role)

    looks_like_path = (spec.lower().endswith(".gguf") or "/" in spec or "\\" in spec
                       or Path(spec).expanduser().exists())
    if not looks_like_path:
        entry = registry.get(spec)
        if entry is not None and entry.source == REMOTE_SOURCE:
            raise ModelError(f"{entry.name} is the model server {entry.path}, not a GGUF file",
                             "use it as --drafter or --base, or `wsd models info` it")
        if entry is not None:
            if not entry.file.is_file():
                raise ModelError(f"the registered model {entry.name} points to a missing file ({entry.path})",
                                 f"pull or convert it again, or `wsd models remove {entry.name}`")
            read_gguf(entry.file)
            return ResolvedModel(entry.name, entry.file, role)
        in_store = stores.find_bare(spec)
        if in_store is not None:
            return _from_store(in_store, role)
        item = catalog.get(spec)
        if item is not None:
            how = (f"run `wsd models pull {item.name}`, which converts {item.repo} to GGUF" if item.kind == "convert"
                   else f"run `wsd models pull {item.name}` to download it, {item.size_gb:g} GB")
            raise ModelError(f"{item.name} is not downloaded yet", how)
        raise unknown_model_error(spec)

    path = Path(spec).expanduser()
    if not path.exists():
        wanted = parse_repo_quant(spec) if not spec.lower().endswith(".gguf") else None
        if wanted is not None:
            cached = find_cached(wanted, only_source=True)
            if cached is not None:
                read_gguf(cached.path)
                return ResolvedModel(wanted.spec, cached.path, role)
        in_store = stores.find_bare(spec)
        if in_store is not None:
            return _from_store(in_store, role)
        if wanted is not None:
            raise ModelError(f"{spec} is not a file, nor a GGUF in the Hugging Face cache or another tool's store",
                             f"`wsd models pull {spec}` downloads it")
        raise ModelError(f"model file not found: {spec}", "check the path, or `wsd models list`")
    if path.is_dir():
        raise ModelError(f"{spec} is a directory, not a GGUF file",
                         "give the path of a .gguf file inside it")
    read_gguf(path)
    return ResolvedModel(path.stem, path.resolve(), role)


def _from_store(model: stores.StoreModel, role: str) -> ResolvedModel:
    """A store model found and checked by `stores`: used where it lies."""
    return ResolvedModel(model.spec, model.path, role, store=model)


def known_names() -> list[str]:
    """Demo, catalog and registered names, and the models in other tools' stores."""
    names = [demo.DEMO_DRAFTER, demo.DEMO_BASE] + catalog.names()
    try:
        names += list(registry.load())
    except ModelError:
        pass
    return sorted(set(names)) + stores.names()


def unknown_model_error(spec: str) -> ModelError:
    close = catalog.close_names(spec, known_names())
    hint = (f"did you mean {' or '.join(close)}? " if close else "") + \
        "give a .gguf path or a name from `wsd models list`"
    return ModelError(f"unknown model {spec!r}", hint)
