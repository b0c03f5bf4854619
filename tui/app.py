"""`wsd chat`: the Textual app. It owns the engine and the store; the chat screen does
the rest. Models load in a thread worker, so the window is usable at once."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from wsd_local.config import DecodingSettings, RuntimeSettings
from wsd_local.store import Store

from .screens.chat import ChatScreen, describe_error
from .screens.dialogs import ErrorDialog

EngineLoader = Callable[[], Any]


class WsdChatApp(App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "wsd-local"
    BINDINGS = [Binding("ctrl+q", "quit", "Quit", priority=True)]

    def __init__(self, *, engine: Any = None, drafter: str | None = None, base: str | None = None,
                 runtime: RuntimeSettings | None = None, settings: DecodingSettings | None = None,
                 store: Store | None = None, data_path: str | Path | None = None,
                 engine_loader: EngineLoader | None = None, load_models: bool = True,
                 open_chat: int | None = None) -> None:
        """`engine`: an already loaded Engine (tests share one); otherwise `engine_loader`
        (default: `Engine.load(drafter, base, runtime)`) runs in a worker when the app
        starts, unless `load_models` is False (e.g. to browse saved chats)."""
        super().__init__()
        self.engine = engine
        self.default_settings = settings or DecodingSettings()
        self._own_store = store is None
        self.store = store if store is not None else Store(data_path)
        self.open_chat_id = open_chat
        self.loading = engine is None and load_models
        self.load_error: str | None = None
        runtime = runtime or RuntimeSettings()

        def load() -> Any:
            from wsd_local.engine import Engine  # heavy (llama.cpp): only in the worker
            return Engine.load(drafter=drafter, base=base, runtime=runtime)

        self._engine_loader: EngineLoader = engine_loader or load
        self.loading_label = (f"Loading the models: {drafter or 'demo drafter'} and "
                              f"{base or 'demo base'}…")

    def get_default_screen(self) -> Screen:
        return ChatScreen(self.default_settings)

    def on_mount(self) -> None:
        if self.loading:
            self.load_engine()

    @property
    def chat_screen(self) -> ChatScreen:
        for screen in self.screen_stack:
            if isinstance(screen, ChatScreen):
                return screen
        raise LookupError("no chat screen")

    def _mounted_chat_screen(self) -> ChatScreen | None:
        """The chat screen once it is mounted (before that, its on_mount reads our state)."""
        try:
            screen = self.chat_screen
        except LookupError:
            return None
        return screen if screen.is_mounted else None

    def model_names(self) -> dict[str, str]:
        identities = getattr(self.engine, "identities", None) or {}
        return {role: ident.name for role, ident in identities.items()}

    # -- loading -------------------------------------------------------------------
    @work(thread=True, exclusive=True, exit_on_error=False, group="load")
    def load_engine(self) -> Any:
        return self._engine_loader()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "load":
            return
        screen = self._mounted_chat_screen()
        if event.state == WorkerState.SUCCESS:
            self.loading = False
            self.engine = event.worker.result
            if screen is not None:
                screen.engine_ready()
        elif event.state in (WorkerState.ERROR, WorkerState.CANCELLED):
            self.loading = False
            self.load_error = describe_error(event.worker.error)
            if screen is not None:
                screen.engine_failed(self.load_error)
            self.push_screen(ErrorDialog("Could not load the models", self.load_error))

    # -- palette and quitting ---------------------------------------------------------
    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        if not isinstance(screen, ChatScreen):
            return
        commands = (
            ("New chat", "Start a new conversation (ctrl+n)", screen.action_new_chat),
            ("Rename chat", "Give this chat a new title (f2)", screen.action_rename_chat),
            ("Delete chat", "Delete this chat and its answers", screen.action_delete_current_chat),
            ("Settings", "System prompt, mode, threshold, window, limits, sampling (f3)",
             screen.action_settings),
            ("Regenerate last answer", "Write the last answer again (ctrl+r)", screen.action_regenerate),
            ("Stop answer", "Stop the answer being written; what was written is kept (esc)",
             screen.action_stop),
            ("Copy answer", "Copy the selected or last answer to the clipboard (f5)", screen.action_copy),
            ("Inspect answer", "Token probabilities, the switch point and what-if (ctrl+t)",
             screen.action_inspect),
            ("Compare modes", "Answer the question with WSD, the drafter alone and the base model alone",
             screen.action_compare),
            ("Export chat to Markdown", "Spans marked; written to the data folder's exports/",
             lambda: screen.action_export("markdown")),
            ("Export chat to JSON", "Every answer's full trace; written to the data folder's exports/",
             lambda: screen.action_export("json")),
            ("Toggle chat list", "Show or hide the sidebar (ctrl+b)", screen.action_toggle_sidebar),
            ("Help", "Keys and colours (f1)", screen.action_help),
        )
        for title, help_text, callback in commands:
            yield SystemCommand(title, help_text, callback)

    async def action_quit(self) -> None:
        screen = self._mounted_chat_screen()
        if screen is not None:
            screen.stop_for_exit()
        self.exit()

    def on_unmount(self) -> None:
        if self._own_store:
            self.store.close()
