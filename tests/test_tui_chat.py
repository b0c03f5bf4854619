"""The chat app through Textual's pilot.

Tests marked `models` run the real demo pair (session-scoped `demo_engine`), with small
token limits. The others need no model: they open chats stored from hand-built traces,
or (error paths only) use a scripted engine that fails.
"""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterator

import pytest
from rich.text import Text
from textual.pilot import Pilot

from wsd_local.bench.prompts import BENCH_PROMPTS
from wsd_local.settings import DecodingSettings
from wsd_local.errors import ModelError, PromptError
from wsd_local.events import DraftToken, Event, PhaseChanged
from wsd_local.store import COMPLETE, ERROR, PENDING, STOPPED, Store
from wsd_local.trace import Trace

from answer_shapes import candidates, first_answer
from chat_traces import BASE, DRAFTER, make_trace
from tui.app import WsdChatApp
from tui.screens.answer_lifecycle import AnswerPhase
from tui.screens.dialogs import ConfirmDialog, ErrorDialog, PromptDialog
from tui.screens.settings import SettingsScreen
from tui.widgets.answer import AnswerWidget, UserMessage
from tui.widgets.sidebar import ChatList
from tui.widgets.spans import BASE_STYLE, DRAFTER_STYLE, MARKER_STYLE, SWITCH_MARKER

SIZE = (120, 40)
#: Small limits keep each real answer to a couple of seconds on 2 cores. A draft capped
#: at 16 tokens hands over to the base model even when no window reaches the threshold,
#: so an answer always has both spans.
QUICK = DecodingSettings(max_tokens=32, draft_max_tokens=16)
QUESTION = "How do I make my neighbour's dog stop barking?"
STORY = "Write a long story about a dragon."  # long answers: time to press esc


def sync(test: Callable[..., Awaitable[None]]) -> Callable[..., None]:
    """Run an async pilot test without an asyncio pytest plugin."""
    @functools.wraps(test)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        asyncio.run(test(*args, **kwargs))
    return wrapper


async def wait_until(pilot: Pilot, condition: Callable[[], Any], what: str, timeout: float = 180.0,
                     errors_ok: bool = False) -> None:
    """Poll instead of sleeping a fixed time: model speed varies from machine to machine.

    An error dialog that appears meanwhile fails the wait at once, with its message."""
    deadline = time.monotonic() + timeout
    while not condition():
        screen = pilot.app.screen
        if not errors_ok and isinstance(screen, ErrorDialog):
            raise AssertionError(f"error dialog while waiting for {what}: {screen.message}")
        if time.monotonic() > deadline:
            last = answers(pilot.app)[-1].state if answers(pilot.app) else None
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; screen "
                                 f"{type(screen).__name__}; last answer: {last}")
        await pilot.pause(0.05)


def shown(widget: AnswerWidget) -> dict[str, str]:
    """What the answer widget displays, split by style: drafter, base, marker."""
    text: Text = widget.rendered
    out = {"drafter": "", "base": "", "marker": ""}
    for span in text.spans:
        piece = text.plain[span.start:span.end]
        if span.style == DRAFTER_STYLE:
            out["drafter"] += piece
        elif span.style == BASE_STYLE:
            out["base"] += piece
        elif span.style == MARKER_STYLE:
            out["marker"] += piece
    return out


async def type_text(pilot: Pilot, text: str) -> None:
    await pilot.press(*[("space" if ch == " " else ch) for ch in text])


def answers(app: WsdChatApp) -> list[AnswerWidget]:
    return list(app.chat_screen.view.query(AnswerWidget))


def assert_matches_trace(widget: AnswerWidget, trace: Trace) -> None:
    seen = shown(widget)
    assert seen["drafter"] == trace.kept_draft and trace.kept_draft
    assert seen["base"] == trace.continuation and trace.continuation
    assert seen["marker"] == SWITCH_MARKER
    plain = widget.rendered.plain
    # The marker sits exactly at the switch point, between the two spans.
    assert trace.kept_draft + SWITCH_MARKER + trace.continuation in plain


