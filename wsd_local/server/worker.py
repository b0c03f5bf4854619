"""Worker threads answer with the engine; requests wait in one bounded queue, in
arrival order, and the first free thread takes the next one. A pair with a local model
gets one thread (llama.cpp contexts are not thread-safe), so its answers run one at a
time; a pair served entirely by model servers gets `concurrency` threads
(`wsd serve --max-concurrency N`, engine_pool.py), so N answers run at once and the
servers batch them.

A request is a `Job`: what to answer, a `cancel` event (set when the client leaves or
its stop string is reached; the decoder checks it at every step), and `post`, which
hands items to the request's handler on the event loop. The worker posts, in order:
`Started` once the prompt has been accepted (a prompt over the context fails before
it, as a 400), the relay's text deltas and switch mark, then `Done` with the trace as
the client got it, or `Failed`. Each job is served exactly once; a job whose client
left while it waited is dropped without running.
"""

from __future__ import annotations

import itertools
import logging
import math
import statistics
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

from ..backend.protocol import served
from ..errors import WsdError
from ..events import Finished, PhaseChanged
from ..trace import Trace
from .errors import ApiError, from_wsd_error, internal_error
from .relay import AnswerRelay
from .public import scrub
from .request import ServeRequest
from .storage import ServedAnswers

log = logging.getLogger("wsd_local.server")

_job_numbers = itertools.count(1)


@dataclass(frozen=True)
class Started:
    chat_id: int | None  # where the answer is stored (None with --no-store)


@dataclass(frozen=True)
class Done:
    trace: Trace  # the answer the client got (cut at its stop string)
    stopped_by_client: bool  # the client's stop string ended it
    chat_id: int | None
    timed_out: bool = False  # the server's deadline stopped it (the trace's stop_note says so)


@dataclass(frozen=True)
class Failed:
    error: ApiError


@dataclass(eq=False)  # each job is itself (a set member, removed from the queue by identity)
class Job:
    request: ServeRequest
    post: Callable[..., None]  # thread-safe: hands items to the request's handler
    cancel: threading.Event = field(default_factory=threading.Event)
    number: int = field(default_factory=lambda: next(_job_numbers))
    submitted_at: float = field(default_factory=time.monotonic)
    timed_out: bool = False  # stopped by the server's deadline

    def expire(self) -> None:
        self.timed_out = True
        self.cancel.set()


