"""What every store module hands out: a model found in another tool's folder, and the
checks that make using it safe (the file is there, has the size its store recorded,
and is a complete GGUF)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

from ...errors import ModelError
from ..hf_cache import is_split_part
from ...gguf_format.reader import GGUFInfo, read_gguf

# Manifests and settings files are small; anything bigger is not one (and is not read).
MAX_JSON_BYTES = 1 << 20
T = TypeVar("T")


@dataclass(frozen=True)
class StoreModel:
    """One GGUF model in another tool's store, used where it lies (never copied)."""

    source: str                  # ollama | lmstudio | llamacpp
    label: str                   # the tool's name, for messages: "Ollama"
    name: str                    # how the store names it: llama3.1:8b, PUBLISHER/REPO/FILE.gguf, ...
    path: Path                   # the GGUF file (an Ollama blob, a file in a folder)
    store: Path                  # the store's folder
    keys: frozenset[str] = field(default_factory=frozenset)  # lower-case spellings that name it
    expected_size: int | None = None   # the size the store recorded, when it records one
    digest: str | None = None          # sha256 hex the store names the file by (Ollama)
    problem: str | None = None         # why it cannot be used (an unreadable manifest, ...)
    refetch: str = ""                  # how to get it again, for hints
    notes: str = ""                    # what a listing should say about it

    @property
    def spec(self) -> str:
        """The name `--drafter`/`--base` take: `ollama:llama3.1:8b`."""
        return f"{self.source}:{self.name}"

    def check(self) -> GGUFInfo:
        """The GGUF header, after checking the file is there and complete. Any problem is
        one ModelError naming the model and its store."""
        where = f"{self.spec} (in the {self.label} store {self.store})"
        if self.problem:
            raise ModelError(f"{where}: {self.problem}", self.refetch or None)
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            raise ModelError(f"{where}: its file {self.path} is gone", self.refetch or None) from None
        except OSError as exc:
            raise ModelError(f"{where}: its file {self.path} cannot be read ({exc.strerror or exc})",
                             "check the folder's permissions") from None
        if self.expected_size is not None and size != self.expected_size:
            raise ModelError(f"{where}: {self.path} has {size:,} bytes where the store recorded "
                             f"{self.expected_size:,}: a truncated or corrupt file", self.refetch or None)
        try:
            return read_gguf(self.path)
        except ModelError as exc:
            raise ModelError(f"{where}: {exc.message}", self.refetch or exc.hint) from None


def read_json(path: Path) -> Any:
    """A small JSON file, or None when it is missing, too big or not JSON."""
    try:
        if path.stat().st_size > MAX_JSON_BYTES:
            return None
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None


def _entries(folder: Path, keep: str) -> Iterator[os.DirEntry]:
    """Entries directly inside `folder` for which `entry.<keep>()` holds, sorted; none when
    the folder cannot be read (an entry that cannot be checked is passed over)."""
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        return
    for entry in entries:
        try:
            if getattr(entry, keep)():
                yield entry
        except OSError:
            continue


def subfolders(folder: Path) -> Iterator[os.DirEntry]:
    """The folders directly inside `folder`, sorted."""
    return _entries(folder, "is_dir")


def files(folder: Path) -> Iterator[os.DirEntry]:
    """The files (or links to files) directly inside `folder`, sorted."""
    return _entries(folder, "is_file")


def is_model_file(name: str) -> bool:
    """A whole GGUF model: not a vision projector, not one part of a split model."""
    lower = name.lower()
    return lower.endswith(".gguf") and "mmproj" not in lower and not is_split_part(name)


def resolved(path: Path) -> Path:
    """The path with links resolved; as given when that fails (a link loop, no access)."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return path


def unique_by_file(items: list[T], path_of: Callable[[T], Path]) -> list[T]:
    """Items in order, one per file (by resolved path)."""
    seen: set[Path] = set()
    out: list[T] = []
    for item in items:
        key = resolved(path_of(item))
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out


def unique_folders(candidates: list[Path]) -> list[Path]:
    """Candidates in order, each folder once."""
    return unique_by_file([folder.expanduser() for folder in candidates], lambda folder: folder)
