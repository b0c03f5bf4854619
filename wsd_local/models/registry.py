"""Models the user has installed: a small JSON file in the data directory, rewritten
atomically. Only complete files get here: `pull`, `convert` and `add` register a model
once its GGUF header and tensor data check out.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import ModelError
from ..fsutil import write_text_atomic
from ..paths import data_dir
from .catalog import ROLES

REGISTRY_FILE = "models.json"
_SCHEMA = 1
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class RegisteredModel:
    name: str
    path: str
    role: str
    source: str       # "hf:REPO/FILE", "convert:REPO", "local"
    added: float      # unix time

    @property
    def file(self) -> Path:
        return Path(self.path)


def registry_path() -> Path:
    return data_dir() / REGISTRY_FILE


def check_name(name: str) -> str:
    """Model names are short lowercase slugs so they are easy to type and to match."""
    clean = name.strip().lower()
    if not _NAME_RE.match(clean):
        raise ModelError(f"invalid model name {name!r}",
                         "use lowercase letters, digits, '.', '-' or '_' (up to 64 characters)")
    return clean


def slug(text: str) -> str:
    """A registry name from a file or folder name: 'Llama-3.2-3B.Q4_K_M.gguf' -> 'llama-3.2-3b.q4_k_m'."""
    stem = text[:-5] if text.lower().endswith(".gguf") else text
    clean = re.sub(r"[^a-z0-9._-]+", "-", stem.lower()).strip("-._")
    return clean[:64] or "model"


def check_role(role: str) -> str:
    if role not in ROLES:
        raise ModelError(f"invalid role {role!r}", "use drafter or base")
    return role


def load() -> dict[str, RegisteredModel]:
    path = registry_path()
    if not path.exists():
        return {}
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        entries = raw.get("models", {})
        return {name: RegisteredModel(name=name, path=e["path"], role=e["role"],
                                      source=e.get("source", "local"), added=float(e.get("added", 0)))
                for name, e in entries.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ModelError(f"the model registry {path} is unreadable ({exc.__class__.__name__})",
                         "fix or delete that file and register the models again") from None


def get(name: str) -> RegisteredModel | None:
    return load().get(name.lower())


def _save(models: dict[str, RegisteredModel]) -> None:
    path = registry_path()
    payload = {"schema": _SCHEMA,
               "models": {name: {k: v for k, v in asdict(m).items() if k != "name"}
                          for name, m in sorted(models.items())}}
    write_text_atomic(path, json.dumps(payload, indent=2) + "\n", private=True)


def register(name: str, path: Path | str, role: str, source: str) -> RegisteredModel:
    """Record a complete model file under `name` (replacing an entry of that name).
    A model on a server is recorded with its URL as the path (source "remote")."""
    name = check_name(name)
    role = check_role(role)
    models = load()
    # An absolute path, but symlinks kept: a file in the Hugging Face cache is registered
    # by its snapshot path (named like the file), not by the blob it links to. A server
    # is registered by its URL.
    where = str(path) if source == "remote" else os.path.abspath(path)
    entry = RegisteredModel(name=name, path=where, role=role, source=source, added=time.time())
    models[name] = entry
    _save(models)
    return entry


def unregister(name: str) -> RegisteredModel:
    models = load()
    entry = models.pop(name.lower(), None)
    if entry is None:
        raise ModelError(f"no registered model named {name!r}", "see `wsd models list`")
    _save(models)
    return entry
