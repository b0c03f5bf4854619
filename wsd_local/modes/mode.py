"""What a decoding mode is: the `Mode` declaration and the protocol its decoder keeps.

Each mode declares itself once, in its own module of this package (`wsd.py`, ...), and
`modes/__init__.py` lists them. Settings, the engine, the trace, the answer so far and
every view ask the declaration (`mode_named(settings.mode)`) instead of comparing names.
"""

from __future__ import annotations

import enum
import importlib
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator, Protocol, Sequence

if TYPE_CHECKING:
    from ..backend.protocol import Backend
    from ..settings import DecodingSettings
    from ..events import Event
    from ..messages import Message
    from ..trace import Trace

#: The two models, by role.
DRAFTER, BASE = "drafter", "base"


class Records(enum.Enum):
    """What an answer of the mode records about the models' collaboration."""

    SWITCH = "one switch"  # the drafter writes, the base model takes over once
    HANDOVERS = "hand-overs"  # the models take turns; each turn records why it began
    NOTHING = "none"  # one model writes the whole answer


class AnswerDecoder(Protocol):
    """One answer: create, then iterate `events()`; the last event is `Finished(trace)`."""

    trace: "Trace"

    def events(self) -> Iterator["Event"]: ...


class DecoderFactory(Protocol):
    def __call__(self, drafter: "Backend | None", base: "Backend | None",
                 messages: Sequence["Message"], settings: "DecodingSettings",
                 cancel: threading.Event | None = None, *, backend_name: str = "") -> AnswerDecoder: ...


@dataclass(frozen=True)
class Mode:
    name: str  # what users pick: `--mode`, the settings form, the server's `wsd.mode`
    models: tuple[str, ...]  # the roles it needs loaded, (DRAFTER, BASE) or one of them
    records: Records
    description: str  # a phrase for help texts: what the mode does
    title: str  # its column title where modes are compared side by side
    color: str  # its colour in plots
    #: The decoding settings that change its answers (every other one is ignored).
    settings: tuple[str, ...]
    #: Its decoder class, as "module:Class". Named, not imported: the decoders build on
    #: the settings and the trace, which build on these declarations.
    decoder: str
    #: The switch is found while the drafter writes, so the drafter stops at it and its
    #: draft past the last scored token is never written.
    online: bool = False
    #: `repetition_stop = auto` turns the stop on (see `DecodingSettings.resolved`).
    auto_stops_repetition: bool = True
    #: Settings that may not be on in this mode: they would change what the mode stands
    #: for (the paper's pipeline keeps the paper's switch rule).
    refuses: tuple[str, ...] = ()

    def uses(self, role: str) -> bool:
        return role in self.models

    @property
    def alone(self) -> str | None:
        """The one model that writes the whole answer, or None when both take part."""
        return self.models[0] if len(self.models) == 1 else None

    @property
    def switches(self) -> bool:
        """Its answers have one switch point, from the drafter to the base model."""
        return self.records is Records.SWITCH

    @property
    def hands_over(self) -> bool:
        """Its answers pass between the models turn by turn."""
        return self.records is Records.HANDOVERS

    def applies(self, setting: str) -> bool:
        return setting in self.settings

    def decoder_class(self) -> DecoderFactory:
        module, _, name = self.decoder.partition(":")
        return getattr(importlib.import_module(module), name)

    def new_decoder(self, drafter: "Backend | None", base: "Backend | None",
                    messages: Sequence["Message"], settings: "DecodingSettings",
                    cancel: threading.Event | None = None, backend_name: str = "") -> AnswerDecoder:
        """The decoder of one answer in this mode."""
        return self.decoder_class()(drafter, base, messages, settings, cancel, backend_name=backend_name)


#: Settings every mode reads: the answer's length, sampling and the system prompt.
COMMON_SETTINGS = ("max_tokens", "temperature", "top_p", "seed", "system")
#: Settings of the weak-to-strong pipeline (draft, check, switch, continue).
SWITCH_SETTINGS = ("threshold", "window", "draft_max_tokens", "handoff", "sample_base", "repetition_stop")