class QueueFull(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__("queue full")
        self.retry_after = retry_after


class ModelWorker:
    def __init__(self, engine: Any, answers: ServedAnswers | None, max_queue: int,
                 deadline_s: float | None = None, concurrency: int = 1) -> None:
        self.engine = engine
        self.answers = answers
        self.max_queue = max_queue
        self.deadline_s = deadline_s
        # A deque under a condition, not a queue.Queue: a job whose client left must
        # leave the queue at once, wherever it stands.
        self._waiting: deque[Job] = deque()
        self._changed = threading.Condition()
        self._threads = [threading.Thread(target=self._run, daemon=True, name=f"wsd-model-worker-{i}")
                         for i in range(1, max(1, concurrency) + 1)]
        self._stopping = False
        self._durations: deque[float] = deque(maxlen=20)
        self._running: set[Job] = set()  # under self._changed
        self.served = 0

    @property
    def concurrency(self) -> int:
        """How many answers run at once."""
        return len(self._threads)

    # -- the event loop's side ------------------------------------------------------------
    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def submit(self, job: Job) -> None:
        """Queue `job`; QueueFull when `max_queue` requests are already waiting."""
        with self._changed:
            if self._stopping:
                raise ApiError(503, "the server is shutting down", type="server_error", code="shutting_down")
            if len(self._waiting) >= self.max_queue:
                raise QueueFull(self.retry_after())
            self._waiting.append(job)
            self._changed.notify()

    def withdraw(self, job: Job) -> None:
        """The client left: stop `job`, and if it still waits, free its place now."""
        job.cancel.set()
        with self._changed:
            try:
                self._waiting.remove(job)
            except ValueError:
                return  # running or done: the cancel flag stops it
        log.info("request %d: the client left while it waited; not run", job.number)
        job.post(Failed(ApiError(499, "the client closed the request", code="client_closed")))

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    @property
    def alive(self) -> bool:
        """Some thread still runs (and may still use its engine)."""
        return any(thread.is_alive() for thread in self._threads)

    @property
    def running(self) -> int:
        return len(self._running)

    @property
    def busy(self) -> bool:
        return bool(self._running)

    def server_requests(self) -> int:
        """HTTP requests the engine has sent to model servers (scoring, streams,
        tokenizing), for /health and the load benchmark's requests per answer."""
        models = (getattr(self.engine, "drafter", None), getattr(self.engine, "base", None))
        clients = {id(c): c for m in models if (c := getattr(served(m), "client", None)) is not None}
        return sum(c.stats.requests for c in clients.values())

    def retry_after(self) -> int:
        """Seconds until a place in the queue is likely free: a typical answer's time
        (the threads free places in parallel)."""
        typical = statistics.median(self._durations) if self._durations else 5.0
        return max(1, min(600, math.ceil(typical / len(self._threads))))

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the answer in progress and refuse the waiting ones; wait for the thread."""
        with self._changed:
            self._stopping = True
            refused = list(self._waiting)
            self._waiting.clear()
            self._changed.notify_all()
            running = list(self._running)
        for job in running:
            job.cancel.set()
        for job in refused:
            self._refuse(job)
        end = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, end - time.monotonic()))

    # -- the worker thread ----------------------------------------------------------------
    def _next(self) -> Job | None:
        """The next job, marked running; None when the server stops."""
        with self._changed:
            while not self._waiting and not self._stopping:
                self._changed.wait()
            if self._stopping:
                return None
            job = self._waiting.popleft()
            self._running.add(job)
            return job

    def _run(self) -> None:
        while True:
            job = self._next()
            if job is None:
                return
            if job.cancel.is_set():  # left just as it was taken
                self._done(job)
                job.post(Failed(ApiError(499, "the client closed the request", code="client_closed")))
                continue
            start = time.monotonic()
            deadline = threading.Timer(self.deadline_s, job.expire) if self.deadline_s else None
            if deadline is not None:
                deadline.daemon = True
                deadline.start()
            try:
                self._serve(job)
            finally:
                if deadline is not None:
                    deadline.cancel()
                self._done(job, time.monotonic() - start)

    def _done(self, job: Job, seconds: float | None = None) -> None:
        with self._changed:
            self._running.discard(job)
            if seconds is not None:
                self._durations.append(seconds)
                self.served += 1

    def _refuse(self, job: Job) -> None:
        job.cancel.set()
        job.post(Failed(ApiError(503, "the server is shutting down", type="server_error",
                                 code="shutting_down")))

    def _serve(self, job: Job) -> None:
        request = job.request
        relay = AnswerRelay(request.settings.mode, request.stops, request.logprobs)
        stored = None
        started = False
        try:
            for event in self.engine.generate(request.messages, request.settings, job.cancel):
                if not started and not isinstance(event, PhaseChanged):
                    # The prompts are tokenized and fit: from here on this is an answer.
                    started = True
                    stored = self.answers.begin(request.messages, request.settings) if self.answers else None
                    job.post(Started(stored.chat_id if stored else None))
                if isinstance(event, Finished):
                    timed_out = job.timed_out and event.trace.stop_reason == "cancelled"
                    if timed_out:
                        event.trace.stop_note = deadline_note(self.deadline_s)
                    trace, outs = relay.finish(event.trace)
                    if stored:
                        stored.finish(trace)
                    job.post(*outs, Done(trace, relay.stopped_by_client,
                                         stored.chat_id if stored else None, timed_out))
                    log.info("request %d: %s", job.number, _summary(trace, time.monotonic() - job.submitted_at))
                    return
                outs = relay.feed(event)
                if outs:
                    job.post(*outs)
                if relay.stopped_by_client:
                    job.cancel.set()  # the engine stops at its next step
                if stored:
                    stored.save_partial(relay.sent)
            raise RuntimeError("the engine ended without a trace")
        except WsdError as exc:
            log.info("request %d refused: %s", job.number, exc.one_line())
            if stored:
                stored.fail(relay.sent, exc.one_line())
            error = from_wsd_error(exc)
            error.message = scrub(error.message, getattr(self.engine, "identities", {}))
            job.post(Failed(error))
        except Exception as exc:  # noqa: BLE001 - a bug: logged with its traceback, one line out
            log.error("request %d failed: %s: %s", job.number, type(exc).__name__, exc, exc_info=True)
            if stored:
                stored.fail(relay.sent, f"internal error: {type(exc).__name__}")
            job.post(Failed(internal_error()))


def deadline_note(seconds: float | None) -> str:
    return f"stopped at the server's deadline of {seconds:g} s per answer (wsd serve --request-timeout)"


def _summary(trace: Trace, seconds: float) -> str:
    c = trace.counts
    words = [f"mode {trace.mode}"]
    if trace.switch_index is not None:
        words.append(f"switch at {trace.switch_index}")
    words.append(f"drafter {c.get('draft_tokens', 0)} tok, base {c.get('base_tokens', 0)} tok")
    words.append(f"stop {trace.stop_reason}")
    words.append(f"{seconds:.2f}s")
    return " · ".join(words)