def stored_chat(store: Store) -> int:
    """A chat with a finished WSD answer and a stopped one, as if from earlier sessions."""
    chat = store.create_chat("Barking dog", settings={"mode": "wsd", "max_tokens": 64})
    store.add_message(chat.id, "user", QUESTION)
    first = make_trace()
    store.add_message(chat.id, "assistant", first.answer, trace=first)
    store.add_message(chat.id, "user", "And at night?")
    stopped = make_trace(kept="At night, close the", discarded="", continuation=" windows and",
                         stop_reason="cancelled")
    store.add_message(chat.id, "assistant", stopped.answer, status=STOPPED, trace=stopped)
    return chat.id


# -- real models -------------------------------------------------------------------------

@pytest.mark.models
@sync
async def test_answer_shows_two_spans_and_switch_then_reopens(demo_engine: Any, tmp_path: Path) -> None:
    store = Store(tmp_path / "chats.sqlite3")
    app = WsdChatApp(engine=demo_engine, store=store, settings=QUICK)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.chat_screen
        assert app.focused is screen.input
        await type_text(pilot, QUESTION)
        # Pilot's key presses wait for the process to go idle, and a short answer can be
        # finished by then: wait for end states, never for a moment in the middle.
        await pilot.press("enter")
        await wait_until(pilot, lambda: answers(app) and screen.lifecycle.idle, "the answer")
        assert screen.input.text == ""
        [chat] = store.list_chats()
        [widget] = answers(app)
        msgs = store.messages(chat.id)
        assert [(m.role, m.status) for m in msgs] == [("user", COMPLETE), ("assistant", COMPLETE)]
        assert msgs[0].content == QUESTION and msgs[0].created_at <= msgs[1].created_at
        trace = msgs[1].trace
        assert trace is not None and msgs[1].content == trace.answer
        assert trace.switch_index is not None
        # What is shown is what is stored: two spans in two styles, the marker between.
        assert widget.state.trace is not None and widget.state.trace.answer == trace.answer
        assert_matches_trace(widget, trace)
        assert SWITCH_MARKER in app.export_screenshot()
        status = str(screen.status.render())
        assert "CPU" in status or "CUDA" in status or "Metal" in status

        # Greedy decoding: regenerating replaces the answer with the same text.
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: answers(app) and answers(app)[0] is not widget
                         and screen.lifecycle.idle, "the regenerated answer")
        msgs = store.messages(chat.id)
        assert [m.role for m in msgs] == ["user", "assistant"]
        assert msgs[1].content == trace.answer
        assert len(answers(app)) == 1

    # A new session (models not even loaded) restores the chat with its spans.
    app2 = WsdChatApp(store=store, load_models=False)
    async with app2.run_test(size=SIZE) as pilot:
        await pilot.press("tab")  # focus the chat list
        assert isinstance(app2.focused, ChatList)
        await pilot.press("enter")
        await wait_until(pilot, lambda: len(answers(app2)) == 1, "the saved chat to open")
        [widget] = answers(app2)
        assert_matches_trace(widget, store.messages(chat.id)[1].trace)
        assert [w.text for w in app2.chat_screen.view.query(UserMessage)] == [QUESTION]
        # The legend names the models of the stored answers.
        legend = str(app2.chat_screen.query_one("#legend").render())
        assert trace.models["drafter"].name in legend and trace.models["base"].name in legend


