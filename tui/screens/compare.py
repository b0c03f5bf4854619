"""Compare: one prompt through base-only, drafter-only, WSD and Nudging, side by side.

The runs go one after another in one thread worker: the engine is not thread-safe, and
on a laptop several models at once would only slow each other down.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Protocol

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Static
from textual.worker import get_current_worker

from wsd_local.settings import DecodingSettings
from wsd_local.events import Event
from wsd_local.modes import BASE_MODE, DRAFT_MODE, NUDGING_MODE, WSD_MODE, Mode, mode_named
from wsd_local.terminal_text import terminal_safe

from ..errors import describe_error
from ..widgets.spans import legend, model_labels
from .compare_state import ColumnState

COMPARE_MODES: tuple[Mode, ...] = (BASE_MODE, DRAFT_MODE, WSD_MODE, NUDGING_MODE)
FLUSH_INTERVAL = 0.05  # events only mark their column: one redraw per tick, not per token


class GeneratingEngine(Protocol):
    def generate(self, messages: Any, settings: DecodingSettings, *,
                 cancel: threading.Event) -> Any: ...


class ColumnEvent(Message):
    """A decoder event (or a start/failure) for one column, posted from the worker."""

    def __init__(self, column: int, event: Event | None = None, *, started: bool = False,
                 error: str | None = None) -> None:
        super().__init__()
        self.column = column
        self.event = event
        self.started = started
        self.error = error


class CompareDone(Message):
    pass


class CompareScreen(Screen[None]):
    BINDINGS = [
        Binding("escape", "close", "Stop and close"),
        Binding("q", "close", "Close", show=False),
    ]

    DEFAULT_CSS = """
    CompareScreen #compare-head { height: auto; padding: 0 1; }
    CompareScreen #columns { height: 1fr; }
    CompareScreen .column { width: 1fr; border: round $primary 50%; border-title-align: left; }
    CompareScreen .column.-running { border: round $accent; }
    CompareScreen .column.-error { border: round $error; }
    CompareScreen .col-body { height: 1fr; padding: 0 1; }
    CompareScreen .col-stats { height: auto; padding: 0 1; color: $text-muted; }
    CompareScreen #compare-status { height: 1; padding: 0 1; background: $boost; }
    CompareScreen #compare-status.-error { color: $error; }
    """

    def __init__(self, engine: GeneratingEngine, messages: list[dict[str, str]],
                 settings: DecodingSettings, modes: tuple[str, ...] | None = None) -> None:
        super().__init__()
        self.engine = engine
        self.messages = messages
        self.settings = settings
        if modes is None:  # the switch column follows the user's variant (online or paper)
            chosen = mode_named(settings.mode)
            modes = tuple((chosen if chosen.switches and m.switches else m).name for m in COMPARE_MODES)
        self.columns = [ColumnState(m) for m in modes]
        self.cancel = threading.Event()
        self.finished = False
        self._started_at = 0.0
        self._dirty: set[int] = set()  # columns changed since they were last drawn

    def compose(self) -> ComposeResult:
        yield Static(self._head(), id="compare-head")
        with Horizontal(id="columns"):
            for i, col in enumerate(self.columns):
                with Vertical(classes="column", id=f"col-{i}") as box:
                    box.border_title = col.title
                    with VerticalScroll(classes="col-body"):
                        yield Static(col.text(), classes="col-text", id=f"col-text-{i}")
                    yield Static(Text(col.stats()), classes="col-stats", id=f"col-stats-{i}")
        yield Static("starting…", id="compare-status")
        yield Footer()

    def _head(self) -> Text:
        prompt = next((m.get("content", "") for m in reversed(self.messages)
                       if m.get("role") == "user"), "")
        first = " ".join(prompt.split())
        if len(first) > 90:
            first = first[:89] + "…"
        s = self.settings
        head = Text(f"Compare · “{terminal_safe(first, one_line=True)}”\n")  # Text, not markup: prompts may hold [brackets]
        head.append(f"γ {s.threshold:g} · w {s.window} · max {s.max_tokens} tokens")
        nudging = any(c.declared.hands_over for c in self.columns)
        if nudging:
            head.append(f" · nudge {s.nudge_threshold:g}, {s.nudge_tokens} tok")
        head.append("   ")
        names = model_labels(self.engine)
        head.append_text(legend(names.get("drafter"), names.get("base"), handovers=nudging))
        return head

    def on_mount(self) -> None:
        self._started_at = time.perf_counter()
        self.set_interval(FLUSH_INTERVAL, self._tick)
        self._run_all()

    # -- the worker ------------------------------------------------------------------
    @work(thread=True, exclusive=True, exit_on_error=False, group="compare")
    def _run_all(self) -> None:
        worker = get_current_worker()
        for i, col in enumerate(self.columns):
            if self.cancel.is_set() or worker.is_cancelled:
                break
            self.post_message(ColumnEvent(i, started=True))
            try:
                settings = self.settings.with_changes(mode=col.mode)
                for event in self.engine.generate(self.messages, settings, cancel=self.cancel):
                    if worker.is_cancelled:  # the screen went away without Esc
                        self.cancel.set()
                    self.post_message(ColumnEvent(i, event))
            except Exception as exc:  # one line here; a bug's traceback goes to the error log
                self.post_message(ColumnEvent(i, error=describe_error(exc)))
        self.post_message(CompareDone())

    # -- events from the worker -----------------------------------------------------------
    def on_column_event(self, message: ColumnEvent) -> None:
        now = time.perf_counter()
        col = self.columns[message.column]
        if message.started:
            col.start(now)
            self._set_status(f"running {col.title.lower()} ({message.column + 1}/{len(self.columns)})…")
        elif message.error is not None:
            col.fail(message.error, now)
            self._set_status(f"{col.title}: {message.error}", error=True)
        elif message.event is not None:
            col.apply(message.event, now)
        self._dirty.add(message.column)

    def on_compare_done(self, _: CompareDone) -> None:
        self._flush()
        self.finished = True
        if self.cancel.is_set():
            self._set_status("stopped")
            return
        errors = [c for c in self.columns if c.status == "error"]
        total = time.perf_counter() - self._started_at
        if errors:
            self._set_status(" · ".join(f"{c.title}: {c.error}" for c in errors), error=True)
        else:
            self._set_status(f"done: {len(self.columns)} answers in {total:.1f} s")

    def _refresh_column(self, i: int) -> None:
        col = self.columns[i]
        body = self.query_one(f"#col-{i} VerticalScroll", VerticalScroll)
        follow = body.is_vertical_scroll_end or body.max_scroll_y == 0
        self.query_one(f"#col-text-{i}", Static).update(col.text())
        self.query_one(f"#col-stats-{i}", Static).update(Text(col.stats()))
        box = self.query_one(f"#col-{i}")
        box.set_class(col.running, "-running")
        box.set_class(col.status == "error", "-error")
        box.border_subtitle = col.status
        if follow:  # keep streaming text in view unless the user scrolled up
            body.scroll_end(animate=False)

    def _tick(self) -> None:
        """Timer: the running column's clock, and a redraw of every changed column."""
        now = time.perf_counter()
        for i, col in enumerate(self.columns):
            if col.running:
                col.tick(now)
                if i not in self._dirty:
                    self.query_one(f"#col-stats-{i}", Static).update(Text(col.stats()))
        self._flush()

    def _flush(self) -> None:
        dirty, self._dirty = self._dirty, set()
        for i in sorted(dirty):
            self._refresh_column(i)

    def _set_status(self, text: str, error: bool = False) -> None:
        status = self.query_one("#compare-status", Static)
        status.update(Text(terminal_safe(text, one_line=True)))  # errors quote servers and files
        status.set_class(error, "-error")

    # -- closing ---------------------------------------------------------------------
    def action_close(self) -> None:
        """Esc stops the run in flight (the engine checks the event) and closes."""
        self.cancel.set()
        self.dismiss(None)

    def on_unmount(self) -> None:
        self.cancel.set()
