"""Installed and available models in one table (for `wsd models list` and the TUI's
model picker): the demo pair, the catalog, registered models, GGUF files lying in the
models folder, and GGUF files in the Hugging Face cache that other tools downloaded.
Reads only GGUF headers (tens of milliseconds per file)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

from ..errors import ModelError
from ..paths import models_dir
from . import catalog, demo, hf_cache, registry
from .info import read_gguf


@dataclass
class ModelRow:
    name: str
    role: str                  # drafter | base | ?
    status: str                # installed | available | missing | broken | unregistered | hf-cache | not installed
    size_bytes: int | None
    architecture: str | None
    quantization: str | None
    context_length: int | None
    where: str                 # file path, or the source to get it from
    notes: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def _from_file(name: str, role: str, path: Path, status: str = "installed", notes: str = "") -> ModelRow:
    try:
        info = read_gguf(path)
    except ModelError as exc:
        missing = not path.exists()
        return ModelRow(name, role, "missing" if missing else "broken", None, None, None, None, str(path),
                        notes=exc.one_line())
    return ModelRow(name, role, status, info.file_size, info.architecture, info.quantization,
                    info.context_length, str(path), notes)


def list_models(include_unregistered: bool = True, include_hf_cache: bool = True) -> list[ModelRow]:
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
            rows.append(_from_file(entry.name, entry.role, path, notes=entry.notes))
            known_paths.add(path.resolve())
        elif entry.name == demo.DEMO_BASE and demo.base_package_installed():
            rows.append(ModelRow(entry.name, entry.role, "installed", int(entry.size_gb * 1e9), entry.architecture,
                                 entry.quant, None, entry.source, "assembled into the models folder on first use"))
        else:
            rows.append(ModelRow(entry.name, entry.role, "not installed", int(entry.size_gb * 1e9), entry.architecture,
                                 entry.quant, None, entry.source, demo.INSTALL_HINT))

    # Catalog models, installed (registered under their catalog name) or not.
    for entry in catalog.CATALOG:
        if entry.kind == "demo":
            continue
        reg = registered.get(entry.name)
        if reg is not None:
            rows.append(_from_file(entry.name, reg.role, reg.file, notes=entry.notes))
            known_paths.add(reg.file.resolve())
        else:
            how = "wsd models pull " + entry.name
            rows.append(ModelRow(entry.name, entry.role, "available", int(entry.size_gb * 1e9),
                                 entry.architecture, entry.quant, None,
                                 entry.source, f"{entry.notes}; `{how}`"))

    # Other registered models (pulled by hf: spec, converted, added).
    for name, reg in sorted(registered.items()):
        if catalog.get(name) is not None:
            continue
        if reg.source == "remote":  # a model on a server: listed without contacting it
            rows.append(ModelRow(name, reg.role, "remote", None, "remote", None, None, reg.path,
                                 "a model server; `wsd models info` asks it"))
            continue
        rows.append(_from_file(name, reg.role, reg.file, notes=reg.source))
        known_paths.add(reg.file.resolve())

    # GGUF files lying in the models folder that nobody registered.
    if include_unregistered:
        for path in iter_local_ggufs(models_dir()):
            if path.resolve() in known_paths:
                continue
            row = _from_file(path.stem, "?", path, status="unregistered",
                             notes="register with `wsd models add PATH --name N --role drafter|base`")
            rows.append(row)

    # GGUF files in the Hugging Face cache, usable in place.
    if include_hf_cache:
        for cached in hf_cache.cached_ggufs():
            if cached.path.resolve() in known_paths:
                continue
            rows.append(_from_file(cached.spec, "?", cached.path, status="hf-cache",
                                   notes=f"in the Hugging Face cache; `wsd models pull {cached.spec}` "
                                         "registers it without downloading"))
    return rows


def iter_local_ggufs(folder: Path) -> Iterator[Path]:
    """GGUF files lying in the models folder (not in its hidden download caches)."""
    if not folder.is_dir():
        return
    for path in sorted(folder.rglob("*.gguf")):
        if any(part.startswith(".") for part in path.relative_to(folder).parts):
            continue
        yield path
