"""The main screen: chat list, conversation, question box, status line.

The screen owns the chats and the keys (`tui/actions.py`); the answer being written
belongs to its `AnswerLifecycle`, whose redraws are batched (`FLUSH_INTERVAL`): a long
answer costs one redraw per tick, not one per token.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any, Callable

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Label, ListView, LoadingIndicator, Static
from textual.worker import Worker

from wsd_local.settings import DecodingSettings
from wsd_local.errors import ConfigError, WsdError
from wsd_local.export import export_chat
from wsd_local.modes import PAPER_MODE, mode_named
from wsd_local.store import ChatRecord, context_messages, title_from
from wsd_local.terminal_text import terminal_safe
from wsd_local.trace import Trace

from ..actions import CHAT, bindings, empty_chat_hint
from ..errors import describe_error
from ..widgets.answer import AnswerState, AnswerWidget, UserMessage
from ..widgets.chat_input import ChatInput
from ..widgets.chat_view import ChatView
from ..widgets.sidebar import ChatItem, ChatList
from ..widgets.spans import (BASE_STYLE, DRAFTER_STYLE, MARKER_STYLE, SWITCH_MARKER, legend,
                             model_labels)
from ..widgets.status_bar import StatusBar
from .answer_lifecycle import AnswerEvent, AnswerLifecycle
from .dialogs import ConfirmDialog, ErrorDialog, PromptDialog
from .help import HelpScreen
from .settings import SettingsScreen

from ..models_state import ModelState

if TYPE_CHECKING:
    from ..app import WsdChatApp

FLUSH_INTERVAL = 0.05  # at most 20 redraws a second while an answer streams

EMPTY_HINT = Text.assemble(
    ("Ask a question below.\n\n", "bold"),
    "The aligned drafter writes the start of the answer (", ("blue, underlined", DRAFTER_STYLE),
    "); the base model checks it token by token and takes over at the switch point ",
    (SWITCH_MARKER, MARKER_STYLE), " (", ("orange", BASE_STYLE), ").\n",
    empty_chat_hint(),
)


class ChatScreen(Screen[None]):
    BINDINGS = bindings(CHAT)

    def __init__(self, settings: DecodingSettings) -> None:
        super().__init__()
        self.chat: ChatRecord | None = None  # None: a new chat, stored with its first question
        self.settings = settings
        self.lifecycle = AnswerLifecycle(self)

    @property
    def wsd_app(self) -> "WsdChatApp":
        return self.app  # type: ignore[return-value]

    # -- layout ------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        with Horizontal(id="main"):
            with Vertical(id="sidebar"):
                yield Label("Chats  (ctrl+n new)", id="sidebar-title")
                yield ChatList(id="chat-list")
            with Vertical(id="chat-pane"):
                yield Static(id="legend")
                yield Static(EMPTY_HINT, id="empty-hint")
                yield ChatView(id="conversation")
                with Horizontal(id="loading"):
                    yield LoadingIndicator()
                    yield Label("Loading the models…", id="loading-label", markup=False)
                yield ChatInput(id="input")
        yield StatusBar(id="status")
        yield Footer()

    def on_mount(self) -> None:
        self.refresh_chat_list()
        self.update_legend()
        self.status.set(mode=self.settings.mode)
        self.set_interval(FLUSH_INTERVAL, self.lifecycle.flush)
        self.query_one(ChatInput).focus()
        app = self.wsd_app
        if app.open_chat_id is not None:
            self.open_chat(app.open_chat_id)
        models = app.models
        if models is ModelState.READY:
            self.engine_ready()
        elif models is ModelState.LOADING:
            self.set_loading(True, app.loading_label)
        else:
            self.set_loading(False)
            self.status.set(phase="models failed to load" if models is ModelState.FAILED
                            else "models not loaded")

    def on_unmount(self) -> None:
        self.lifecycle.stop_for_exit()  # closing mid-answer: what was written is saved

    @property
    def view(self) -> ChatView:
        return self.query_one("#conversation", ChatView)

    @property
    def status(self) -> StatusBar:
        return self.query_one(StatusBar)

    @property
    def input(self) -> ChatInput:
        return self.query_one(ChatInput)

    # -- models --------------------------------------------------------------------
    def set_loading(self, loading: bool, label: str = "Loading the models…") -> None:
        self.query_one("#loading").display = loading
        self.query_one("#loading-label", Label).update(terminal_safe(label, one_line=True))  # model names
        if loading:
            self.status.set(phase="loading models")

    def engine_ready(self) -> None:
        engine = self.wsd_app.engine
        self.set_loading(False)
        names = model_labels(engine)
        self.status.set(drafter=names.get("drafter"), base=names.get("base"),
                        backend=getattr(engine, "backend_name", None), phase="ready")
        self.update_legend()
        self.lifecycle.models_ready(self.start_answer)

    def engine_failed(self, message: str) -> None:
        self.set_loading(False)
        self.status.set(phase="models failed to load")
        self.lifecycle.models_failed(message)

    def update_legend(self) -> None:
        names = model_labels(self.wsd_app.engine)
        if not names and self.chat is not None:  # no engine: name the models of the stored answers
            for widget in reversed(self.view.answers()):
                trace = widget.state.trace
                if trace is not None and trace.models:
                    names = {role: m.name for role, m in trace.models.items()}
                    break
        # Nudging (this chat's mode, or an answer in it): the legend adds the ⟪ marker.
        nudging = mode_named(self.settings.mode).hands_over or any(
            w.state.trace is not None and mode_named(w.state.trace.mode).hands_over for w in self.view.answers())
        self.query_one("#legend", Static).update(legend(names.get("drafter"), names.get("base"),
                                                        handovers=nudging))

    # -- chats ---------------------------------------------------------------------
    def refresh_chat_list(self) -> None:
        """The chat list with the open chat marked, and its title as the screen's subtitle."""
        self.sub_title = terminal_safe(self.chat.title, one_line=True) if self.chat else ""
        self.query_one(ChatList).set_chats(self.wsd_app.store.list_chats(), self.chat.id if self.chat else None)

    def open_chat(self, chat_id: int) -> None:
        if self._busy("switching chats"):
            return
        store = self.wsd_app.store
        chat = store.get_chat(chat_id)
        if chat is None:
            self.notify(f"No chat with id {chat_id}.", severity="warning")
            return
        messages = [UserMessage(r.content, message_id=r.id) if r.role == "user"
                    else AnswerWidget(AnswerState.from_record(r), message_id=r.id)
                    for r in store.messages(chat.id) if r.role in ("user", "assistant")]
        self._show_chat(chat, self._settings_of(chat), messages)
        self.view.call_after_refresh(self.view.follow)
        self.call_after_refresh(self.update_legend)

    def _show_chat(self, chat: ChatRecord | None, settings: DecodingSettings,
                   messages: list[UserMessage | AnswerWidget]) -> None:
        """Make `chat` (None: a new one) the open chat, with its settings and messages."""
        self.chat, self.settings = chat, settings
        self.status.set(mode=settings.mode)
        self.view.remove_children()
        self.view.mount_all(messages)
        self._show_hint(not messages)
        self.refresh_chat_list()

    def _show_hint(self, show: bool) -> None:
        self.query_one("#empty-hint").display = show

    def _settings_of(self, chat: ChatRecord) -> DecodingSettings:
        if not chat.settings:
            return self.wsd_app.default_settings
        try:
            return DecodingSettings.from_dict(chat.settings)
        except (ConfigError, TypeError):
            self.notify("This chat's saved settings are invalid; using the defaults.", severity="warning")
            return self.wsd_app.default_settings

    def action_new_chat(self) -> None:
        if self._busy("starting a new chat"):
            return
        self._show_chat(None, self.wsd_app.default_settings, [])
        self.input.focus()

    def _busy(self, doing: str) -> bool:
        if not self.lifecycle.idle:
            self.notify(f"An answer is being written; press esc to stop it before {doing}.",
                        severity="warning")
            return True
        return False

    def _engine(self) -> Any:
        """The loaded engine, or None after telling the user the models are not loaded."""
        engine = self.wsd_app.engine
        if engine is None:
            self.notify("The models are not loaded yet.", severity="warning")
        return engine

    @on(ListView.Selected, "#chat-list")
    def _chat_selected(self, event: ListView.Selected) -> None:
        if isinstance(event.item, ChatItem) and (self.chat is None or event.item.chat.id != self.chat.id):
            self.open_chat(event.item.chat.id)

    @on(ChatList.Request)
    def _chat_list_request(self, event: ChatList.Request) -> None:
        if event.action == "new":
            self.action_new_chat()
        elif event.action == "delete" and event.chat_id is not None:
            self.delete_chat(event.chat_id)

    def delete_chat(self, chat_id: int) -> None:
        store = self.wsd_app.store
        chat = store.get_chat(chat_id)
        if chat is None:
            return
        if not self.lifecycle.idle and self.chat is not None and self.chat.id == chat_id:
            self.notify("Stop the answer (esc) before deleting this chat.", severity="warning")
            return

        def done(yes: bool | None) -> None:
            if not yes:
                return
            store.delete_chat(chat_id)
            if self.chat is not None and self.chat.id == chat_id:
                self.action_new_chat()
            self.refresh_chat_list()
            self.notify(f"Deleted “{terminal_safe(chat.title, one_line=True)}”.", markup=False)

        self.app.push_screen(ConfirmDialog(f"Delete the chat “{chat.title}” and all its answers?",
                                           yes="Delete"), done)

    # -- asking ----------------------------------------------------------------------
    @on(ChatInput.Submitted)
    def _submitted(self, event: ChatInput.Submitted) -> None:
        self.send(event.text)

    def send(self, text: str) -> None:
        if not text.strip():
            return
        if not self.lifecycle.idle:
            self.notify("An answer is being written; press esc to stop it first.", severity="warning")
            return
        app = self.wsd_app
        if app.models not in (ModelState.READY, ModelState.LOADING):
            self.notify("The models are not loaded; see the error, or restart with other models.",
                        severity="error")
            return
        store = app.store
        if self.chat is None:
            self.chat = store.create_chat(title_from(text), settings=self.settings.to_dict())
        # Stored before generation starts: whatever happens next, the question is saved.
        record = store.add_message(self.chat.id, "user", text)
        self.input.clear()
        self._show_hint(False)
        self.view.mount(UserMessage(text, message_id=record.id))
        self.view.follow()
        self.refresh_chat_list()
        if app.models is ModelState.LOADING:
            self.lifecycle.wait_for_models(self.settings.mode)
            return
        self.start_answer()

    def start_answer(self) -> None:
        """Answer the conversation as stored (its last question) with this chat's settings."""
        engine = self.wsd_app.engine
        assert self.chat is not None and engine is not None
        messages = context_messages(self.wsd_app.store.messages(self.chat.id))
        self.lifecycle.start(self.chat.id, self.settings.mode,
                             partial(engine.generate, messages, self.settings))

    @on(AnswerEvent)
    def _answer_event(self, message: AnswerEvent) -> None:
        self.lifecycle.on_event(message)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        self.lifecycle.on_worker_state(event)

    # -- actions ---------------------------------------------------------------------
    def action_stop(self) -> None:
        if not self.lifecycle.stop() and not self.input.has_focus:
            self.input.focus()

    def action_regenerate(self) -> None:
        if self._busy("regenerating") or self._engine() is None:
            return
        store = self.wsd_app.store
        records = store.messages(self.chat.id) if self.chat is not None else []
        if not any(r.role == "user" for r in records):
            self.notify("Nothing to regenerate yet: ask a question first.")
            return
        # Replace the last answer (or answer a question left without one, e.g. after a crash).
        if records[-1].role == "assistant":
            store.delete_message(records[-1].id)
            for widget in self.view.answers():
                if widget.message_id == records[-1].id:
                    widget.remove()
        self.start_answer()

    def _on_selected_answer(self, verb: str, act: Callable[[AnswerWidget], None]) -> None:
        """`act` on the focused answer, else the last one."""
        answers = self.view.answers()
        widget = self.focused if isinstance(self.focused, AnswerWidget) else None
        if widget is None and answers:
            widget = answers[-1]
        if widget is None:
            self.notify(f"No answer to {verb} yet.")
        else:
            act(widget)

    @on(AnswerWidget.Action)
    def _answer_action(self, event: AnswerWidget.Action) -> None:
        getattr(self, f"{event.action}_answer")(event.answer)

    def action_copy(self) -> None:
        self._on_selected_answer("copy", self.copy_answer)

    def copy_answer(self, widget: AnswerWidget) -> None:
        text = widget.state.text
        self.app.copy_to_clipboard(text)
        self.notify(f"Copied the answer ({len(text)} characters).")

    def action_inspect(self) -> None:
        self._on_selected_answer("inspect", self.inspect_answer)

    def inspect_answer(self, widget: AnswerWidget) -> None:
        trace = widget.state.trace
        if trace is None:
            self.notify("This answer has no trace to inspect (still being written, or saved "
                        "without one).", severity="warning")
            return
        if mode_named(trace.mode).hands_over:  # turns and hand-overs, no switch point to move
            from .turns_inspector import TurnsInspectorScreen

            self.app.push_screen(TurnsInspectorScreen(trace))
            return
        from .inspector import InspectorScreen

        def rerun(at: int | tuple[float, int] | None) -> None:
            if at is not None:
                self.rerun_from(widget, trace, at)

        self.app.push_screen(InspectorScreen(trace), rerun)

    def rerun_from(self, widget: AnswerWidget, trace: Trace, at: int | tuple[float, int]) -> None:
        """Continue with the base model from another switch point, as a new answer: draft
        token `at`, or where the rule (γ, w) finds it (drafting on past the stored draft)."""
        if self._busy("re-running") or (engine := self._engine()) is None or self.chat is None:
            return
        answers = self.view.answers()
        if not answers or answers[-1] is not widget:
            # A new answer goes at the end of the chat; only there does it answer the same question.
            self.notify("Re-run works on the last answer of the chat.", severity="warning")
            return

        if isinstance(at, tuple):
            produce, label = partial(engine.rerun_with, trace, *at), f"re-run with γ {at[0]:g}, w {at[1]}"
        else:
            produce, label = partial(engine.rerun_from, trace, at), f"re-run from draft token {at}"
        self.lifecycle.start(self.chat.id, PAPER_MODE.name, produce, label=label)

    def action_help(self) -> None:
        self.app.push_screen(HelpScreen())

    def action_settings(self) -> None:
        def done(settings: DecodingSettings | None) -> None:
            if settings is None:
                return
            self.settings = settings
            if self.chat is not None:
                self.wsd_app.store.set_chat_settings(self.chat.id, settings.to_dict())
            self.status.set(mode=settings.mode)
            self.update_legend()
            self.notify("Settings saved for this chat." if self.chat else
                        "Settings saved; they apply to this new chat.")

        self.app.push_screen(SettingsScreen(self.settings, self.chat.title if self.chat else None), done)

    def action_rename_chat(self) -> None:
        if self.chat is None:
            self.notify("This chat is saved with its first question; rename it then.")
            return
        chat = self.chat

        def done(title: str | None) -> None:
            if title:
                self.wsd_app.store.rename_chat(chat.id, title)
                self.chat = self.wsd_app.store.get_chat(chat.id)
                self.refresh_chat_list()

        self.app.push_screen(PromptDialog("Rename the chat", chat.title), done)

    def action_delete_current_chat(self) -> None:
        if self.chat is None:
            self.notify("This chat is not saved yet.")
            return
        self.delete_chat(self.chat.id)

    def action_toggle_sidebar(self) -> None:
        sidebar = self.query_one("#sidebar")
        sidebar.display = not sidebar.display

    def action_export(self, fmt: str) -> None:
        if self.chat is None:
            self.notify("Nothing to export yet: ask a question first.")
            return
        try:
            path = export_chat(self.wsd_app.store, self.chat.id, fmt)
        except (OSError, WsdError) as exc:
            self.app.push_screen(ErrorDialog("Export failed", describe_error(exc)))
            return
        self.notify(terminal_safe(f"Exported to {path}", one_line=True), timeout=8, markup=False)

    def action_compare(self) -> None:
        if (engine := self._engine()) is None or self._busy("comparing"):
            return
        question = self.input.text.strip()
        history = context_messages(self.wsd_app.store.messages(self.chat.id)) if self.chat else []
        if question:
            messages = history + [{"role": "user", "content": question}]
        else:
            # No new question typed: compare the modes on the last question asked.
            last_user = max((i for i, m in enumerate(history) if m["role"] == "user"), default=None)
            if last_user is None:
                self.notify("Type a question first, then run Compare modes.")
                return
            messages = history[: last_user + 1]
        from .compare import CompareScreen

        # The system prompt is this chat's setting: the engine places it (messages.normalize).
        self.app.push_screen(CompareScreen(engine, messages, self.settings))
