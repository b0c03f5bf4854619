"""The life of one answer in the chat: stored row, widget, worker, events, saves, stop.

One answer is written at a time. Its phase is one value (`AnswerPhase`):

    IDLE ──ask──▶ WAITING_FOR_MODELS ──models ready──▶ WRITING ──esc──▶ STOPPING
      ▲   └──────────── models loaded ───────────────────▲   │             │
      └────────── finished / stopped / failed ◀──────────────┴─────────────┘

The engine's blocking generator runs in a thread worker that only posts events; every
widget change happens on the UI thread, here, and the answer is stored through its
`AnswerSession` (pending while written, saved every `SAVE_INTERVAL`, then its end).
"""

from __future__ import annotations

import enum
import itertools
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterable

from textual.message import Message
from textual.worker import Worker, WorkerState, get_current_worker

from wsd_local.answer_session import AnswerSession
from wsd_local.events import Event, Finished, PhaseChanged
from wsd_local.terminal_text import terminal_safe
from wsd_local.trace import SERVER_STOPS, Trace

from ..errors import describe_error
from ..widgets.answer import FAILED, STOPPED_S, STOPPING, AnswerState, AnswerWidget
from .dialogs import ErrorDialog

if TYPE_CHECKING:
    from .chat import ChatScreen

Produce = Callable[[threading.Event], Iterable[Event]]

_run_ids = itertools.count(1)


class AnswerPhase(enum.Enum):
    IDLE = "idle"
    WAITING_FOR_MODELS = "waiting for models"  # a question arrived while the models load
    WRITING = "writing"
    STOPPING = "stopping"  # esc pressed; the engine ends at its next step


@dataclass
class Run:
    """One answer being written."""
    widget: AnswerWidget
    session: AnswerSession
    cancel: threading.Event = field(default_factory=threading.Event)
    id: int = field(default_factory=lambda: next(_run_ids))
    worker: Worker[None] | None = None


class AnswerEvent(Message):
    """An engine event, posted by the generation worker."""

    def __init__(self, run_id: int, event: Event) -> None:
        super().__init__()
        self.run_id = run_id
        self.event = event


