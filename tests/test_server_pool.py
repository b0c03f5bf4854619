"""The model worker with several threads: the queue's error paths (full, withdrawn,
shutdown with answers running). A fake engine whose answers run until they are
stopped: what is tested is the queue and its threads, not decoding (tests/remote/test_remote_concurrency.py
serves real answers side by side; tests/test_server_flow.py checks a local pair keeps
one worker)."""

from __future__ import annotations

import threading
import time

import pytest

from wsd_local.settings import DecodingSettings
from wsd_local.errors import WsdError
from wsd_local.messages import Message
from wsd_local.server.request import ServeRequest
from wsd_local.server.worker import Failed, Job, ModelWorker, QueueFull

THREADS = 3


class UntilStopped:
    """An engine whose answer runs until its cancel event is set, then fails."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.inside = self.most_inside = self.answers = 0

    def generate(self, messages, settings, cancel):
        with self.lock:
            self.inside += 1
            self.most_inside = max(self.most_inside, self.inside)
            self.answers += 1
        try:
            cancel.wait(60)
            raise WsdError("stopped")
            yield  # a generator, like Engine.generate
        finally:
            with self.lock:
                self.inside -= 1


def job(posted: list) -> Job:
    request = ServeRequest([Message("user", "Hi")], DecodingSettings())
    return Job(request, lambda *items: posted.extend(items))


def wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def test_n_threads_run_n_jobs_at_once_and_stop_them_all() -> None:
    engine = UntilStopped()
    worker = ModelWorker(engine, None, max_queue=2, concurrency=THREADS)
    worker.start()
    posted: list[list] = [[] for _ in range(THREADS + 3)]
    jobs = [job(out) for out in posted]
    try:
        for number, each in enumerate(jobs[:THREADS], 1):
            worker.submit(each)  # one by one: each is taken before the next arrives
            wait_until(lambda: worker.running == number, f"job {number} to start")
        for each in jobs[THREADS: THREADS + 2]:
            worker.submit(each)
        wait_until(lambda: worker.running == THREADS and worker.waiting == 2, "every engine to be busy")
        assert worker.concurrency == THREADS and worker.busy
        with pytest.raises(QueueFull):
            worker.submit(jobs[-1])

        worker.withdraw(jobs[THREADS])  # its client left while it waited: never runs
        assert worker.waiting == 1
        assert isinstance(posted[THREADS][0], Failed) and posted[THREADS][0].error.status == 499
    finally:
        worker.stop(timeout=30)
    assert not worker.alive
    # THREADS answers ran at once (no more), and every running one was stopped.
    assert engine.most_inside == THREADS and engine.answers == THREADS and engine.inside == 0
    for out in posted[:THREADS]:
        assert len(out) == 1 and isinstance(out[0], Failed) and out[0].error.status != 499
    refused = posted[THREADS + 1]
    assert len(refused) == 1 and refused[0].error.code == "shutting_down"
    assert posted[-1] == []  # refused at the door (QueueFull), never queued


def test_a_freed_thread_takes_the_next_waiting_job() -> None:
    engine = UntilStopped()
    worker = ModelWorker(engine, None, max_queue=4, concurrency=2)
    worker.start()
    posted: list[list] = [[] for _ in range(3)]
    jobs = [job(out) for out in posted]
    try:
        for each in jobs:
            worker.submit(each)
        wait_until(lambda: worker.running == 2 and worker.waiting == 1, "two running, one waiting")
        assert posted[2] == []  # waits: both threads are busy
        jobs[0].cancel.set()  # the first answer ends: its thread takes the third job
        wait_until(lambda: worker.waiting == 0 and worker.running == 2, "the third job to start")
        assert posted[0] and isinstance(posted[0][0], Failed)
        assert posted[2] == []  # running now, not refused
    finally:
        worker.stop(timeout=30)
    assert engine.answers == 3 and engine.most_inside == 2


def test_one_thread_answers_one_job_at_a_time() -> None:
    engine = UntilStopped()
    worker = ModelWorker(engine, None, max_queue=4)
    worker.start()
    posted: list[list] = [[] for _ in range(2)]
    jobs = [job(out) for out in posted]
    try:
        for each in jobs:
            worker.submit(each)
        wait_until(lambda: worker.running == 1 and worker.waiting == 1, "one running, one waiting")
        jobs[0].cancel.set()
        wait_until(lambda: worker.waiting == 0 and engine.answers == 2, "the second job to start")
    finally:
        worker.stop(timeout=30)
    assert worker.concurrency == 1 and engine.most_inside == 1
