"""Turn what the user typed (`--drafter`, `--base`) into a GGUF file path."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelError
from . import demo


@dataclass(frozen=True)
class ResolvedModel:
    name: str
    path: Path
    role: str


def resolve_model(spec: str | None, role: str) -> ResolvedModel:
    """A path to a file, a known model name, or None for the demo model of that role."""
    if spec is None or spec == "":
        spec = demo.DEMO_DRAFTER if role == "drafter" else demo.DEMO_BASE
    if spec == demo.DEMO_DRAFTER:
        return ResolvedModel(spec, demo.drafter_path(), role)
    if spec == demo.DEMO_BASE:
        return ResolvedModel(spec, demo.base_path(), role)
    path = Path(spec).expanduser()
    if path.suffix.lower() == ".gguf" or path.exists() or "/" in spec or "\\" in spec:
        if not path.exists():
            raise ModelError(f"model file not found: {spec}", "check the path, or `wsd models list`")
        if path.is_dir():
            raise ModelError(f"{spec} is a directory, not a GGUF file",
                             "give the path of a .gguf file inside it")
        return ResolvedModel(path.stem, path.resolve(), role)
    raise ModelError(f"unknown model {spec!r}",
                     f"give a .gguf path or a known name such as {demo.DEMO_DRAFTER} or {demo.DEMO_BASE}")