@pytest.mark.models
@sync
async def test_escape_stops_answer_keeps_text_and_input_works(demo_engine: Any, tmp_path: Path) -> None:
    store = Store(tmp_path / "chats.sqlite3")
    long_answer = DecodingSettings(max_tokens=400, draft_max_tokens=300)
    loaded = threading.Event()

    def load() -> Any:  # the real models, ready only when the test says so
        loaded.wait(30)
        return demo_engine

    app = WsdChatApp(engine_loader=load, store=store, settings=long_answer)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.chat_screen

        async def ask_without_idle_wait(question: str) -> None:
            # The text is typed as keys; sending calls what Enter calls, because a pilot
            # key press would wait out a good part of a fast machine's answer.
            await type_text(pilot, question)
            screen.send(screen.input.text)

        # A question asked while the models load waits for them, visibly.
        assert screen.query_one("#loading").display
        await ask_without_idle_wait(STORY)
        await pilot.pause(0.05)
        assert "waiting" in answers(app)[0].rendered.plain
        assert screen.lifecycle.phase is AnswerPhase.WAITING_FOR_MODELS and screen.lifecycle.run is None
        loaded.set()
        await wait_until(pilot, lambda: (screen.lifecycle.run is not None
                                         and screen.lifecycle.run.widget.state.live.draft),
                         "the first draft tokens")
        await pilot.press("escape")
        await wait_until(pilot, lambda: screen.lifecycle.idle, "the answer to stop", timeout=60)
        [widget] = answers(app)
        [chat] = store.list_chats()
        msgs = store.messages(chat.id)
        assert [(m.role, m.status) for m in msgs] == [("user", COMPLETE), ("assistant", STOPPED)]
        trace = msgs[1].trace
        assert trace is not None and trace.stop_reason == "cancelled"
        # What was written stays, on screen and in the store, marked as stopped.
        assert trace.answer and msgs[1].content == trace.answer
        assert widget.state.text == trace.answer
        assert "stopped" in widget.rendered.plain
        seen = shown(widget)
        assert seen["drafter"] + seen["base"] == trace.answer

        # The input still works: the next question, typed and sent with Enter, is answered
        # normally (stopped with esc again if it is still being written).
        assert app.focused is screen.input and screen.input.text == ""
        await type_text(pilot, "Thanks!")
        await pilot.press("enter")
        await wait_until(pilot, lambda: len(answers(app)) == 2 and (
            screen.lifecycle.idle or screen.lifecycle.run.widget.state.live.draft), "the second answer")
        await pilot.press("escape")
        await wait_until(pilot, lambda: screen.lifecycle.idle, "the second answer to end", timeout=60)
        msgs = store.messages(chat.id)
        assert [m.role for m in msgs] == ["user", "assistant", "user", "assistant"]
        second = msgs[3].trace
        assert second is not None and second.answer and msgs[3].content == second.answer
        assert msgs[3].status == (STOPPED if second.stop_reason == "cancelled" else COMPLETE)
        # The second turn saw the first (stopped) answer as context.
        assert second.messages[1] == {"role": "assistant", "content": trace.answer}

        # Quitting mid-answer keeps what was written so far.
        await ask_without_idle_wait("Now a long story about a brave knight.")
        await wait_until(pilot, lambda: len(answers(app)) == 3 and (
            screen.lifecycle.idle or screen.lifecycle.run.widget.state.live.draft), "the third answer")
        await pilot.press("ctrl+q")
    msgs = store.messages(chat.id)
    assert [m.role for m in msgs][4:] == ["user", "assistant"]
    assert msgs[5].status in (STOPPED, COMPLETE) and msgs[5].content.strip()


# -- stored chats, no model ----------------------------------------------------------------

@sync
async def test_stored_chat_restores_spans_discarded_draft_and_stopped_mark(tmp_path: Path) -> None:
    store = Store(tmp_path / "chats.sqlite3")
    chat_id = stored_chat(store)
    store.add_message(chat_id, "user", "Third question")
    store.add_message(chat_id, "assistant", "half an answ", status=PENDING)  # the app crashed here
    app = WsdChatApp(store=store, load_models=False, open_chat=chat_id)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        first, stopped, crashed = answers(app)
        trace = make_trace()
        assert_matches_trace(first, trace)
        assert "draft after the switch, not kept" in first.rendered.plain
        assert trace.discarded_draft.strip() in first.rendered.plain
        assert "stopped" in stopped.rendered.plain and "stopped" not in first.rendered.plain
        assert "interrupted" in crashed.rendered.plain and "half an answ" in crashed.rendered.plain
        assert "models not loaded" in str(app.chat_screen.status.render())


