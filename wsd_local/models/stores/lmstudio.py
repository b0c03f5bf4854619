"""LM Studio's models folder, read in place: `<models>/<publisher>/<repo>/<file>.gguf`.

The folder: `WSD_LMSTUDIO_MODELS` (only that one), else LM Studio's `downloadsFolder`
setting, `models/` in its home (`~/.lmstudio-home-pointer`, else `~/.lmstudio`), and
`~/.cache/lm-studio/models` (releases before 0.3). Names: `lmstudio:PUBLISHER/REPO/FILE`
(`.gguf` optional), or the file name alone when unambiguous.
"""

from __future__ import annotations

import os
from pathlib import Path

from .base import StoreModel, is_model_file, read_json, unique_folders

SOURCE = "lmstudio"
LABEL = "LM Studio"
ENV = "WSD_LMSTUDIO_MODELS"
_POINTER = ".lmstudio-home-pointer"
_MAX_DEPTH = 4  # publisher/repo/file, with room for a subfolder; also ends link loops


def lmstudio_home() -> Path:
    """LM Studio's home: the path `~/.lmstudio-home-pointer` holds, else ~/.lmstudio."""
    pointer = Path.home() / _POINTER
    try:
        text = pointer.read_text(encoding="utf-8", errors="replace")[:4096].strip()
    except OSError:
        text = ""
    return Path(text).expanduser() if text and "\x00" not in text else Path.home() / ".lmstudio"


def folders() -> list[Path]:
    override = os.environ.get(ENV)
    if override:
        return [Path(override).expanduser()]
    home = lmstudio_home()
    candidates: list[Path] = []
    settings = read_json(home / "settings.json")
    configured = settings.get("downloadsFolder") if isinstance(settings, dict) else None
    if isinstance(configured, str) and configured.strip() and "\x00" not in configured:
        candidates.append(Path(configured.strip()).expanduser())
    candidates += [home / "models", Path.home() / ".cache" / "lm-studio" / "models"]
    return unique_folders(candidates)


def normalize(text: str) -> str | None:
    text = text.strip().replace("\\", "/").lower()
    if not text:
        return None
    return text if text.endswith(".gguf") else text + ".gguf"


def scan(store: Path) -> list[StoreModel]:
    found: list[StoreModel] = []
    for root, dirs, names in os.walk(store, onerror=lambda _err: None, followlinks=True):
        relative_root = Path(root).relative_to(store)
        depth = len(relative_root.parts)
        # Hidden folders hold LM Studio's own state; deeper ones are not its layout.
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and depth + 1 < _MAX_DEPTH)
        for name in sorted(names):
            if name.startswith(".") or not is_model_file(name) or not name.isprintable():
                continue
            relative = (relative_root / name).as_posix()
            if not relative.isprintable():
                continue
            found.append(StoreModel(
                source=SOURCE, label=LABEL, name=relative, path=Path(root) / name, store=store,
                keys=frozenset({relative.lower(), name.lower()}),
                refetch="download it again in LM Studio"))
    return found
