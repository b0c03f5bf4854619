"""Where wsd-local keeps things: user data (chats, logs, registry), model files and the
config file."""

from __future__ import annotations

import os
from pathlib import Path

from .fsutil import private_dir

APP_NAME = "wsd-local"
_SOURCE_MODELS = Path(__file__).resolve().parent.parent / "models"


def data_dir() -> Path:
    """User data directory; `WSD_DATA_DIR` overrides it (tests use this to run isolated).
    Created 0700."""
    override = os.environ.get("WSD_DATA_DIR")
    if override:
        path = Path(override).expanduser()
    else:
        from platformdirs import user_data_dir

        path = Path(user_data_dir(APP_NAME, appauthor=False))
    return private_dir(path)  # chats, logs, the registry: the owner's only


def models_dir() -> Path:
    """Folder for GGUF files: `WSD_MODELS_DIR`, else the checkout's `models/`, else the
    data directory's `models/` (an installed package has no checkout: its parent folder is
    site-packages, where another distribution may well have a `models/` of its own)."""
    override = os.environ.get("WSD_MODELS_DIR")
    if override:
        path = Path(override).expanduser()
    elif (_SOURCE_MODELS / "README.md").exists() and (_SOURCE_MODELS.parent / "pyproject.toml").exists():
        path = _SOURCE_MODELS
    else:
        path = data_dir() / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path


def log_path() -> Path:
    """llama.cpp's log file (its output never goes to the terminal)."""
    return data_dir() / "llama.log"


def config_path() -> Path:
    """The user's `config.toml`: `WSD_CONFIG`, else the user config folder (platformdirs).
    Not created here: it exists once the user writes it (`wsd config set`)."""
    override = os.environ.get("WSD_CONFIG")
    if override:
        return Path(override).expanduser()
    from platformdirs import user_config_dir

    return Path(user_config_dir(APP_NAME, appauthor=False)) / "config.toml"