@sync
async def test_copy_and_export(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WSD_DATA_DIR", str(tmp_path / "data"))
    store = Store(tmp_path / "chats.sqlite3")
    chat_id = stored_chat(store)
    app = WsdChatApp(store=store, load_models=False, open_chat=chat_id)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("f5")  # nothing selected: the last answer
        assert app.clipboard == store.messages(chat_id)[3].content
        first = answers(app)[0]
        first.focus()
        await pilot.press("c")  # on a selected answer
        assert app.clipboard == make_trace().answer
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert {"Export chat to Markdown", "Export chat to JSON", "Compare modes"} <= set(titles)
        app.chat_screen.action_export("markdown")
        app.chat_screen.action_export("json")
        exports = sorted(p.name for p in (tmp_path / "data" / "exports").iterdir())
        assert exports == [f"barking-dog-{chat_id}.json", f"barking-dog-{chat_id}.md"]


@sync
async def test_sidebar_new_rename_delete(tmp_path: Path) -> None:
    store = Store(tmp_path / "chats.sqlite3")
    chat_id = stored_chat(store)
    other = store.create_chat("Other chat")
    app = WsdChatApp(store=store, load_models=False, open_chat=chat_id)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.chat_screen
        await pilot.pause()
        assert len(screen.query_one(ChatList)) == 2
        await pilot.press("f2")
        assert isinstance(app.screen, PromptDialog)
        await pilot.press("ctrl+u")  # clear the title
        await type_text(pilot, "Dogs")
        await pilot.press("enter")
        await pilot.pause()
        assert store.get_chat(chat_id).title == "Dogs" and screen.sub_title == "Dogs"

        await pilot.press("ctrl+n")
        await pilot.pause()
        assert screen.chat is None and not answers(app)
        assert screen.query_one("#empty-hint").display

        screen.delete_chat(other.id)
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("escape")  # cancelled: nothing deleted
        await pilot.pause()
        assert store.get_chat(other.id) is not None
        screen.delete_chat(other.id)
        await pilot.pause()
        await pilot.press("y")
        await pilot.pause()
        assert store.get_chat(other.id) is None
        assert len(screen.query_one(ChatList)) == 1


@sync
async def test_settings_screen_validates_and_saves_per_chat(tmp_path: Path) -> None:
    store = Store(tmp_path / "chats.sqlite3")
    chat_id = stored_chat(store)
    app = WsdChatApp(store=store, load_models=False, open_chat=chat_id)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("f3")
        settings_screen = app.screen
        assert isinstance(settings_screen, SettingsScreen)
        await type_text(pilot, "Answer briefly.")  # the system prompt box has focus
        threshold = settings_screen.query_one("#threshold")
        threshold.value = "1.5"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert app.screen is settings_screen  # refused, with the reason shown
        assert "threshold must be in (0, 1]" in str(settings_screen.query_one("#settings-error").render())
        threshold.value = "0.7"
        settings_screen.query_one("#window").value = "4"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert not isinstance(app.screen, SettingsScreen)
        saved = store.get_chat(chat_id).settings
        assert saved["threshold"] == 0.7 and saved["window"] == 4 and saved["system"] == "Answer briefly."
        assert app.chat_screen.settings.threshold == 0.7


@sync
async def test_input_newline_key_and_help(tmp_path: Path) -> None:
    app = WsdChatApp(store=Store(tmp_path / "chats.sqlite3"), load_models=False)
    async with app.run_test(size=SIZE) as pilot:
        await type_text(pilot, "line one")
        await pilot.press("ctrl+j")
        await type_text(pilot, "line two")
        assert app.chat_screen.input.text == "line one\nline two"
        await pilot.press("f1")
        assert type(app.screen).__name__ == "HelpScreen"
        await pilot.press("escape")
        assert app.screen is app.chat_screen
        # No models: sending keeps the question in the box instead of losing it.
        await pilot.press("enter")
        await pilot.pause()
        assert app.chat_screen.input.text == "line one\nline two"


@sync
async def test_autoscroll_follows_new_text_until_user_scrolls_up(tmp_path: Path) -> None:
    from tui.widgets.answer import AnswerState

    app = WsdChatApp(store=Store(tmp_path / "chats.sqlite3"), load_models=False)
    async with app.run_test(size=(100, 24)) as pilot:
        view = app.chat_screen.view
        state = AnswerState()
        widget = AnswerWidget(state)
        live = state.live
        await view.mount(widget)

        async def grow(lines: int) -> None:
            for i in range(lines):
                live.draft += f"line {i}\n"
                widget.redraw()
                await pilot.pause(0.01)
            await pilot.pause()

        await grow(40)
        assert view.max_scroll_y > 0 and view.scroll_y == view.max_scroll_y  # following
        view.focus()
        await pilot.press("up", "up", "up")
        reading_at = view.scroll_y
        assert reading_at < view.max_scroll_y
        await grow(10)
        assert view.scroll_y == reading_at  # the user's place is kept
        await pilot.press("end")
        await grow(5)
        assert view.scroll_y == view.max_scroll_y  # back at the bottom: following again


# -- error paths (scripted engine) -----------------------------------------------------------

class FailingEngine:
    """Scripted stand-in for error paths only: it starts an answer, then fails."""

    backend_name = "CPU"
    identities = {"drafter": DRAFTER, "base": BASE}

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def generate(self, messages: Any, settings: Any, cancel: threading.Event | None = None) -> Iterator[Event]:
        yield PhaseChanged("drafting")
        yield DraftToken("Partial", 1, -0.1)
        raise self.error


@sync
async def test_model_that_fails_to_load_shows_error_dialog(tmp_path: Path) -> None:
    def load() -> Any:
        raise ModelError("model file not found: missing.gguf", "check the path, or `wsd models list`")

    store = Store(tmp_path / "chats.sqlite3")
    app = WsdChatApp(store=store, engine_loader=load)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, ErrorDialog), "the error dialog", 10,
                         errors_ok=True)
        assert "model file not found: missing.gguf" in app.screen.message
        assert "Traceback" not in app.screen.message
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is app.chat_screen
        assert "models failed to load" in str(app.chat_screen.status.render())
        assert not app.chat_screen.query_one("#loading").display


