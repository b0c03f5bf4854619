"""wsd-local: weak-to-strong decoding with local GGUF models (llama.cpp).

The engine is usable as a library; it never imports the TUI.
"""

from .answer import LiveAnswer, describe_switch
from .settings import DecodingSettings, RuntimeSettings
from .errors import WsdError
from .messages import Message
from .trace import Trace

__version__ = "0.1.0"


def __getattr__(name: str):
    # Importing llama.cpp is slow and loads native code: only when the engine is used.
    if name == "Engine":
        from .engine import Engine

        return Engine
    raise AttributeError(name)


__all__ = ["Engine", "DecodingSettings", "RuntimeSettings", "Message", "Trace", "WsdError",
           "LiveAnswer", "describe_switch"]