class AnswerLifecycle:
    """Owned by the chat screen; called on the UI thread only."""

    WORKER_GROUP = "answer"

    def __init__(self, screen: "ChatScreen") -> None:
        self.screen = screen
        self.phase = AnswerPhase.IDLE
        self.run: Run | None = None

    @property
    def idle(self) -> bool:
        return self.phase is AnswerPhase.IDLE

    # -- waiting for the models ----------------------------------------------------------
    def wait_for_models(self, mode: str) -> None:
        """The question is stored; show a waiting answer until the models are loaded."""
        self.phase = AnswerPhase.WAITING_FOR_MODELS
        widget = AnswerWidget(AnswerState.waiting(mode), classes="waiting-answer")
        self.screen.view.mount(widget)

    def models_ready(self, start: Callable[[], None]) -> None:
        if self.phase is AnswerPhase.WAITING_FOR_MODELS:
            self.phase = AnswerPhase.IDLE
            start()

    def models_failed(self, message: str) -> None:
        if self.phase is not AnswerPhase.WAITING_FOR_MODELS:
            return
        self.phase = AnswerPhase.IDLE
        for widget in self._waiting_widgets():
            widget.state.status = FAILED
            widget.state.error = message
            widget.remove_class("waiting-answer")
            widget.redraw()

    def _waiting_widgets(self) -> list[AnswerWidget]:
        return list(self.screen.view.query(".waiting-answer").results(AnswerWidget))

    # -- writing ---------------------------------------------------------------------
    def start(self, chat_id: int, mode: str, produce: Produce, label: str | None = None) -> None:
        """Write an answer at the end of the chat from `produce(cancel)`'s events."""
        for waiting in self._waiting_widgets():
            waiting.remove()
        session = AnswerSession.start(self.screen.wsd_app.store, chat_id)
        widget = AnswerWidget(AnswerState.waiting(mode, label=label), message_id=session.answer_id)
        self.screen.view.mount(widget)
        self.screen.view.follow()
        run = Run(widget=widget, session=session)
        self.run, self.phase = run, AnswerPhase.WRITING
        self.screen.status.set(phase="starting", tokens_per_second=None)
        run.worker = self.screen.run_worker(lambda: self._generate(run, produce), thread=True,
                                            exclusive=True, exit_on_error=False,
                                            group=self.WORKER_GROUP)

    def _generate(self, run: Run, produce: Produce) -> None:
        """The worker thread: run the engine, post every event to the screen."""
        worker = get_current_worker()
        for event in produce(run.cancel):
            if worker.is_cancelled:  # the app is closing
                run.cancel.set()
            self.screen.post_message(AnswerEvent(run.id, event))

    def on_event(self, message: AnswerEvent) -> None:
        run = self.run
        if run is None or message.run_id != run.id:
            return  # an earlier answer's late event
        event = message.event
        run.widget.state.apply(event)
        run.widget.dirty = True
        if isinstance(event, PhaseChanged) and self.phase is AnswerPhase.WRITING:
            self.screen.status.set(phase=event.phase)
        elif isinstance(event, Finished):
            self._finish(run, event.trace)

    def flush(self) -> None:
        """Timer: redraw the streaming answer and save its text now and then."""
        run = self.run
        if run is None:
            return
        if run.widget.dirty:
            run.widget.redraw()
            rate = run.widget.state.tokens_per_second
            if rate is not None:
                self.screen.status.set(tokens_per_second=rate)
        run.session.save_partial(run.widget.state.text)

    def _finish(self, run: Run, trace: Trace) -> None:
        run.session.finish(trace)
        run.widget.redraw()
        self._done("model server failed" if trace.stop_reason in SERVER_STOPS
                   else "stopped" if trace.stopped_early else "ready")
        if trace.stop_reason in SERVER_STOPS:
            self.screen.notify(f"The answer is incomplete: {terminal_safe(trace.stop_note, one_line=True)}",
                               severity="warning", timeout=10, markup=False)  # the note quotes the server
        self.screen.update_legend()

    def _done(self, phase_label: str) -> None:
        self.run, self.phase = None, AnswerPhase.IDLE
        self.screen.status.set(phase=phase_label)

    def on_worker_state(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        run = self.run
        if worker.group != self.WORKER_GROUP or run is None or run.worker is not worker:
            return  # an earlier answer's worker, already finished through its events
        if event.state == WorkerState.ERROR:
            self._fail(run, worker.error)
        elif event.state in (WorkerState.SUCCESS, WorkerState.CANCELLED):
            # The generator ended without a Finished event: keep what was written.
            state = run.widget.state
            state.status = STOPPED_S
            run.session.stop(state.text)
            run.widget.redraw()
            self._done("stopped")

    def _fail(self, run: Run, error: BaseException | None) -> None:
        message = describe_error(error)
        state = run.widget.state
        if state.label and not state.text:
            # A re-run that wrote nothing: the dialog says why; no empty answer is left behind.
            run.session.discard()
            run.widget.remove()
        else:
            state.status = FAILED
            state.error = message
            run.session.fail(state.text, message)
            run.widget.redraw()
        self._done("error")
        self.screen.app.push_screen(ErrorDialog("The answer failed", message))

    # -- stopping ----------------------------------------------------------------------
    def stop(self) -> bool:
        """Esc: stop what is in flight; False when there was nothing to stop."""
        if self.phase is AnswerPhase.WAITING_FOR_MODELS:
            # Not started yet: forget the pending answer; the question stays saved.
            self.phase = AnswerPhase.IDLE
            for waiting in self._waiting_widgets():
                waiting.remove()
            self.screen.notify("Not answered; ctrl+r answers the question once the models are loaded.")
            return True
        run = self.run
        if run is None:
            return False
        run.cancel.set()  # the engine finishes soon with a trace of what was written
        self.phase = AnswerPhase.STOPPING
        run.widget.state.status = STOPPING
        run.widget.dirty = True
        self.screen.status.set(phase="stopping")
        return True

    def stop_for_exit(self) -> None:
        """The app is closing mid-answer: stop the worker and save what was written."""
        run = self.run
        if run is None:
            return
        run.cancel.set()  # let the worker thread end, so the process can exit
        self.run, self.phase = None, AnswerPhase.IDLE
        run.session.stop(run.widget.state.text)


__all__ = ["AnswerLifecycle", "AnswerPhase", "AnswerEvent", "Run"]
