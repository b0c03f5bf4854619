"""Model backends: the protocol the decoder needs, and its llama.cpp implementation."""

from .protocol import Backend, GeneratedToken

__all__ = ["Backend", "GeneratedToken"]
