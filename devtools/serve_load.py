"""Load test of `wsd serve`: concurrent streaming clients, clients that leave mid-answer,
and the server's cost per token against the engine in-process.

    python -m devtools.serve_load            # starts its own server, then reports

1. Reference: every prompt is answered by the engine in this process (greedy), so each
   served answer can be checked against the answer to *its* prompt.
2. Overhead: a few prompts, one at a time, through the server (streaming) and in-process,
   interleaved, best of `--repeats` each: time per answer token, and the difference.
3. Load: `--clients` threads each stream `--requests` answers back to back, while
   `--leavers` clients start a long answer and disconnect after a few text chunks.
   Every answer must equal its reference and its own final chunk's spans; every answer
   must be stored exactly once (complete, or stopped for the leavers); none may be lost.
   Reports time to first token (p50/p95, queueing included) and tokens per second.

Bounded: fixed prompt counts and token limits; the server is always stopped. The
clients are httpx (a core dependency) with the project's one SSE parser
(`backend.http.sse_json`). Exit status 1 when a check fails.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from wsd_local.backend.http import SseBroken, SseUnfinished, sse_json

TOPICS = (
    "watering house plants", "learning to juggle", "saving money on groceries", "running in the rain",
    "making fresh pasta", "keeping a diary", "painting a small room", "choosing a bicycle",
    "planting tomatoes", "writing a cover letter", "learning chess openings", "brewing green tea",
    "packing a suitcase", "cleaning a laptop keyboard", "training a puppy to sit", "baking bread",
    "reading more books", "fixing a squeaky door", "staying focused at work", "making friends in a new city",
    "caring for a cactus", "starting to meditate", "organising a closet", "learning to swim",
    "taking better photos", "cooking rice", "planning a picnic", "sleeping on a plane",
    "keeping bees", "tuning a guitar", "walking in the mountains", "speaking in public",
)
LEAVER_PROMPT = "Tell me a long story about {topic}."
WARM_UP_PROMPT = "Say hello."


def prompt_for(topic: str) -> str:
    return f"Give me one tip about {topic}."


@dataclass
class Result:
    prompt: str
    status: int = 0
    sent_at: float = 0.0
    first_text_at: float | None = None
    ended_at: float = 0.0
    text: str = ""
    final: dict[str, Any] | None = None  # the last chunk (finish_reason, wsd extras)
    left: bool = False  # this client disconnected on purpose
    error: str | None = None

    @property
    def ttft(self) -> float | None:
        return None if self.first_text_at is None else self.first_text_at - self.sent_at

    @property
    def tokens(self) -> int:
        usage = (self.final or {}).get("usage") or {}
        return int(usage.get("completion_tokens", 0))


@dataclass
class Server:
    url: str
    api_key: str
    process: subprocess.Popen | None = None
    data_dir: Path | None = None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_server(data_dir: Path, extra_args: list[str]) -> Server:
    api_key = secrets.token_hex(8)
    env = {**os.environ, "WSD_DATA_DIR": str(data_dir), "WSD_SERVE_API_KEY": api_key,
           "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}
    out, err = data_dir / "serve.stdout", data_dir / "serve.stderr"
    with open(out, "wb") as stdout, open(err, "wb") as stderr:
        process = subprocess.Popen([sys.executable, "-m", "wsd_local.cli", "serve", "--port", "0",
                                    *extra_args], stdout=stdout, stderr=stderr, env=env)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        match = re.search(r"listening on (http://[^/\s]+)/v1", out.read_text(errors="replace"))
        if match:
            return Server(match.group(1), api_key, process, data_dir)
        if process.poll() is not None:
            break
        time.sleep(0.1)
    Server("", "", process).stop()
    raise SystemExit(f"wsd serve did not start:\n{err.read_text(errors='replace')}")


def stream_answer(server: Server, prompt: str, body: dict[str, Any], leave_after: int | None = None,
                  http: httpx.Client | None = None) -> Result:
    """One streaming request; with `leave_after`, disconnect after that many text chunks.
    `http`: a client to reuse (its connections are kept), else one for this request."""
    result = Result(prompt)
    payload = {"messages": [{"role": "user", "content": prompt}], "stream": True,
               "stream_options": {"include_usage": True}, **body}
    own = http is None
    client = http or client_for(server)
    try:
        result.sent_at = time.perf_counter()
        with client.stream("POST", "/v1/chat/completions", json=payload) as response:
            result.status = response.status_code
            if response.status_code != 200:
                result.error = response.read().decode(errors="replace")
                return result
            chunks = 0
            for chunk in sse_json(response.iter_lines()):
                if "error" in chunk:
                    result.error = chunk["error"]["message"]
                    break
                if not chunk["choices"]:  # the usage chunk
                    assert result.final is not None
                    result.final["usage"] = chunk["usage"]
                    continue
                choice = chunk["choices"][0]
                text = choice["delta"].get("content")
                if text:
                    if result.first_text_at is None:
                        result.first_text_at = time.perf_counter()
                    result.text += text
                    chunks += 1
                    if leave_after is not None and chunks >= leave_after:
                        result.left = True
                        break  # leaving the block closes the connection: the disconnect
                if choice.get("finish_reason"):
                    result.final = chunk
    except (httpx.HTTPError, SseBroken, SseUnfinished, ValueError, KeyError) as exc:
        result.error = f"{type(exc).__name__}: {exc}"
    finally:
        result.ended_at = time.perf_counter()
        if own:
            client.close()
    return result


def client_for(server: Server) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=600,
                        headers={"Authorization": f"Bearer {server.api_key}"})


def relay_cost_per_token(engine: Any, prompt: str, settings: Any, repeats: int = 5) -> float:
    """Microseconds per answer token the worker and the event loop spend on one answer
    besides decoding: relaying its events and encoding its chunks."""
    from wsd_local.events import Finished
    from wsd_local.messages import Message
    from wsd_local.server.relay import AnswerRelay, TextDelta
    from wsd_local.server.request import ServeRequest
    from wsd_local.server.streaming import Completion

    events = list(engine.generate(prompt, settings))
    finished = events.pop()
    assert isinstance(finished, Finished)
    trace = finished.trace
    tokens = trace.answer_tokens
    completion = Completion("model", ServeRequest([Message("user", prompt)], settings, logprobs=True))
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        relay = AnswerRelay(settings.mode, (), logprobs=True)
        for event in events:
            for out in relay.feed(event):
                if isinstance(out, TextDelta):
                    json.dumps(completion.chunk({"content": out.text, "wsd": {"model": out.model}},
                                                logprobs=out.logprobs), ensure_ascii=False)
        relay.finish(trace)
        best = min(best, time.perf_counter() - start)
    return best / max(tokens, 1) * 1e6


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


@dataclass
class Report:
    lines: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def say(self, text: str = "") -> None:
        self.lines.append(text)
        print(text, flush=True)

    def check(self, ok: bool, what: str) -> None:
        if not ok:
            self.failures.append(what)
            print(f"FAILED: {what}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.serve_load",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=3, help="answers per client, back to back")
    parser.add_argument("--leavers", type=int, default=4, help="clients that disconnect mid-answer")
    parser.add_argument("--leave-after", type=int, default=3, help="text chunks a leaver reads")
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--overhead-prompts", type=int, default=4)
    parser.add_argument("--overhead-max-tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3, help="best of N for the overhead runs")
    parser.add_argument("--ctx", type=int, default=2048)
    args = parser.parse_args(argv)

    n_load = args.clients * args.requests
    if n_load + args.leavers + args.overhead_prompts > len(TOPICS):
        parser.error(f"at most {len(TOPICS)} distinct prompts: lower --clients/--requests/--leavers")
    load_prompts = [prompt_for(t) for t in TOPICS[:n_load]]
    overhead_prompts = [prompt_for(t) for t in TOPICS[n_load: n_load + args.overhead_prompts]]
    leaver_prompts = [LEAVER_PROMPT.format(topic=t) for t in
                      TOPICS[n_load + args.overhead_prompts: n_load + args.overhead_prompts + args.leavers]]

    from wsd_local.settings import DecodingSettings, RuntimeSettings
    from wsd_local.engine import Engine
    from wsd_local.store import Store

    report = Report()
    load_settings = DecodingSettings(max_tokens=args.max_tokens)
    overhead_settings = DecodingSettings(max_tokens=args.overhead_max_tokens)
    with tempfile.TemporaryDirectory(prefix="wsd-serve-load-") as tmp:
        data_dir = Path(tmp)
        os.environ["WSD_DATA_DIR"] = str(data_dir / "bench")  # this process's llama.log
        engine = Engine.load(runtime=RuntimeSettings(n_ctx=args.ctx, n_gpu_layers=0))
        server = start_server(data_dir, ["--ctx", str(args.ctx), "--n-gpu-layers", "0",
                                         "--max-queue", "16"])
        try:
            report.say(f"wsd serve load test · server {server.url} · {os.cpu_count()} CPUs · "
                       f"{args.clients} clients x {args.requests} requests (max_tokens {args.max_tokens}) "
                       f"+ {args.leavers} leavers")
            # 1. references
            started = time.perf_counter()
            expected = {p: engine.run(p, load_settings).answer for p in load_prompts}
            report.say(f"references: {len(expected)} answers in-process in "
                       f"{time.perf_counter() - started:.1f} s")

            # 2. overhead: in-process vs served, interleaved, best of N (after one served
            # answer, so that both processes have their models paged in)
            warm_up = stream_answer(server, WARM_UP_PROMPT, {"max_tokens": 16})
            report.check(warm_up.final is not None, f"the warm-up request failed: {warm_up.error}")
            best_engine: dict[str, float] = {}
            best_served: dict[str, float] = {}
            best_outside: dict[str, float] = {}  # served wall time minus the engine's time in the server
            tokens: dict[str, int] = {}
            served_ttft: list[float] = []
            for _ in range(args.repeats):
                for prompt in overhead_prompts:
                    start = time.perf_counter()
                    trace = engine.run(prompt, overhead_settings)
                    best_engine[prompt] = min(best_engine.get(prompt, 1e9), time.perf_counter() - start)
                    result = stream_answer(server, prompt, {"max_tokens": args.overhead_max_tokens})
                    report.check(result.final is not None and result.text == trace.answer,
                                 f"overhead run of {prompt!r} differs from the in-process answer")
                    wall = result.ended_at - result.sent_at
                    best_served[prompt] = min(best_served.get(prompt, 1e9), wall)
                    inside = ((result.final or {}).get("wsd") or {}).get("timings", {}).get("total_s", wall)
                    best_outside[prompt] = min(best_outside.get(prompt, 1e9), wall - inside)
                    tokens[prompt] = result.tokens
                    if result.ttft is not None:
                        served_ttft.append(result.ttft)
            total_tokens = sum(tokens.values())
            engine_s, served_s = sum(best_engine.values()), sum(best_served.values())
            report.say(f"overhead: {len(overhead_prompts)} prompts x {args.overhead_max_tokens} max tokens, "
                       f"{total_tokens} answer tokens, best of {args.repeats}: in-process "
                       f"{engine_s * 1000 / total_tokens:.2f} ms/token, served (streaming, one client) "
                       f"{served_s * 1000 / total_tokens:.2f} ms/token -> "
                       f"{(served_s - engine_s) * 1000 / total_tokens:+.2f} ms/token "
                       f"({(served_s / engine_s - 1) * 100:+.1f} %); outside the engine (HTTP, queue, "
                       f"SSE): {sum(best_outside.values()) * 1000 / total_tokens:.2f} ms/token; time to "
                       f"first text alone: p50 {statistics.median(served_ttft):.2f} s")

            # The server's own work per token, apart from the engine: the relay and the
            # chunk's JSON, replayed over one answer's recorded events (best of 5).
            relay_us = relay_cost_per_token(engine, overhead_prompts[0], overhead_settings)
            report.say(f"relay + chunk encoding (replayed events, in-process): {relay_us:.0f} us/token "
                       f"({relay_us / 10 / (engine_s * 1000 / total_tokens):.2f} % of in-process decoding)")

            # 3. load
            results: list[Result] = []
            lock = threading.Lock()

            def client(prompts: list[str]) -> None:
                for prompt in prompts:
                    r = stream_answer(server, prompt, {"max_tokens": args.max_tokens})
                    with lock:
                        results.append(r)

            def leaver(prompt: str) -> None:
                r = stream_answer(server, prompt, {"max_tokens": 400, "wsd": {"draft_max_tokens": 400}},
                                  leave_after=args.leave_after)
                with lock:
                    results.append(r)

            threads = [threading.Thread(target=client, args=(load_prompts[i::args.clients],))
                       for i in range(args.clients)]
            threads += [threading.Thread(target=leaver, args=(p,)) for p in leaver_prompts]
            started = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=1800)
            wall = time.perf_counter() - started
            report.check(not any(t.is_alive() for t in threads), "a client did not finish")

            answered = [r for r in results if not r.left and r.prompt in expected]
            leavers = [r for r in results if r.prompt in leaver_prompts]
            report.check(len(answered) == n_load, f"{n_load - len(answered)} answers lost")
            report.check(len(leavers) == args.leavers, "a leaver did not report")
            for r in answered:
                report.check(r.error is None and r.status == 200, f"{r.prompt!r} failed: {r.error}")
                report.check(r.text == expected.get(r.prompt),
                             f"{r.prompt!r}: the served answer is not the answer to this prompt")
                spans = "".join(s["text"] for s in ((r.final or {}).get("wsd") or {}).get("spans", []))
                report.check(spans == r.text, f"{r.prompt!r}: streamed text != its final spans")
            for r in leavers:
                report.check(r.left and r.error is None, f"leaver {r.prompt!r} did not leave mid-answer: {r.error}")
            ttft = [r.ttft for r in answered if r.ttft is not None]
            answer_tokens = sum(r.tokens for r in answered)
            rates = [r.tokens / (r.ended_at - r.first_text_at) for r in answered
                     if r.first_text_at is not None and r.ended_at > r.first_text_at and r.tokens > 1]
            report.say(f"load: {len(answered)} answers + {len(leavers)} left in {wall:.1f} s · time to first "
                       f"text p50 {percentile(ttft, 0.5):.2f} s, p95 {percentile(ttft, 0.95):.2f} s (queueing "
                       f"included: one pair answers one request at a time) · {answer_tokens} answer tokens, "
                       f"{answer_tokens / wall:.1f} tokens/s overall · per answer while streaming: "
                       f"p50 {percentile(rates, 0.5):.1f} tokens/s")
        finally:
            server.stop()
            engine.close()

        # 4. the store: every request once; leavers stopped, the rest as the client got them
        with Store(data_dir / "chats.sqlite3") as store:
            chats = store.list_chats(source="serve")
            by_prompt: dict[str, list] = {}
            for chat in chats:
                messages = store.messages(chat.id)
                by_prompt.setdefault(messages[0].content, []).append(messages[-1])
        sent = [r.prompt for r in results] + [p for p in overhead_prompts for _ in range(args.repeats)]
        sent.append(WARM_UP_PROMPT)
        report.check(len(chats) == len(sent), f"{len(chats)} stored chats for {len(sent)} requests")
        for r in answered:
            stored = by_prompt.get(r.prompt, [])
            report.check(len(stored) == 1 and stored[0].content == r.text and stored[0].status == "complete",
                         f"{r.prompt!r} is not stored once, complete, as served")
        for r in leavers:
            stored = by_prompt.get(r.prompt, [])
            report.check(len(stored) == 1 and stored[0].status == "stopped",
                         f"leaver {r.prompt!r} is not stored once as stopped")
            if stored:
                written = stored[0].trace.counts if stored[0].trace else {}
                report.check(written.get("draft_tokens", 0) + written.get("base_tokens", 0) < 400,
                             f"leaver {r.prompt!r} was not cut short")
        report.say(f"store: {len(chats)} served chats, one per request; {len(leavers)} stopped")
    report.say("all checks passed" if not report.failures else f"{len(report.failures)} checks FAILED")
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