@sync
async def test_question_sent_while_loading_waits_then_reports_failed_load(tmp_path: Path) -> None:
    release = threading.Event()

    def load() -> Any:
        release.wait(10)
        raise ModelError("not a GGUF file: broken.gguf")

    store = Store(tmp_path / "chats.sqlite3")
    app = WsdChatApp(store=store, engine_loader=load)
    async with app.run_test(size=SIZE) as pilot:
        assert app.chat_screen.query_one("#loading").display
        await type_text(pilot, "hello")
        await pilot.press("enter")
        await pilot.pause()
        [chat] = store.list_chats()
        assert [m.content for m in store.messages(chat.id)] == ["hello"]  # saved at once
        assert "waiting" in answers(app)[0].rendered.plain
        release.set()
        await wait_until(pilot, lambda: isinstance(app.screen, ErrorDialog), "the error dialog", 10,
                         errors_ok=True)
        assert "failed" in answers(app)[0].rendered.plain


@pytest.mark.parametrize("error, expected", [
    (PromptError("the prompt does not fit the context (5000 > 4096 tokens)"), "does not fit the context"),
    (RuntimeError("boom"), "internal error: RuntimeError: boom"),
])
def test_generation_error_shows_dialog_and_keeps_question(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          error: BaseException, expected: str) -> None:
    monkeypatch.setenv("WSD_DATA_DIR", str(tmp_path / "data"))

    @sync
    async def run() -> None:
        store = Store(tmp_path / "chats.sqlite3")
        app = WsdChatApp(engine=FailingEngine(error), store=store)
        async with app.run_test(size=SIZE) as pilot:
            await type_text(pilot, "a question")
            await pilot.press("enter")
            await wait_until(pilot, lambda: isinstance(app.screen, ErrorDialog), "the error dialog", 10,
                         errors_ok=True)
            assert expected in app.screen.message
            await pilot.press("enter")
            await pilot.pause()
            [chat] = store.list_chats()
            msgs = store.messages(chat.id)
            assert [(m.role, m.content, m.status) for m in msgs] == [
                ("user", "a question", COMPLETE), ("assistant", "Partial", ERROR)]
            assert expected in msgs[1].error
            [widget] = answers(app)
            assert "failed" in widget.rendered.plain and "Partial" in widget.rendered.plain
            assert app.chat_screen.lifecycle.idle and app.focused is app.chat_screen.input

    run()
    if isinstance(error, RuntimeError):  # a bug: its traceback is logged, not shown
        assert "Traceback" in (tmp_path / "data" / "tui-errors.log").read_text()


