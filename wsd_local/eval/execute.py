"""The resumable run: every prompt x mode (x turn) once, each answer saved as it ends.

`plan_run` compares the prompt set with what the run file already holds (same run
fingerprint, id, mode and turn) and returns what is left; `run_plan` answers it, writing
one line per answer through `RunWriter` (flushed and fsync'd), so a killed run loses at
most the answer in progress. Later turns of a conversation are answered after the
previous turn's answer of the same mode, also when that answer came from an earlier,
interrupted run.
"""

from __future__ import annotations

import re
import threading
from collections import deque
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from ..answer import LiveAnswer
from ..settings import DecodingSettings
from ..errors import WsdError
from ..events import Event, Finished
from ..trace import Trace
from .inputs import EvalItem
from .progress import Progress, answer_label
from .records import answer_record, error_record
from .runfile import RunContents, RunFileError, RunFileRefused, RunWriter, write_json_atomic


@dataclass
class Task:
    """One prompt in one mode: turns `first_turn..` are still to answer."""

    item: EvalItem
    mode: str
    first_turn: int
    earlier_answers: list[str]  # the stored answers of turns before first_turn

    @property
    def answers_left(self) -> int:
        return self.item.turns - self.first_turn


@dataclass
class Plan:
    fp: str
    settings: DecodingSettings  # the run's settings; each task sets its mode
    tasks: list[Task]
    done: int  # answers already in the file

    @property
    def answers_left(self) -> int:
        return sum(t.answers_left for t in self.tasks)

    @property
    def modes(self) -> list[str]:
        return list(dict.fromkeys(t.mode for t in self.tasks))


@dataclass
class RunSummary:
    written: int = 0
    failed: list[str] = field(default_factory=list)
    cancelled: bool = False


def plan_run(items: list[EvalItem], modes: list[str], fp: str, settings: DecodingSettings,
             contents: RunContents, force: bool = False) -> Plan:
    """What is left to answer. A prompt whose text changed since its answer was written
    is refused (its id now means another prompt) unless `force`, which answers it again."""
    settings.check_modes(modes)
    tasks: list[Task] = []
    done = 0
    for item in items:
        for mode in modes:
            earlier: list[str] = []
            for turn in range(item.turns):
                record = contents.answers.get((fp, item.id, mode, turn))
                if record is None:
                    break
                if record.get("prompt_sha") != item.sha:
                    if not force:
                        raise RunFileRefused(
                            f"the prompt with id {item.id!r} (line {item.line}) is not the one answered "
                            f"in {contents.path}", "use another output file, or --force to answer "
                            "it again (the new answer replaces the old one)")
                    break
                earlier.append(record["answer"])
            done += len(earlier)
            if len(earlier) < item.turns:
                tasks.append(Task(item, mode, len(earlier), earlier))
    return Plan(fp, settings, tasks, done)


def run_plan(engine: Any, plan: Plan, writer: RunWriter, progress: Progress,
             cancel: threading.Event, traces_dir: Path | None = None, concurrency: int = 1) -> RunSummary:
    """Answer every task; stops after the current answer when `cancel` is set (the
    answer cut short is not written: the next run answers it again).

    With `concurrency` 1 the tasks run in order. With N (a pair served entirely by
    model servers, `wsd eval --concurrency N`, engine_pool.py) each of N threads takes
    the next task in order, so up to N answers run at once; the turns of one conversation still run
    one after another. Lines are written as answers end (the file is keyed by id, mode
    and turn; reports and exports sort by the prompt's line)."""
    summary = RunSummary()
    progress.start(plan.answers_left, plan.done)
    try:
        if concurrency <= 1:
            for task in plan.tasks:
                if not _run_task(engine, plan, task, writer, progress, summary, cancel, traces_dir,
                                 threading.RLock()):
                    break
        else:
            _run_side_by_side(engine, concurrency, plan, writer, _LockedProgress(progress), summary, cancel,
                              traces_dir)
    finally:
        progress.close()
    return summary


