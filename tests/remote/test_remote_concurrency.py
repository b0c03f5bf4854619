"""`wsd serve` with both models on vLLM answers several streaming clients at once, each
with its own answer: 8 clients, 8 different prompts, one `wsd serve` process, the
official `openai` client. Real vLLM; nothing timed: concurrency is read from the order
of each stream's first and last chunk."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from openai import OpenAI
from server_process import SERVE_API_KEY, ServerProcess

from wsd_local.store import Store
from wsd_local.trace import Trace

CLIENTS = 8
MAX_TOKENS = 24
TOPICS = ("baking bread", "tuning a guitar", "planting tomatoes", "learning to swim",
          "keeping bees", "packing a suitcase", "brewing green tea", "training a puppy")


@dataclass
class Stream:
    prompt: str
    text: str = ""
    first_chunk_at: float = 0.0
    last_chunk_at: float = 0.0
    final: dict = field(default_factory=dict)  # the last chunk's `wsd` extras
    error: str | None = None


@pytest.fixture(scope="module")
def both_remote(smollm2, tmp_path_factory: pytest.TempPathFactory):
    """`wsd serve` with the drafter and the base model on the smollm2 vLLM server."""
    server = ServerProcess(tmp_path_factory.mktemp("serve-both-remote"),
                           args=["--drafter", smollm2.url, "--base", smollm2.url,
                                 "--max-concurrency", str(CLIENTS), "--max-queue", str(CLIENTS),
                                 "--model-name", "wsd"],
                           env={"WSD_SERVE_API_KEY": SERVE_API_KEY, "WSD_API_KEY": smollm2.api_key or ""})
    server.start()
    yield server
    server.stop()


def stream_one(server: ServerProcess, stream: Stream, start: threading.Barrier) -> None:
    client = OpenAI(base_url=server.url + "/v1", api_key=SERVE_API_KEY, max_retries=0, timeout=300)
    try:
        start.wait(timeout=60)
        chunks = client.chat.completions.create(
            model="wsd", messages=[{"role": "user", "content": stream.prompt}], stream=True,
            max_tokens=MAX_TOKENS, temperature=0, extra_body={"wsd": {"mode": "wsd", "trace": True}})
        for chunk in chunks:
            now = time.monotonic()
            stream.first_chunk_at = stream.first_chunk_at or now
            stream.last_chunk_at = now
            if chunk.choices and chunk.choices[0].delta.content:
                stream.text += chunk.choices[0].delta.content
            if chunk.choices and chunk.choices[0].finish_reason:
                stream.final = (chunk.model_extra or {}).get("wsd") or {}
    except Exception as exc:  # noqa: BLE001 - reported by the test
        stream.error = f"{type(exc).__name__}: {exc}"
    finally:
        client.close()


def stored_answers(data_dir: Path) -> dict[str, list]:
    with Store(data_dir / "chats.sqlite3") as store:
        found: dict[str, list] = {}
        for chat in store.list_chats(source="serve"):
            messages = store.messages(chat.id)
            found.setdefault(messages[0].content, []).append(messages[-1])
        return found


def test_eight_clients_are_answered_at_once_each_with_its_own_answer(both_remote) -> None:
    ready = next(line for line in both_remote.stdout_path.read_text().splitlines()
                 if line.startswith("wsd serve: listening on"))
    assert f"up to {CLIENTS} answers at once" in ready

    streams = [Stream(f"Give me one tip about {topic}.") for topic in TOPICS[:CLIENTS]]
    start = threading.Barrier(CLIENTS)
    threads = [threading.Thread(target=stream_one, args=(both_remote, s, start)) for s in streams]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    assert not any(thread.is_alive() for thread in threads)
    assert [s.error for s in streams] == [None] * CLIENTS

    # Concurrent: the first chunk goes out when an answer starts (its prompt accepted),
    # the last when it ends. One worker would start each answer after the previous
    # one's end; here every answer started before any ended.
    assert max(s.first_chunk_at for s in streams) < min(s.last_chunk_at for s in streams)

    # Correct: each stream carries its own answer, equal to its own trace and to what
    # was stored for its prompt (every prompt differs, so mixing would show).
    stored = stored_answers(both_remote.data_dir)
    for s in streams:
        trace = Trace.from_dict(s.final["trace"])
        trace.check()
        assert trace.answer == s.text and s.text
        assert trace.messages[-1] == {"role": "user", "content": s.prompt}
        assert "".join(span["text"] for span in s.final["spans"]) == s.text
        assert len(stored[s.prompt]) == 1
        message = stored[s.prompt][0]
        assert message.status == "complete" and message.content == s.text
        assert message.trace.answer == s.text
    assert len({s.text for s in streams}) > 1  # different prompts, different answers

    with both_remote.client(SERVE_API_KEY) as http:
        health = http.get("/health").json()
    assert health["max_concurrency"] == CLIENTS and health["running"] == 0 and health["served"] == CLIENTS


def test_eval_with_both_models_remote_answers_side_by_side_and_resumes(
        smollm2, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from wsd_local.cli import main
    from wsd_local.eval.runfile import read_run

    if smollm2.api_key:
        monkeypatch.setenv("WSD_API_KEY", smollm2.api_key)
    prompts = tmp_path / "prompts.jsonl"
    topics = TOPICS[:6]
    prompts.write_text("".join(json.dumps({"id": f"p{i}", "prompt": f"Give me one tip about {t}."}) + "\n"
                               for i, t in enumerate(topics)))
    run = tmp_path / "run.jsonl"
    argv = ["eval", "run", str(prompts), "-o", str(run), "--modes", "wsd", "--drafter", smollm2.url,
            "--base", smollm2.url, "--concurrency", "3", "--max-tokens", "12"]
    assert main(argv) == 0
    assert "one prompt at a time" not in capsys.readouterr().err

    contents = read_run(run)
    assert len(contents.answers) == len(topics)
    for i, topic in enumerate(topics):
        (record,) = [r for r in contents.answers.values() if r["id"] == f"p{i}"]
        trace = Trace.from_dict(record["trace"])
        # Each line holds its own prompt's answer: the trace was asked that prompt.
        assert trace.messages[-1] == {"role": "user", "content": f"Give me one tip about {topic}."}
        assert record["prompt"] == trace.messages[-1]["content"] and record["answer"] == trace.answer

    assert main(argv) == 0  # resumed: everything is in the file
    assert "nothing to do" in capsys.readouterr().err
    assert len(read_run(run).answers) == len(topics)
