"""Ollama's model store, read in place.

    <store>/manifests/<registry>/<namespace>/<model>/<tag>   a Docker v2 manifest (JSON)
    <store>/blobs/sha256-<hex>                                 the layers' bytes

The manifest's model layer's blob is the GGUF file. Its template layer is a Go template
for Ollama's runtime, not Jinja: wsd uses the GGUF's own chat template instead. Names
are Ollama's (`llama3.1:8b` is registry.ollama.ai/library/llama3.1 tag 8b; no tag means
`latest`; any case). Listing checks each blob's size against its manifest; the sha256
of the whole blob only on `wsd models info --verify`, since it reads gigabytes.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from .base import StoreModel, files, read_json, subfolders, unique_folders

SOURCE = "ollama"
LABEL = "Ollama"
ENV = "OLLAMA_MODELS"
MODEL_LAYER = "application/vnd.ollama.image.model"
TEMPLATE_LAYER = "application/vnd.ollama.image.template"
DEFAULT_REGISTRY = "registry.ollama.ai"
DEFAULT_NAMESPACE = "library"
DEFAULT_TAG = "latest"
#: Where the Linux install script's service (user `ollama`) keeps its models.
SERVICE_FOLDER = Path("/usr/share/ollama/.ollama/models")

_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_HOST = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]{0,252}(?::\d{1,5})?$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
_DIGEST = re.compile(r"^sha256:([0-9a-f]{64})$")


def folders() -> list[Path]:
    """Where Ollama keeps models, in the order they are looked at."""
    override = os.environ.get(ENV)
    if override:
        return [Path(override).expanduser()]
    return unique_folders([Path.home() / ".ollama" / "models", SERVICE_FOLDER])


@dataclass(frozen=True)
class OllamaName:
    registry: str
    namespace: str
    model: str
    tag: str

    @property
    def key(self) -> str:
        return f"{self.registry}/{self.namespace}/{self.model}:{self.tag}".lower()

    @property
    def short(self) -> str:
        """As `ollama list` prints it: the default registry and namespace left out."""
        if self.registry.lower() != DEFAULT_REGISTRY:
            return f"{self.registry}/{self.namespace}/{self.model}:{self.tag}"
        if self.namespace.lower() != DEFAULT_NAMESPACE:
            return f"{self.namespace}/{self.model}:{self.tag}"
        return f"{self.model}:{self.tag}"

    def is_valid(self) -> bool:
        """Spelled as Ollama spells names (anything else is never printed)."""
        return bool(_HOST.match(self.registry) and _PART.match(self.namespace) and _PART.match(self.model)
                    and _TAG.match(self.tag))


def parse_name(text: str) -> OllamaName | None:
    """`[registry/][namespace/]model[:tag]` -> OllamaName, or None if not one."""
    *parts, last = text.strip().split("/")
    model, _, tag = last.rpartition(":") if ":" in last else (last, "", DEFAULT_TAG)
    parts.append(model)
    if len(parts) == 1:
        parts = [DEFAULT_REGISTRY, DEFAULT_NAMESPACE, *parts]
    elif len(parts) == 2:
        parts = [DEFAULT_REGISTRY, *parts]
    name = OllamaName(*parts, tag) if len(parts) == 3 else None
    return name if name is not None and name.is_valid() else None


def normalize(text: str) -> str | None:
    """The key a typed name matches (`llama3.1` -> registry.ollama.ai/library/llama3.1:latest)."""
    name = parse_name(text)
    return name.key if name else None


def scan(store: Path) -> list[StoreModel]:
    """Every manifest in the store, as a model (one with a `problem` when its manifest
    or model layer is unusable, so a listing can say why)."""
    found: list[StoreModel] = []
    manifests = store / "manifests"
    for registry in subfolders(manifests):
        for namespace in subfolders(Path(registry.path)):
            for model in subfolders(Path(namespace.path)):
                for tag in files(Path(model.path)):
                    name = OllamaName(registry.name, namespace.name, model.name, tag.name)
                    if name.is_valid():
                        found.append(_model(store, name, Path(tag.path)))
    return found


def _model(store: Path, name: OllamaName, manifest_path: Path) -> StoreModel:
    common = dict(source=SOURCE, label=LABEL, name=name.short, store=store,
                  keys=frozenset({name.key}), refetch=f"`ollama pull {name.short}` downloads it again")
    manifest = read_json(manifest_path)
    layers = manifest.get("layers") if isinstance(manifest, dict) else None
    if not isinstance(layers, list):
        return StoreModel(path=manifest_path, problem=f"its manifest {manifest_path} is not a readable "
                                                      "Ollama manifest", **common)
    model_layer = next((layer for layer in layers if isinstance(layer, dict)
                        and layer.get("mediaType") == MODEL_LAYER), None)
    if model_layer is None:
        return StoreModel(path=manifest_path, problem="its manifest has no GGUF model layer", **common)
    digest = _DIGEST.match(str(model_layer.get("digest", "")))
    size = model_layer.get("size")
    if digest is None or not isinstance(size, int) or isinstance(size, bool) or size < 0:
        return StoreModel(path=manifest_path, problem="its manifest's model layer has no valid "
                                                      "sha256 digest and size", **common)
    blob = store / "blobs" / f"sha256-{digest[1]}"
    if not blob.exists() and (store / "blobs" / f"sha256:{digest[1]}").exists():
        blob = store / "blobs" / f"sha256:{digest[1]}"  # the name older releases wrote
    template = any(isinstance(layer, dict) and layer.get("mediaType") == TEMPLATE_LAYER for layer in layers)
    notes = "its Ollama template (a Go template) is not used" if template else ""
    return StoreModel(path=blob, expected_size=size, digest=digest[1], notes=notes, **common)
