"""GGUF models other tools keep on disk (Ollama, LM Studio, llama.cpp's cache), used
where they lie: never copied, moved or deleted.

Each store module gives `folders()` (honouring its tool's setting: OLLAMA_MODELS,
LLAMA_CACHE, ...), `scan(folder)` (manifests and file names only, no GGUF opened) and
`normalize(text)` (a typed name as the key its models answer to). Here they serve the
listing, `wsd doctor` and name resolution (`ollama:NAME[:TAG]`, `lmstudio:...`,
`llamacpp:...`, or a bare name only one model answers to).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from ...errors import ModelError
from . import llamacpp, lmstudio, ollama
from .base import StoreModel, unique_by_file

#: In the order models are looked for (and listed).
KINDS: tuple[ModuleType, ...] = (ollama, lmstudio, llamacpp)
_BY_SOURCE = {kind.SOURCE: kind for kind in KINDS}
_EXAMPLES = {"ollama": "ollama:llama3.1:8b", "lmstudio": "lmstudio:PUBLISHER/REPO/FILE.gguf",
             "llamacpp": "llamacpp:OWNER/REPO:Q4_K_M"}

__all__ = ["KINDS", "FoundStore", "StoreModel", "all_models", "find", "find_bare", "folders_of",
           "found_stores", "names", "split_source"]

@dataclass(frozen=True)
class FoundStore:
    source: str
    label: str
    folder: Path
    models: tuple[StoreModel, ...]


def folders_of(kind: ModuleType) -> list[Path]:
    """Where a store is looked for; none when not even a home folder is known."""
    try:
        return kind.folders()
    except (RuntimeError, OSError):  # Path.home() without HOME or a password entry
        return []


def found_stores(kinds: tuple[ModuleType, ...] = KINDS) -> list[FoundStore]:
    """Every store folder that exists, with what is in it."""
    out: list[FoundStore] = []
    for kind in kinds:
        for folder in folders_of(kind):
            try:
                if not folder.is_dir():
                    continue
            except OSError:
                continue
            out.append(FoundStore(kind.SOURCE, kind.LABEL, folder, tuple(kind.scan(folder))))
    return out


def all_models() -> list[StoreModel]:
    return [model for store in found_stores() for model in store.models]


def names() -> list[str]:
    """The prefixed names of every model in the stores (for completion and suggestions)."""
    return [model.spec for model in all_models() if model.problem is None]


def split_source(spec: str | None) -> tuple[ModuleType, str] | None:
    """`ollama:llama3.1:8b` -> (the ollama module, "llama3.1:8b"); None without a store prefix."""
    if not spec:
        return None
    head, sep, rest = spec.strip().partition(":")
    kind = _BY_SOURCE.get(head.lower()) if sep else None
    return (kind, rest.strip()) if kind else None


def find(spec: str) -> StoreModel:
    """The model a prefixed name names, checked (present, complete, a GGUF). One-line
    ModelError when there is no store, no such model, or its file is not usable."""
    split = split_source(spec)
    if split is None:
        raise ModelError(f"{spec!r} names no store", "use ollama:, lmstudio: or llamacpp: before the name")
    kind, name = split
    key = kind.normalize(name) if name else None
    if key is None:
        raise ModelError(f"{spec!r} is not a valid {kind.LABEL} model name", f"e.g. {_EXAMPLES[kind.SOURCE]}")
    stores = found_stores((kind,))
    if not stores:
        looked = ", ".join(str(f) for f in folders_of(kind)) or "no home folder"
        raise ModelError(f"no {kind.LABEL} models folder found (looked in {looked})",
                         f"set {kind.ENV} to the folder that holds them")
    found = _the_one(spec, [m for store in stores for m in store.models if key in m.keys])
    if found is None:
        from ..catalog import close_names

        close = close_names(spec, [m.spec for store in stores for m in store.models])
        hint = (f"did you mean {' or '.join(close)}? " if close else "") + "see `wsd models list`"
        where = ", ".join(str(store.folder) for store in stores)
        raise ModelError(f"no {kind.LABEL} model named {name!r} in {where}", hint)
    return found


def find_bare(text: str) -> StoreModel | None:
    """The one store model a name without prefix names (checked), None when none does.
    Several: a one-line error listing them."""
    matches: list[StoreModel] = []
    for store in found_stores():
        kind = _BY_SOURCE[store.source]
        key = kind.normalize(text)
        if key is not None:
            matches += [m for m in store.models if key in m.keys]
    return _the_one(text, matches)


def _the_one(text: str, matches: list[StoreModel]) -> StoreModel | None:
    """The model `text` names, checked; None when none does, an error when several do.
    A store that names one file twice, or two stores sharing it through a link, are
    not a choice."""
    models = unique_by_file(matches, lambda model: model.path)
    if len(models) > 1:
        listed = ", ".join(m.spec for m in models[:6]) + (", ..." if len(models) > 6 else "")
        raise ModelError(f"{text!r} could be any of {listed}", "give one of those names in full")
    if models:
        models[0].check()
    return models[0] if models else None
