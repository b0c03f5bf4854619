"""The model worker with several engines: the queue's error paths (full, withdrawn,
shutdown with answers running). Fake engines that run until they are stopped: what
is tested is the queue and its threads, not decoding (tests/remote/test_remote_concurrency.py
serves real answers side by side; tests/test_server_flow.py checks a local pair keeps
one worker)."""

from __future__ import annotations

import time

import pytest

from wsd_local.config import DecodingSettings
from wsd_local.errors import WsdError
from wsd_local.messages import Message
from wsd_local.server.request import ServeRequest
from wsd_local.server.worker import Failed, Job, ModelWorker, QueueFull

ENGINES = 3


class UntilStopped:
    """An engine whose answer runs until its cancel event is set, then fails."""

    def __init__(self) -> None:
        self.inside = 0
        self.most_inside = 0
        self.answers = 0

    def generate(self, messages, settings, cancel):
        self.inside += 1
        self.most_inside = max(self.most_inside, self.inside)
        self.answers += 1
        try:
            cancel.wait(60)
            raise WsdError("stopped")
            yield  # a generator, like Engine.generate
        finally:
            self.inside -= 1


def job(posted: list) -> Job:
    request = ServeRequest([Message("user", "Hi")], DecodingSettings())
    return Job(request, lambda *items: posted.extend(items))


def wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def test_several_engines_run_that_many_jobs_and_stop_them_all() -> None:
    engines = [UntilStopped() for _ in range(ENGINES)]
    worker = ModelWorker(engines, None, max_queue=2)
    worker.start()
    posted: list[list] = [[] for _ in range(ENGINES + 3)]
    jobs = [job(out) for out in posted]
    try:
        for number, each in enumerate(jobs[:ENGINES], 1):
            worker.submit(each)  # one by one: each is taken before the next arrives
            wait_until(lambda: worker.running == number, f"job {number} to start")
        for each in jobs[ENGINES: ENGINES + 2]:
            worker.submit(each)
        wait_until(lambda: worker.running == ENGINES and worker.waiting == 2, "every engine to be busy")
        assert worker.concurrency == ENGINES and worker.busy
        with pytest.raises(QueueFull):
            worker.submit(jobs[-1])

        worker.withdraw(jobs[ENGINES])  # its client left while it waited: never runs
        assert worker.waiting == 1
        assert isinstance(posted[ENGINES][0], Failed) and posted[ENGINES][0].error.status == 499
    finally:
        worker.stop(timeout=30)
    assert not worker.alive
    # Each engine answered one job at a time, and every running job was stopped.
    assert all(e.most_inside == 1 and e.answers == 1 for e in engines)
    for out in posted[:ENGINES]:
        assert len(out) == 1 and isinstance(out[0], Failed) and out[0].error.status != 499
    refused = posted[ENGINES + 1]
    assert len(refused) == 1 and refused[0].error.code == "shutting_down"
    assert posted[-1] == []  # refused at the door (QueueFull), never queued


def test_a_freed_engine_takes_the_next_waiting_job() -> None:
    engines = [UntilStopped() for _ in range(2)]
    worker = ModelWorker(engines, None, max_queue=4)
    worker.start()
    posted: list[list] = [[] for _ in range(3)]
    jobs = [job(out) for out in posted]
    try:
        for each in jobs:
            worker.submit(each)
        wait_until(lambda: worker.running == 2 and worker.waiting == 1, "two running, one waiting")
        assert posted[2] == []  # waits: both engines are busy
        jobs[0].cancel.set()  # the first answer ends: its engine takes the third job
        wait_until(lambda: worker.waiting == 0 and worker.running == 2, "the third job to start")
        assert posted[0] and isinstance(posted[0][0], Failed)
        assert posted[2] == []  # running now, not refused
    finally:
        worker.stop(timeout=30)
    assert sum(e.answers for e in engines) == 3 and all(e.most_inside == 1 for e in engines)
