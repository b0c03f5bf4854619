"""Shared fixtures. The demo models load once per test session (real llama.cpp)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


#: Fixtures that run the demo models: a test that uses one (directly or through another
#: fixture) carries the `models` marker, so `pytest -m models` (make test-portable) runs
#: every test of model numerics. Tests that run them another way are marked by hand.
MODEL_FIXTURES = frozenset({"demo_engine", "wsd_server"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if MODEL_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.models)


@pytest.fixture(scope="session", autouse=True)
def isolated_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Keep chats, logs and registries of the test run out of the user's data dir."""
    path = tmp_path_factory.mktemp("wsd-data")
    os.environ["WSD_DATA_DIR"] = str(path)
    # Nor read the models of the user's Ollama, LM Studio or llama.cpp: no store exists
    # unless a test builds one (tests/test_model_stores.py).
    for variable in ("OLLAMA_MODELS", "WSD_LMSTUDIO_MODELS", "LLAMA_CACHE"):
        os.environ[variable] = str(path / "no-store" / variable.lower())
    return path


@pytest.fixture
def empty_models_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A models folder of this test's own, with its own data folder and Hugging Face
    cache, so `wsd models ...` sees only the files the test writes there."""
    models = tmp_path / "models"
    models.mkdir()
    monkeypatch.setenv("WSD_MODELS_DIR", str(models))
    monkeypatch.setenv("WSD_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    return models


@pytest.fixture(scope="session")
def demo_engine(isolated_data_dir: Path):
    """The demo pair (SmolLM2-135M-Instruct drafter, Gemma-3-270M base) on the CPU.

    Tests that use it must keep token limits small and leave no state behind that
    another test relies on (the engine reuses its KV cache by common prefix only)."""
    from wsd_local.settings import RuntimeSettings
    from wsd_local.engine import Engine

    engine = Engine.load(runtime=RuntimeSettings(n_ctx=2048, n_gpu_layers=0))
    yield engine
    engine.close()


@pytest.fixture(scope="session")
def demo_paths() -> dict[str, Path]:
    from wsd_local.models import demo

    return {"drafter": demo.drafter_path(), "base": demo.base_path()}


@pytest.fixture(scope="session")
def wsd_server(tmp_path_factory: pytest.TempPathFactory, isolated_data_dir: Path):
    """One real `wsd serve` process for the server tests: the demo pair on loopback at a
    free port, an API key, a queue of one (so a full queue is easy to reach), context
    2048. Stopped at the end of the session, also when a test fails."""
    from server_process import SERVE_API_KEY, ServerProcess

    server = ServerProcess(tmp_path_factory.mktemp("serve"), args=["--max-queue", "1", "--ctx", "2048"],
                           env={"WSD_SERVE_API_KEY": SERVE_API_KEY})
    server.start()
    yield server
    server.stop()