def _run_side_by_side(engine: Any, concurrency: int, plan: Plan, writer: RunWriter, progress: "_LockedProgress",
                      summary: RunSummary, cancel: threading.Event, traces_dir: Path | None) -> None:
    tasks = deque(plan.tasks)
    taken = threading.Lock()
    errors: list[BaseException] = []

    def work() -> None:
        while True:
            with taken:
                if not tasks or errors:
                    return
                task = tasks.popleft()
            try:
                if not _run_task(engine, plan, task, writer, progress, summary, cancel, traces_dir,
                                 progress.lock):
                    return
            except BaseException as exc:  # noqa: BLE001 - re-raised by the caller's thread
                with taken:
                    errors.append(exc)
                cancel.set()  # the others stop too: the run file cannot be written
                return

    threads = [threading.Thread(target=work, name=f"wsd-eval-{i}", daemon=True)
               for i in range(1, concurrency + 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        while thread.is_alive():  # a timed join lets Ctrl+C's handler run meanwhile
            thread.join(0.2)
    if errors:
        raise errors[0]


def _run_task(engine: Any, plan: Plan, task: Task, writer: RunWriter, progress: Any, summary: RunSummary,
              cancel: threading.Event, traces_dir: Path | None, lock: threading.RLock) -> bool:
    """Answer the task's turns in order; False when the run was stopped. `lock` guards
    the run file, the summary and the display (shared by a concurrent run's threads)."""
    answers = list(task.earlier_answers)
    for turn in range(task.first_turn, task.item.turns):
        if cancel.is_set():
            summary.cancelled = True
            return False
        settings = plan.settings.with_changes(mode=task.mode)
        label = answer_label(task.item.id, task.mode, turn, task.item.turns)
        progress.begin(label)
        try:
            record = _answer(engine, plan.fp, task.item, turn, answers, settings,
                             progress, cancel, traces_dir, writer.path)
        except WsdError as exc:
            if isinstance(exc, (RunFileError, RunFileRefused)):
                raise
            message = exc.one_line()
            with lock:
                writer.append(error_record(plan.fp, task.item, turn, task.mode, message))
                summary.failed.append(f"{task.item.id} · {task.mode} · turn {turn + 1}: {message}")
                progress.failed(label, message)
            return True  # later turns need this answer; other tasks go on
        if record is None:  # stopped by Ctrl+C mid-answer
            summary.cancelled = True
            return False
        with lock:
            writer.append(record)
            summary.written += 1
            progress.end(label, record)
        answers.append(record["answer"])
    return True


class _LockedProgress:
    """The progress display shared by the threads of a concurrent run: one at a time."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self.lock = threading.RLock()

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._progress, name)

        def locked(*args: Any, **kwargs: Any) -> Any:
            with self.lock:
                return method(*args, **kwargs)
        return locked


def follow(events: Iterable[Event], live: LiveAnswer, progress: Progress) -> Trace | None:
    """Feed an answer's events to `live` and the progress display; the finished trace,
    or None when the answer was stopped (Ctrl+C)."""
    for event in events:
        live.apply(event)
        if not isinstance(event, Finished):
            progress.update(live)
    trace = live.trace
    return None if trace is None or trace.stop_reason == "cancelled" else trace


def _answer(engine: Any, fp: str, item: EvalItem, turn: int, answers: list[str],
            settings: DecodingSettings, progress: Progress, cancel: threading.Event,
            traces_dir: Path | None, run_path: Path) -> dict[str, Any] | None:
    start = time.perf_counter()
    trace = follow(engine.generate(item.conversation(turn, answers), settings, cancel),
                   LiveAnswer(mode=settings.mode), progress)
    wall = time.perf_counter() - start
    if trace is None:
        return None
    trace_path = None
    if traces_dir is not None:
        path = traces_dir / fp / f"{safe_name(item.id)}.{settings.mode}.t{turn}.json"
        write_json_atomic(path, trace.to_dict())
        trace_path = _relative_to(path, run_path.parent)
    return answer_record(fp, item, turn, trace, wall, trace_path)


def safe_name(ident: str) -> str:
    """An id as a file name: other characters become `_`, plus a short hash when
    anything was replaced (so `a/b` and `a_b` do not share a file)."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", ident)[:80] or "_"
    if cleaned != ident:
        import hashlib

        cleaned += "-" + hashlib.sha256(ident.encode()).hexdigest()[:8]
    return cleaned


def _relative_to(path: Path, folder: Path) -> str:
    try:
        return str(path.resolve().relative_to(folder.resolve()))
    except ValueError:
        return str(path.resolve())


__all__ = ["Task", "Plan", "RunSummary", "plan_run", "run_plan", "follow", "safe_name"]
