"""The public entry point: load a drafter and a base model, answer with WSD.

    from wsd_local import Engine, DecodingSettings
    engine = Engine.load()                      # the demo pair
    trace = engine.run("How do I ...?", DecodingSettings())
    for event in engine.generate(messages, settings, cancel=threading.Event()):
        ...                                     # typed events, see events.py

One `Engine` serialises its own use (llama.cpp contexts are not thread-safe): a second
`generate` waits for the first to finish. Run it from one worker thread.
"""

from __future__ import annotations

import threading
import time
from typing import Iterable, Iterator, Sequence

from .backend.llama import LlamaBackend, active_backend_name
from .config import DecodingSettings, RuntimeSettings
from .decoder import Decoder
from .errors import ConfigError
from .events import Event, Finished
from .messages import Message, normalize
from .models.resolve import resolve_model
from .trace import ModelIdentity, Trace

ROLES_FOR_MODE = {"wsd": ("drafter", "base"), "paper": ("drafter", "base"),
                  "base": ("base",), "draft": ("drafter",)}


class Engine:
    def __init__(self, drafter: LlamaBackend | None, base: LlamaBackend | None,
                 load_seconds: float = 0.0) -> None:
        self.drafter = drafter
        self.base = base
        self.load_seconds = load_seconds
        self.backend_name = active_backend_name()
        self._lock = threading.Lock()
        self.warnings: list[str] = []
        if drafter is not None and base is not None:
            from .models.pair import template_warnings

            self.warnings = template_warnings(drafter.identity.name, drafter.chat_template is not None,
                                              base.identity.name, base.chat_template is not None)

    @classmethod
    def load(cls, drafter: str | None = None, base: str | None = None,
             runtime: RuntimeSettings | None = None,
             roles: Sequence[str] = ("drafter", "base")) -> "Engine":
        """Load the models (names or GGUF paths; None means the demo pair)."""
        runtime = runtime or RuntimeSettings()
        start = time.perf_counter()
        loaded: dict[str, LlamaBackend] = {}
        for role, spec in (("drafter", drafter), ("base", base)):
            if role in roles:
                resolved = resolve_model(spec, role)
                loaded[role] = LlamaBackend(resolved.path, role, runtime, name=resolved.name)
        return cls(loaded.get("drafter"), loaded.get("base"), time.perf_counter() - start)

    @property
    def identities(self) -> dict[str, ModelIdentity]:
        return {m.role: m.identity for m in (self.drafter, self.base) if m is not None}

    def _require(self, mode: str) -> None:
        for role in ROLES_FOR_MODE[mode]:
            if getattr(self, role) is None:
                raise ConfigError(f"mode {mode!r} needs a {role} model, and none is loaded")

    def generate(self, messages: str | Iterable[Message | dict], settings: DecodingSettings | None = None,
                 cancel: threading.Event | None = None) -> Iterator[Event]:
        """Answer the conversation; yields events, the last one `Finished(trace)`."""
        settings = settings or DecodingSettings()
        conversation = normalize(messages, settings.system)
        self._require(settings.mode)
        with self._lock:
            decoder = Decoder(self.drafter, self.base, conversation, settings, cancel,
                              backend_name=self.backend_name)
            yield from decoder.events()

    def run(self, messages: str | Iterable[Message | dict], settings: DecodingSettings | None = None,
            cancel: threading.Event | None = None) -> Trace:
        """Answer and return the trace (no streaming)."""
        for event in self.generate(messages, settings, cancel):
            if isinstance(event, Finished):
                return event.trace
        raise RuntimeError("the decoder ended without a trace")  # pragma: no cover

    def rerun_from(self, trace: Trace, switch_index: int,
                   cancel: threading.Event | None = None) -> Iterator[Event]:
        """Continue with the base model from another switch point of a stored answer's
        draft (the what-if of the inspector); yields events of a new answer."""
        from .rerun import rerun_from

        self._require("paper")
        with self._lock:
            yield from rerun_from(self, trace, switch_index, cancel)

    def close(self) -> None:
        for model in (self.drafter, self.base):
            if model is not None:
                model.close()
        self.drafter = self.base = None
