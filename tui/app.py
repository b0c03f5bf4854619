"""`wsd chat`: the Textual app. It owns the engine and the store; the chat screen does
the rest. Models load in a thread worker, so the window is usable at once."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterable

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from wsd_local.settings import DecodingSettings, RuntimeSettings
from wsd_local.store import Store

from .actions import palette_actions
from .errors import describe_error
from .models_state import ModelState
from .screens.chat import ChatScreen
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
                 open_chat: int | None = None, remote: Any = None) -> None:
        """`engine`: an already loaded Engine (tests share one); otherwise `engine_loader`
        (default: `Engine.load(drafter, base, runtime)`) runs in a worker when the app
        starts, unless `load_models` is False (e.g. to browse saved chats). `remote`: the
        API key and timeout for a base model on a server (`RemoteOptions`)."""
        super().__init__()
        self.engine = engine
        self.default_settings = settings or DecodingSettings()
        self._own_store = store is None
        self.store = store if store is not None else Store(data_path)
        self.open_chat_id = open_chat
        self.models = (ModelState.READY if engine is not None
                       else ModelState.LOADING if load_models else ModelState.NOT_LOADED)
        self.load_error: str | None = None
        runtime = runtime or RuntimeSettings()

        def load() -> Any:
            from wsd_local.engine import Engine  # heavy (llama.cpp): only in the worker
            return Engine.load(drafter=drafter, base=base, runtime=runtime, remote=remote)

        self._engine_loader: EngineLoader = engine_loader or load
        self.loading_label = (f"Loading the models: {drafter or 'demo drafter'} and "
                              f"{base or 'demo base'}…")

    def get_default_screen(self) -> Screen:
        return ChatScreen(self.default_settings)

    def on_mount(self) -> None:
        if self.models is ModelState.LOADING:
            self.load_engine()

    @property
    def chat_screen(self) -> ChatScreen:
        return next(screen for screen in self.screen_stack if isinstance(screen, ChatScreen))

    def _mounted_chat_screen(self) -> ChatScreen | None:
        """The chat screen once it is mounted (before that, its on_mount reads our state)."""
        screen = next((s for s in self.screen_stack if isinstance(s, ChatScreen)), None)
        return screen if screen is not None and screen.is_mounted else None

    # -- loading -------------------------------------------------------------------
    @work(thread=True, exclusive=True, exit_on_error=False, group="load")
    def load_engine(self) -> Any:
        return self._engine_loader()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "load":
            return
        screen = self._mounted_chat_screen()
        if event.state == WorkerState.SUCCESS:
            self.engine = event.worker.result
            self.models = ModelState.READY
            if screen is not None:
                screen.engine_ready()
        elif event.state in (WorkerState.ERROR, WorkerState.CANCELLED):
            self.models = ModelState.FAILED
            self.load_error = describe_error(event.worker.error)
            if screen is not None:
                screen.engine_failed(self.load_error)
            self.push_screen(ErrorDialog("Could not load the models", self.load_error))

    # -- palette and quitting ---------------------------------------------------------
    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        if not isinstance(screen, ChatScreen):
            return
        for action in palette_actions():
            help_text = action.description[:1].upper() + action.description[1:]
            if action.keys:
                help_text += f" ({action.key_label})"
            yield SystemCommand(action.title, help_text, partial(screen.run_action, action.action))

    async def action_quit(self) -> None:
        screen = self._mounted_chat_screen()
        if screen is not None:
            screen.lifecycle.stop_for_exit()
        self.exit()

    def on_unmount(self) -> None:
        if self._own_store:
            self.store.close()
