"""The public entry point: load a drafter and a base model, answer with WSD.

    from wsd_local import Engine, DecodingSettings
    engine = Engine.load()                      # the demo pair
    trace = engine.run("How do I ...?", DecodingSettings())
    for event in engine.generate(messages, settings, cancel=threading.Event()):
        ...                                     # typed events, see events.py

One `Engine` serialises its own use (llama.cpp contexts are not thread-safe): a second
`generate` waits for the first to finish. Run it from one worker thread. With both
models on servers (`runs_nothing_here`) nothing is shared that way: answers run at once,
each in its own thread (docs/REMOTE.md, "Answers at once").
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any, Iterable, Iterator, Sequence

from .backend.llama import LlamaBackend, active_backend_name
from .backend.protocol import Backend, all_served, served
from .backend.remote_spec import RemoteOptions
from .settings import DecodingSettings, RuntimeSettings
from .errors import ConfigError
from .events import Event, Finished
from .messages import Message, normalize
from .models.resolve import remote_spec_for, resolve_model
from .modes import PAPER_MODE, Mode, mode_named
from .trace import ModelIdentity, Trace


class Engine:
    def __init__(self, drafter: Backend | None, base: Backend | None,
                 load_seconds: float = 0.0) -> None:
        self.drafter = drafter
        self.base = base
        self.load_seconds = load_seconds
        self.backend_name = active_backend_name()
        loaded = [m for m in (drafter, base) if m is not None]
        served = sorted({m.identity.engine for m in loaded if m.identity.remote})
        if served:  # e.g. "CPU + vLLM" (a model here and one on a server), or "vLLM"
            local = [self.backend_name] if any(not m.identity.remote for m in loaded) else []
            self.backend_name = " + ".join([*local, *served])
        self._lock = threading.Lock()
        self.warnings: list[str] = []
        if drafter is not None and base is not None:
            from .models.pair import template_warnings

            # A drafter on a server was checked to apply a chat template when it loaded.
            has_template = drafter.chat_template is not None or drafter.identity.remote
            self.warnings = template_warnings(drafter.identity.name, has_template,
                                              base.identity.name, base.chat_template is not None)

    @classmethod
    def load(cls, drafter: str | None = None, base: str | None = None,
             runtime: RuntimeSettings | None = None,
             roles: Sequence[str] = ("drafter", "base"),
             remote: RemoteOptions | None = None) -> "Engine":
        """Load the models (names, GGUF paths, or the URL of a vLLM server,
        `URL[#model]`, for either; None means the demo pair). `remote` holds the API key and
        timeout for servers (default: WSD_API_KEY from the environment)."""
        runtime = runtime or RuntimeSettings()
        start = time.perf_counter()
        loaded: dict[str, Backend] = {}
        wanted = [(role, spec) for role, spec in (("drafter", drafter), ("base", base)) if role in roles]
        # A server first: an unreachable one fails in a second, before any file loads.
        wanted.sort(key=lambda item: remote_spec_for(item[1], item[0]) is None)
        try:
            for role, spec in wanted:
                loaded[role] = cls._load_one(spec, role, runtime, remote)
            _share_vocabulary(loaded.get("drafter"), loaded.get("base"))
        except BaseException:
            for model in loaded.values():
                model.close()
            raise
        return cls(loaded.get("drafter"), loaded.get("base"), time.perf_counter() - start)

    @staticmethod
    def _load_one(spec: str | None, role: str, runtime: RuntimeSettings,
                  remote: RemoteOptions | None) -> Backend:
        url = remote_spec_for(spec, role)
        if url is not None:
            from .backend.remote import RemoteBackend

            return RemoteBackend(url, role, remote or RemoteOptions.from_env())
        resolved = resolve_model(spec, role)
        return LlamaBackend(resolved.path, role, runtime, name=resolved.name)

    @property
    def runs_nothing_here(self) -> bool:
        """Both models (every one loaded) are on servers: answers may run concurrently,
        one thread each, since nothing shares llama.cpp's state (docs/REMOTE.md)."""
        return all_served(self.drafter, self.base)

    @property
    def identities(self) -> dict[str, ModelIdentity]:
        return {m.role: m.identity for m in (self.drafter, self.base) if m is not None}

    def _require(self, mode: Mode) -> None:
        for role in mode.models:
            if getattr(self, role) is None:
                raise ConfigError(f"mode {mode.name!r} needs a {role} model, and none is loaded")

    def generate(self, messages: str | Iterable[Message | dict], settings: DecodingSettings | None = None,
                 cancel: threading.Event | None = None) -> Iterator[Event]:
        """Answer the conversation; yields events, the last one `Finished(trace)`."""
        settings = settings or DecodingSettings()
        conversation = normalize(messages, settings.system)
        mode = mode_named(settings.mode)
        self._require(mode)
        cancel = cancel or threading.Event()
        with self._one_at_a_time():
            decoder = mode.new_decoder(self.drafter, self.base, conversation, settings, cancel,
                                       backend_name=self.backend_name)
            yield from self._watch_servers(decoder.events(), cancel)

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
        return self._rerun(trace, cancel, forced_switch=switch_index)

    def rerun_with(self, trace: Trace, threshold: float, window: int,
                   cancel: threading.Event | None = None) -> Iterator[Event]:
        """The stored answer with another threshold and window (the what-if of the
        inspector where the stored scores cannot say where the switch falls)."""
        return self._rerun(trace, cancel, threshold=threshold, window=window)

    def _rerun(self, trace: Trace, cancel: threading.Event | None, **how: Any) -> Iterator[Event]:
        from .rerun import rerun

        self._require(PAPER_MODE)
        cancel = cancel or threading.Event()
        with self._one_at_a_time():
            yield from self._watch_servers(rerun(self, trace, cancel, **how), cancel)

    def _one_at_a_time(self) -> contextlib.AbstractContextManager:
        """The engine's lock while a model runs here; nothing when both are on servers,
        which keep each answer's state per thread."""
        return contextlib.nullcontext() if self.runs_nothing_here else self._lock

    def _watch_servers(self, events: Iterator[Event], cancel: threading.Event) -> Iterator[Event]:
        """Run one answer's events. A model on a server that is lost mid-answer stops the
        answer the way Esc does (what was written is kept); its trace then says
        `connection_lost` or `server_error`, with the reason in `stop_note`."""
        servers = [s for s in map(served, (self.drafter, self.base)) if s is not None]
        if not servers:
            yield from events
            return
        for server in servers:
            server.begin_answer(cancel)
        try:
            for event in events:
                if isinstance(event, Finished):
                    lost = next((s.lost for s in servers if s.lost), None)
                    if lost is not None:
                        event.trace.stop_reason, event.trace.stop_note = lost
                yield event
        finally:
            for server in servers:
                server.end_answer()

    def close(self) -> None:
        for model in (self.drafter, self.base):
            if model is not None:
                model.close()
        self.drafter = self.base = None


def _share_vocabulary(drafter: Backend | None, base: Backend | None) -> None:
    """A model on a server whose tokenizer is the other model's takes its vocabulary,
    so draft token ids are handed over (see remote_twin.py): a server model next to a
    local one adopts the local vocabulary; two server models compare tokenizers."""
    if drafter is None or base is None:
        return
    remote_drafter, remote_base = served(drafter), served(base)
    if remote_drafter is not None and remote_base is not None:
        remote_base.share_vocabulary_with(remote_drafter)
    elif remote_base is not None:
        remote_base.adopt_vocabulary(drafter)
    elif remote_drafter is not None:
        remote_drafter.adopt_vocabulary(base)
