"""How `wsd serve` scales with concurrent streaming clients (models on model servers).

    python -m devtools.serve_scaling --drafter URL#model --base URL#model \\
        --clients 1,2,4,8 --answers 2 --max-tokens 24 [--server-pid PID ...]

Starts one `wsd serve` with `--max-concurrency` the largest client count, then for each
client count C: C clients (each its own connection) stream `--answers` answers back
to back, every request a different prompt. Per row:
- total answer tokens per second over all clients (tokens / wall time of the round);
- time to first text p50/p95 (queueing included);
- HTTP requests to the model servers per answer (the server's /health counter);
- the controller's work: CPU time of the `wsd serve` process (everything it does
  outside waiting on HTTP: relaying, JSON, SSE, the switch rule, storing; with a
  local drafter also llama.cpp's drafting) per answer, and over the summed answer
  times (send to last byte, so queueing counts as answer time);
- with `--server-pid` (the model servers' processes, their children counted too): the
  controller's share of all the CPU time spent on the round.

Every answer is checked: HTTP 200, a final chunk, and its streamed text equal to the
final chunk's spans (the answer's own trace). Linux only (/proc for CPU times). Exit
status 1 when a check fails.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from devtools.serve_load import TOPICS, Result, Server, client_for, percentile, prompt_for, start_server, stream_answer

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, its threads included (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime


def process_tree(root: int) -> list[int]:
    """`root` and its descendants."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def tree_cpu_seconds(roots: list[int]) -> float:
    return sum(cpu_seconds(pid) for root in roots for pid in process_tree(root))


@dataclass
class Row:
    clients: int
    answers: int
    tokens: int
    wall_s: float
    ttft: list[float]
    requests: int
    controller_cpu_s: float
    answer_s: float  # the answers' times summed (send to last byte)
    servers_cpu_s: float | None

    def cells(self) -> list[str]:
        share_all = (f"{self.controller_cpu_s / (self.controller_cpu_s + self.servers_cpu_s) * 100:.1f} %"
                     if self.servers_cpu_s else "–")
        return [str(self.clients), str(self.answers), f"{self.tokens / self.wall_s:.1f}",
                f"{percentile(self.ttft, 0.5):.2f}", f"{percentile(self.ttft, 0.95):.2f}",
                f"{self.requests / self.answers:.1f}", f"{self.controller_cpu_s / self.answers * 1000:.0f}",
                f"{self.controller_cpu_s / self.answer_s * 100:.1f} %", share_all]


HEADER = ["clients", "answers", "total tok/s", "TTFT p50 s", "TTFT p95 s", "requests/answer",
          "controller CPU ms/answer", "controller CPU / answer time", "controller / all CPU"]


def run_round(server: Server, clients: int, prompts: list[str], max_tokens: int,
              server_pids: list[int]) -> tuple[Row, list[Result]]:
    results: list[Result] = []
    lock = threading.Lock()
    per_client = [prompts[i::clients] for i in range(clients)]

    def client(mine: list[str]) -> None:
        with client_for(server) as http:
            for prompt in mine:
                result = stream_answer(server, prompt, {"max_tokens": max_tokens}, http=http)
                with lock:
                    results.append(result)

    with client_for(server) as probe:
        requests_before = probe.get("/health").json()["model_server_requests"]
    pid = server.process.pid if server.process else 0
    controller_before, servers_before = cpu_seconds(pid), tree_cpu_seconds(server_pids)
    threads = [threading.Thread(target=client, args=(mine,)) for mine in per_client]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=1800)
    wall = time.perf_counter() - started
    controller = cpu_seconds(pid) - controller_before
    servers = tree_cpu_seconds(server_pids) - servers_before if server_pids else None
    with client_for(server) as probe:
        requests = probe.get("/health").json()["model_server_requests"] - requests_before
    row = Row(clients, len(results), sum(r.tokens for r in results), wall,
              [r.ttft for r in results if r.ttft is not None], requests, controller,
              sum(r.ended_at - r.sent_at for r in results), servers)
    return row, results


def check(results: list[Result], expected: int) -> list[str]:
    failures = []
    if len(results) != expected:
        failures.append(f"{expected - len(results)} answers lost")
    for r in results:
        spans = "".join(s["text"] for s in ((r.final or {}).get("wsd") or {}).get("spans", []))
        if r.error is not None or r.status != 200 or r.final is None:
            failures.append(f"{r.prompt!r} failed: {r.error}")
        elif spans != r.text:
            failures.append(f"{r.prompt!r}: the streamed text is not its own answer's spans")
    return failures


def markdown(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(row.cells()) + " |" for row in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.serve_scaling",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--drafter", required=True, help="as for wsd serve (a URL, a name or a GGUF)")
    parser.add_argument("--base", required=True, help="as for wsd serve")
    parser.add_argument("--clients", default="1,2,4,8", help="client counts, comma-separated")
    parser.add_argument("--answers", type=int, default=2, help="answers per client, back to back")
    parser.add_argument("--max-tokens", type=int, default=24)
    parser.add_argument("--mode", default="wsd")
    parser.add_argument("--server-pid", type=int, action="append", default=[],
                        help="a model server's process id (repeatable): its CPU time is counted")
    parser.add_argument("--label", default="", help="a name for the table")
    args = parser.parse_args(argv)
    counts = [int(c) for c in args.clients.split(",")]
    if max(counts) * args.answers > len(TOPICS):
        parser.error(f"at most {len(TOPICS)} distinct prompts per round: lower --clients or --answers")

    failures: list[str] = []
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="wsd-serve-scaling-") as tmp:
        server = start_server(Path(tmp), ["--drafter", args.drafter, "--base", args.base, "--mode", args.mode,
                                          "--max-concurrency", str(max(counts)),
                                          "--max-queue", str(max(counts) * args.answers)])
        try:
            ready = (Path(tmp) / "serve.stdout").read_text().splitlines()[0]
            print(ready, flush=True)
            warm = stream_answer(server, "Say hello.", {"max_tokens": 8})
            failures += check([warm], 1)
            for count in counts:
                prompts = [prompt_for(t) for t in TOPICS[: count * args.answers]]
                row, results = run_round(server, count, prompts, args.max_tokens, args.server_pid)
                failures += check(results, len(prompts))
                rows.append(row)
                print(f"{count} clients: " + " · ".join(f"{h} {c}" for h, c in zip(HEADER[1:], row.cells()[1:])),
                      flush=True)
        finally:
            server.stop()
    print(f"\n{args.label or 'wsd serve'} · {os.cpu_count()} CPUs · mode {args.mode} · "
          f"{args.answers} answers per client · max_tokens {args.max_tokens}\n")
    print(markdown(rows))
    for failure in failures:
        print(f"FAILED: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
