"""What wsd-local keeps for its user (the data folder, the chat store and its journal,
logs, the registry, config.toml, exports) is created private: folders 0700, files 0600,
even under the most open umask."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask():
    previous = os.umask(0)  # the worst case: nothing taken away
    yield
    os.umask(previous)


@pytest.fixture
def fresh_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    data = tmp_path / "new" / "data"  # neither folder exists yet
    monkeypatch.setenv("WSD_DATA_DIR", str(data))
    return data


def test_data_folder_store_and_journal_are_private(open_umask, fresh_data: Path) -> None:
    from wsd_local.paths import data_dir
    from wsd_local.store import Store

    assert data_dir() == fresh_data and mode(fresh_data) == 0o700
    with Store() as store:
        chat = store.create_chat("secret")
        store.add_message(chat.id, "user", "a private question")
        journal = [p for p in fresh_data.iterdir() if p.name.startswith("chats.sqlite3")]
        assert {p.name.removeprefix("chats.sqlite3") for p in journal} >= {"", "-wal", "-shm"}
        assert {p.name: mode(p) for p in journal} == {p.name: 0o600 for p in journal}


def test_registry_config_and_exports_are_private(open_umask, fresh_data: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from wsd_local import config_file
    from wsd_local.export import export_chat
    from wsd_local.models import registry
    from wsd_local.store import Store

    entry = registry.register("mine", tmp_path / "x.gguf", "base", "local")
    assert mode(registry.registry_path()) == 0o600 and entry.name == "mine"
    config = tmp_path / "config" / "wsd-local" / "config.toml"
    config_file.set_value("generate.log", "false", config)
    assert mode(config) == 0o600 and mode(config.parent) == 0o700
    with Store() as store:
        chat = store.create_chat("exported")
        store.add_message(chat.id, "user", "q")
        path = export_chat(store, chat.id, "markdown")
    assert mode(path) == 0o600 and mode(path.parent) == 0o700


def test_logs_are_private(open_umask, fresh_data: Path) -> None:
    from tui.errors import ERROR_LOG, describe_error
    from wsd_local.backend.logs import route_llama_logs
    from wsd_local.paths import data_dir, log_path
    from wsd_local.server.logs import PrivateRotatingFileHandler

    route_llama_logs(log_path())
    assert mode(log_path()) == 0o600
    handler = PrivateRotatingFileHandler(data_dir() / "server.log", maxBytes=10, backupCount=1, encoding="utf-8")
    try:
        for n in range(3):  # past maxBytes: rolled over to server.log.1 and a new server.log
            handler.emit(logging.LogRecord("wsd_local.server", logging.INFO, __file__, 1, f"line {n}", None, None))
    finally:
        handler.close()
    assert mode(data_dir() / "server.log") == mode(data_dir() / "server.log.1") == 0o600
    assert "internal error" in describe_error(RuntimeError("a bug"))
    assert mode(data_dir() / ERROR_LOG) == 0o600
