"""Installed and available models in one table (for `wsd models list` and the TUI's
model picker): the demo pair, the catalog, registered models, GGUF files lying in the
models folder, GGUF files in the Hugging Face cache that other tools downloaded, and
the models of Ollama, LM Studio and llama.cpp's cache (`stores`). Reads only GGUF
headers (tens of milliseconds per file). A file nobody registered gets the role its
header suggests: a chat template fits a drafter, none a base model."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

from ..errors import ModelError
from ..paths import models_dir
from . import catalog, demo, hf_cache, registry, stores
from .stores.base import resolved
from ..gguf_format.reader import GGUFInfo, read_gguf


@dataclass
class ModelRow:
    name: str
    role: str                  # drafter | base | ? (a file nobody registered: what its header suggests)
    status: str                # installed | available | missing | broken | unregistered | hf-cache | not installed
    size_bytes: int | None
    architecture: str | None
    quantization: str | None
    context_length: int | None
    where: str                 # file path, or the source to get it from
    notes: str = ""
    source: str = ""           # demo | catalog | registered | models-folder | hf-cache | ollama | lmstudio | llamacpp

    def as_dict(self) -> dict:
        return asdict(self)


def header_role(info: GGUFInfo) -> str:
    """What a GGUF looks like: a drafter has a chat template, a base model none."""
    return "drafter" if info.chat_template else "base"


def _from_file(name: str, role: str, path: Path, status: str = "installed", notes: str = "",
               source: str = "") -> ModelRow:
    try:
        info = read_gguf(path)
    except ModelError as exc:
        missing = not path.exists()
        return ModelRow(name, role, "missing" if missing else "broken", None, None, None, None, str(path),
                        notes=exc.one_line(), source=source)
    return ModelRow(name, header_role(info) if role == "?" else role, status, info.file_size, info.architecture,
                    info.quantization, info.context_length, str(path), notes, source)


def _from_store(model: stores.StoreModel) -> ModelRow:
    """A model in another tool's store, checked as `--drafter` would check it (a
    truncated blob is a `broken` row saying so)."""
    try:
        info = model.check()
    except ModelError as exc:
        gone = model.problem is None and not model.path.exists()
        return ModelRow(model.spec, "?", "missing" if gone else "broken", None, None, None, None, str(model.path),
                        notes=exc.one_line(), source=model.source)
    template = ("chat template in the GGUF: looks like a drafter" if info.chat_template
                else "no chat template in the GGUF: looks like a base model")
    notes = "; ".join(n for n in (f"{model.label} store {model.store}", template, model.notes) if n)
    return ModelRow(model.spec, header_role(info), "installed", info.file_size, info.architecture,
                    info.quantization, info.context_length, str(model.path), notes, model.source)


def _not_on_disk(entry: catalog.CatalogEntry, status: str, notes: str, source: str) -> ModelRow:
    """A catalog model without its file (yet): size and type from the catalog."""
    return ModelRow(entry.name, entry.role, status, int(entry.size_gb * 1e9), entry.architecture, entry.quant,
                    None, entry.source, notes, source)


def list_models() -> list[ModelRow]:
    rows: list[ModelRow] = []
    known_paths: set[Path] = set()
    registered = registry.load()

    # Demo pair.
    for entry in (catalog.get(demo.DEMO_DRAFTER), catalog.get(demo.DEMO_BASE)):
        assert entry is not None
        if entry.name == demo.DEMO_DRAFTER:
            path = demo.drafter_path() if demo.drafter_installed() else None
        else:
            path = demo.assembled_base_path()
        if path is not None:
            rows.append(_from_file(entry.name, entry.role, path, notes=entry.notes, source="demo"))
            known_paths.add(path.resolve())
        elif entry.name == demo.DEMO_BASE and demo.base_package_installed():
            rows.append(_not_on_disk(entry, "installed", "assembled into the models folder on first use", "demo"))
        else:
            rows.append(_not_on_disk(entry, "not installed", demo.INSTALL_HINT, "demo"))

    # Catalog models, installed (registered under their catalog name) or not.
    for entry in catalog.CATALOG:
        if entry.kind == "demo":
            continue
        reg = registered.get(entry.name)
        if reg is not None:
            rows.append(_from_file(entry.name, reg.role, reg.file, notes=entry.notes, source="catalog"))
            known_paths.add(reg.file.resolve())
        else:
            rows.append(_not_on_disk(entry, "available", f"{entry.notes}; `wsd models pull {entry.name}`", "catalog"))

    # Other registered models (pulled by hf: spec, converted, added).
    for name, reg in sorted(registered.items()):
        if catalog.get(name) is not None:
            continue
        if reg.source == "remote":  # a model on a server: listed without contacting it
            rows.append(ModelRow(name, reg.role, "remote", None, "remote", None, None, reg.path,
                                 "a model server; `wsd models info` asks it", "registered"))
            continue
        rows.append(_from_file(name, reg.role, reg.file, notes=reg.source, source="registered"))
        known_paths.add(reg.file.resolve())

    # GGUF files lying in the models folder that nobody registered.
    for path in iter_local_ggufs(models_dir()):
        if path.resolve() not in known_paths:
            rows.append(_from_file(path.stem, "?", path, status="unregistered",
                                   notes="register with `wsd models add PATH --name N --role drafter|base`",
                                   source="models-folder"))

    # GGUF files in the Hugging Face cache, usable in place.
    for cached in hf_cache.cached_ggufs():
        if cached.path.resolve() not in known_paths:
            rows.append(_from_file(cached.spec, "?", cached.path, status="hf-cache",
                                   notes=f"in the Hugging Face cache; `wsd models pull {cached.spec}` "
                                         "registers it without downloading", source="hf-cache"))
            known_paths.add(cached.path.resolve())

    # Models in Ollama's store, LM Studio's folder and llama.cpp's cache, used in place.
    # Every name a store gives a file is listed (Ollama's `llama3.1:latest` and
    # `llama3.1:8b` share one blob), unless the file is listed above already.
    rows += [_from_store(model) for model in stores.all_models() if resolved(model.path) not in known_paths]
    return rows


def iter_local_ggufs(folder: Path) -> Iterator[Path]:
    """GGUF files lying in the models folder (not in its hidden download caches)."""
    if not folder.is_dir():
        return
    for path in sorted(folder.rglob("*.gguf")):
        if any(part.startswith(".") for part in path.relative_to(folder).parts):
            continue
        yield path
