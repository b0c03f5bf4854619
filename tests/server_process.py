"""A real `wsd serve` process for the server tests: loopback, a free port (the server
binds port 0 and prints the one it got), its own data directory, always stopped."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import httpx

#: The API key of the shared `wsd serve` (given through WSD_SERVE_API_KEY, as a user may).
SERVE_API_KEY = "test-key"
READY = re.compile(r"listening on (http://127\.0\.0\.1:\d+)/v1")
START_TIMEOUT = 180.0  # loading the demo pair on a busy 2-core machine


@dataclass
class ServerProcess:
    data_dir: Path
    args: Sequence[str] = ()
    env: dict[str, str] = field(default_factory=dict)
    url: str = ""
    process: subprocess.Popen | None = None

    @property
    def stdout_path(self) -> Path:
        return self.data_dir / "serve.stdout"

    @property
    def stderr_path(self) -> Path:
        return self.data_dir / "serve.stderr"

    def start(self) -> "ServerProcess":
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # Its own data folder and config file (none): the user's config.toml stays out.
        env = {**os.environ, "WSD_DATA_DIR": str(self.data_dir), "OMP_WAIT_POLICY": "PASSIVE",
               "WSD_CONFIG": str(self.data_dir / "config.toml"), **self.env}
        cmd = [sys.executable, "-m", "wsd_local.cli", "serve", "--port", "0", "--n-gpu-layers", "0",
               *self.args]
        # Files, not pipes: a pipe nobody reads would block the server once it fills.
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.process = subprocess.Popen(cmd, stdout=out, stderr=err, env=env)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            match = READY.search(self.stdout_path.read_text(errors="replace"))
            if match:
                self.url = match.group(1)
                return self
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"wsd serve did not start:\n{self.stderr_path.read_text(errors='replace')}")

    def stop(self) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def client(self, api_key: str | None = None, timeout: float = 120.0) -> httpx.Client:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=timeout)


def wait_for(condition, what: str, timeout: float = 60.0, interval: float = 0.05):
    """Poll until `condition()` is truthy (a bound on waiting, not a timing check)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")