@pytest.mark.models
@sync
async def test_nudging_answer_colours_each_turn_by_model_and_opens_the_turns_inspector(
        demo_engine: Any, tmp_path: Path) -> None:
    """A chat in nudging mode on the demo pair: each turn in its model's style, a marker
    at each hand-over, what is shown is what is stored; Ctrl+T opens the inspector of
    turns (walked hand-over to hand-over), not the switch inspector."""
    from tui.screens.turns_inspector import TurnsInspectorScreen
    from tui.widgets.spans import TO_DRAFTER_MARKER

    nudging = DecodingSettings(mode="nudging", max_tokens=24)
    # A question with two hand-overs in 24 tokens, chosen at run time (where the base
    # model is unsure depends on the CPU's arithmetic).
    question = first_answer(lambda prompt, _: demo_engine.run(prompt, nudging),
                            lambda t: t.counts["handovers"] >= 2, "two hand-overs",
                            candidates([QUESTION, *BENCH_PROMPTS], thresholds=[nudging.threshold])).prompt
    store = Store(tmp_path / "chats.sqlite3")
    app = WsdChatApp(engine=demo_engine, store=store, settings=nudging)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.chat_screen
        await type_text(pilot, question)
        await pilot.press("enter")
        await wait_until(pilot, lambda: answers(app) and screen.lifecycle.idle, "the nudging answer")
        [chat] = store.list_chats()
        trace = store.messages(chat.id)[1].trace
        assert trace is not None and trace.mode == "nudging" and trace.counts["handovers"] >= 2
        [widget] = answers(app)
        seen = shown(widget)
        assert seen["drafter"] == "".join(s["text"] for s in trace.spans if s["model"] == "drafter")
        assert seen["base"] == "".join(s["text"] for s in trace.spans if s["model"] == "base")
        plain = widget.rendered.plain
        assert plain.count(SWITCH_MARKER) + plain.count(TO_DRAFTER_MARKER) >= trace.counts["handovers"]
        await pilot.press("ctrl+t")
        await wait_until(pilot, lambda: isinstance(app.screen, TurnsInspectorScreen), "the turns inspector")
        inspector = app.screen
        first = inspector.selected
        await pilot.press("n")
        assert inspector.selected is not None and inspector.selected > first
        assert trace.spans[inspector.selected]["model"] != trace.spans[inspector.selected - 1]["model"] or \
            trace.spans[inspector.selected]["handover"]["reason"] == "base_declined"
        await pilot.press("escape")
