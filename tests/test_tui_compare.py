"""The compare screen: four modes side by side (base, drafter, WSD, Nudging), streamed
from one worker thread. The FakeEngine scripts events for the UI layout only; the
models' behaviour on this screen is tested with the demo engine at the end."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from test_tui_inspector_support import sync, wait_until
from textual.app import App
from textual.widgets import Static

from tui.screens.compare import CompareScreen
from tui.screens.compare_state import ColumnState
from tui.widgets.spans import (BASE_STYLE, DRAFTER_STYLE, MARKER_STYLE, SWITCH_MARKER,
                               TO_DRAFTER_MARKER, TO_DRAFTER_MARKER_STYLE)
from wsd_local.answer import Span
from wsd_local.settings import DecodingSettings
from wsd_local.errors import ModelError
from wsd_local.events import (BaseToken, DraftScored, DraftToken, Event, Finished, Handover,
                              PhaseChanged, SwitchFound, WordsKept)
from wsd_local.trace import TokenRecord, Trace

MESSAGES = [{"role": "user", "content": "How do I [User] keep a plant alive?"}]


class FakeEngine:
    """Streams scripted events like the real engine; checks the one-at-a-time contract."""

    def __init__(self, fail_mode: str | None = None, delay: float = 0.0,
                 hold: bool = False) -> None:
        self.fail_mode = fail_mode
        self.delay = delay
        self.hold = hold  # after the first base token, wait until cancelled (a long answer)
        self.calls: list[str] = []
        self.cancelled: list[str] = []
        self.busy = threading.Lock()

    def generate(self, messages: Any, settings: DecodingSettings, *,
                 cancel: threading.Event) -> Iterator[Event]:
        assert self.busy.acquire(blocking=False), "generate called concurrently"
        try:
            yield from self._events(settings.mode, cancel)
        finally:
            self.busy.release()

    def _events(self, mode: str, cancel: threading.Event) -> Iterator[Event]:
        self.calls.append(mode)
        if mode == self.fail_mode:
            raise ModelError("the drafter model file is missing", "run `wsd models pull`")
        if mode == "nudging":
            yield from self._nudging(cancel)
            return
        trace = Trace(settings=DecodingSettings(mode=mode), messages=MESSAGES)
        drafted = kept = base = ""
        if mode in ("draft", "wsd"):
            yield PhaseChanged("drafting")
            for i, piece in enumerate(["Water", " it", " weekly", " and", " more"]):
                if cancel.is_set():
                    self.cancelled.append(mode)
                    break
                time.sleep(self.delay)
                drafted += piece
                yield DraftToken(piece, i, -0.1)
                if mode == "wsd":
                    yield DraftScored(i, piece, 0.9, 0.0)
            kept = drafted
        if mode == "wsd" and not cancel.is_set():
            kept = "Water it weekly"
            yield SwitchFound(2, True, 0.85, kept, drafted[len(kept):])
        if mode in ("base", "wsd") and not cancel.is_set():
            yield PhaseChanged("continuing")
            for i, piece in enumerate([" in", " bright", " light", "."]):
                if cancel.is_set():
                    self.cancelled.append(mode)
                    break
                time.sleep(self.delay)
                base += piece
                yield BaseToken(piece, 100 + i, -0.2)
                if self.hold:
                    cancel.wait(10)
        trace.kept_draft, trace.continuation = (kept, base) if mode != "base" else ("", base)
        trace.answer = trace.kept_draft + trace.continuation
        trace.switch_char = len(trace.kept_draft)
        trace.draft_text = drafted
        trace.spans = [{"model": m, "text": t} for m, t in (("drafter", trace.kept_draft),
                                                            ("base", trace.continuation)) if t]
        if mode == "wsd" and not cancel.is_set():
            trace.switch_index, trace.switch_fired = 2, True
            trace.draft_tokens = [TokenRecord(i, p, math.log(0.9)) for i, p in
                                  enumerate(["Water", " it", " weekly"])]
        trace.stop_reason = "cancelled" if cancel.is_set() else "eos"
        trace.check()
        yield PhaseChanged("done")
        yield Finished(trace)


    def _nudging(self, cancel: threading.Event) -> Iterator[Event]:
        """A scripted nudging answer: the drafter's words, the base model's turn, the
        drafter again (layout only: the real rule is tested in test_nudging*.py)."""
        trace = Trace(settings=DecodingSettings(mode="nudging"), messages=MESSAGES)
        script = [("drafter", "start", None, ["Water", " it", " weekly"], "Water it"),
                  ("base", "base_confident", 0.62, [" in", " light"], None),
                  ("drafter", "base_unsure", 0.21, ["."], ".")]
        spans, answer = [], ""
        for model, reason, p, pieces, kept in script:
            if cancel.is_set():
                break
            yield Handover(len(answer), model, reason, p, pieces[0] if p else "")
            yield PhaseChanged("drafting" if model == "drafter" else "continuing")
            text = ""
            for i, piece in enumerate(pieces):
                time.sleep(self.delay)
                if model == "drafter":
                    yield DraftToken(piece, i, -0.1)
                else:
                    text += piece
                    yield BaseToken(piece, 200 + i, -0.3)
            if model == "drafter":
                text = kept
                yield WordsKept(kept, "".join(pieces)[len(kept):])
            spans.append({"model": model, "text": text,
                          "handover": {"reason": reason, "base_top_prob": p,
                                       "base_token": pieces[0] if p else "", "token_index": 0}})
            answer += text
        trace.spans, trace.answer = spans, answer
        trace.kept_draft = trace.draft_text = spans[0]["text"] if spans else ""
        trace.switch_char = len(trace.kept_draft)
        trace.continuation = answer[len(trace.kept_draft):]
        trace.stop_reason = "cancelled" if cancel.is_set() else "eos"
        trace.check()
        yield PhaseChanged("done")
        yield Finished(trace)


class CompareApp(App[None]):
    def __init__(self, engine: Any, settings: DecodingSettings | None = None) -> None:
        super().__init__()
        self.engine = engine
        self.settings = settings or DecodingSettings()
        self.closed = False

    def on_mount(self) -> None:
        self.push_screen(CompareScreen(self.engine, MESSAGES, self.settings),
                         callback=lambda _: setattr(self, "closed", True))


def column_text(screen: CompareScreen, i: int) -> str:
    return str(screen.query_one(f"#col-text-{i}", Static).render())


def status_text(screen: CompareScreen) -> str:
    return str(screen.query_one("#compare-status", Static).render())


@sync
async def test_four_columns_fill_in_one_after_another() -> None:
    engine = FakeEngine(delay=0.002)
    app = CompareApp(engine)
    async with app.run_test(size=(120, 30)) as pilot:
        screen = app.screen
        assert isinstance(screen, CompareScreen)
        await wait_until(pilot, lambda: screen.finished)
        await pilot.pause()
        assert engine.calls == ["base", "draft", "wsd", "nudging"]
        assert column_text(screen, 0) == " in bright light."
        assert column_text(screen, 1) == "Water it weekly and more"
        assert column_text(screen, 2) == "Water it weekly⟫ in bright light."
        base, draft, wsd, nudging = (c.live for c in screen.columns)
        assert (base.base_tokens, draft.draft_tokens, wsd.draft_tokens, wsd.base_tokens) == (4, 5, 5, 4)
        assert wsd.trace.switch_index == 2 and "switch at draft token 2" in screen.columns[2].stats()
        assert all(c.status == "done" and c.elapsed > 0 for c in screen.columns)
        assert str(screen.query_one("#col-stats-0", Static).render()).endswith("tok/s")
        assert status_text(screen).startswith("done: 4 answers")
        # the drafter's part of the WSD answer is styled apart from the base model's, as in chat
        assert screen.columns[2].spans() == [Span("drafter", "Water it weekly"),
                                             Span("base", " in bright light.")]
        styled = screen.columns[2].text()
        assert styled.plain == "Water it weekly⟫ in bright light."
        styles = {styled.plain[s.start:s.end]: s.style for s in styled.spans}
        assert styles["Water it weekly"] == DRAFTER_STYLE and styles[" in bright light."] == BASE_STYLE
        assert styles[SWITCH_MARKER] == MARKER_STYLE
        # Nudging: each turn in its model's style, a marker at every hand-over
        assert column_text(screen, 3) == "Water it⟫ in light⟪."
        assert nudging.spans() == [Span("drafter", "Water it"), Span("base", " in light"),
                                   Span("drafter", ".")]
        assert "2 hand-overs" in screen.columns[3].stats()
        styled = screen.columns[3].text()
        styles = {styled.plain[s.start:s.end]: s.style for s in styled.spans}
        assert styles["Water it"] == DRAFTER_STYLE and styles[" in light"] == BASE_STYLE
        assert styles[TO_DRAFTER_MARKER] == TO_DRAFTER_MARKER_STYLE


@sync
async def test_engine_error_is_one_line_and_other_columns_still_run() -> None:
    engine = FakeEngine(fail_mode="draft")
    app = CompareApp(engine)
    async with app.run_test(size=(120, 30)) as pilot:
        screen = app.screen
        assert isinstance(screen, CompareScreen)
        await wait_until(pilot, lambda: screen.finished)
        await pilot.pause()
        assert engine.calls == ["base", "draft", "wsd", "nudging"]
        assert screen.columns[1].status == "error"
        expected = "the drafter model file is missing (run `wsd models pull`)"
        assert column_text(screen, 1) == expected
        assert status_text(screen) == f"Drafter only: {expected}"
        assert "\n" not in status_text(screen) and "Traceback" not in status_text(screen)
        assert screen.columns[2].status == "done"


@sync
async def test_escape_cancels_the_run_and_closes() -> None:
    engine = FakeEngine(hold=True)
    app = CompareApp(engine)
    async with app.run_test(size=(120, 30)) as pilot:
        screen = app.screen
        assert isinstance(screen, CompareScreen)
        await wait_until(pilot, lambda: screen.columns[0].live.base_tokens >= 1)
        await pilot.press("escape")
        await pilot.pause()
        assert app.closed and screen.cancel.is_set()
        await wait_until(pilot, lambda: not engine.busy.locked())
        assert engine.calls == ["base"] and engine.cancelled == ["base"]


def test_the_wsd_column_follows_the_chosen_variant() -> None:
    modes = [c.mode for c in CompareScreen(FakeEngine(), MESSAGES,
                                           DecodingSettings(mode="paper")).columns]
    assert modes == ["base", "draft", "paper", "nudging"]
    modes = [c.mode for c in CompareScreen(FakeEngine(), MESSAGES,
                                           DecodingSettings(mode="base")).columns]
    assert modes == ["base", "draft", "wsd", "nudging"]


def test_column_state_before_the_switch_shows_the_whole_draft() -> None:
    col = ColumnState("wsd")
    col.start(0.0)
    for i, piece in enumerate(["A", " b", " c"]):
        col.apply(DraftToken(piece, i, 0.0), 1.0)
    assert col.spans()[0] == Span("drafter", "A b c") and col.status == "loading"
    col.apply(SwitchFound(0, True, 0.9, "A", " b c"), 2.0)
    col.apply(BaseToken(" d", 9, 0.0), 4.0)
    assert col.spans() == [Span("drafter", "A"), Span("base", " d")]
    assert col.text().plain == "A⟫ d"
    assert col.stats() == "4.0 s · 3 drafter + 1 base tok · 1.0 tok/s · switch at draft token 0"


@pytest.mark.models
@sync
async def test_compare_with_the_demo_engine(demo_engine: Any) -> None:
    settings = DecodingSettings(max_tokens=24, draft_max_tokens=24)
    app = CompareApp(demo_engine, settings)
    async with app.run_test(size=(150, 40)) as pilot:
        screen = app.screen
        assert isinstance(screen, CompareScreen)
        await wait_until(pilot, lambda: screen.finished, timeout=120)
        await pilot.pause()
        errors = [c.error for c in screen.columns if c.error]
        assert not errors
        for i, col in enumerate(screen.columns[:3]):
            assert col.status == "done" and col.trace is not None
            marker = SWITCH_MARKER if col.live.switched else ""
            expected = col.trace.kept_draft + marker + col.trace.continuation
            assert column_text(screen, i) == expected and col.trace.answer != ""
        base, draft, wsd, nudging = (c.live for c in screen.columns)
        assert base.base_tokens > 0 and base.draft_tokens == 0
        assert draft.draft_tokens > 0 and draft.base_tokens == 0
        assert wsd.trace is not None and wsd.trace.switch_index is not None
        assert wsd.spans()[0] == Span("drafter", wsd.trace.kept_draft)
        # Nudging: the turns of the trace, a marker wherever the writer changes
        col = screen.columns[3]
        assert col.status == "done" and nudging.trace is not None and nudging.trace.mode == "nudging"
        spans = [s for s in nudging.trace.spans if s["text"]]
        expected = ""
        for j, span in enumerate(spans):
            if j and span["model"] != spans[j - 1]["model"]:
                expected += SWITCH_MARKER if span["model"] == "base" else TO_DRAFTER_MARKER
            expected += span["text"]
        assert column_text(screen, 3) == expected and "hand-over" in col.stats()


@pytest.mark.parametrize("reason,status", [("eos", "done"), ("cancelled", "stopped"),
                                           ("connection_lost", "stopped"), ("server_error", "stopped")])
def test_column_stopped_follows_the_one_rule(reason: str, status: str) -> None:
    """A column that lost its model server reads as stopped, as the chat and the store say."""
    col = ColumnState("base")
    col.start(0.0)
    trace = Trace(settings=DecodingSettings(mode="base"), messages=MESSAGES, answer="A", stop_reason=reason)
    col.apply(Finished(trace), 1.0)
    assert col.status == status and col.live.stopped == trace.stopped_early == (status == "stopped")
