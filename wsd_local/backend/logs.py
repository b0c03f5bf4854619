"""Route llama.cpp's C-level log into a file: it must never reach the terminal (the TUI
draws there, and `wsd generate --json` must print only JSON)."""

from __future__ import annotations

import ctypes
import threading
from pathlib import Path

import llama_cpp

from ..fsutil import private_dir, private_opener

_lock = threading.Lock()
_state: dict[str, object] = {}


def route_llama_logs(path: Path) -> None:
    """Install a log callback that appends llama.cpp's messages to `path` (idempotent)."""
    with _lock:
        if _state.get("path") == path:
            return
        private_dir(path.parent)
        old = _state.get("file")
        # Private: llama.cpp may log prompt text.
        log_file = open(path, "a", encoding="utf-8", errors="replace", buffering=1, opener=private_opener)

        @llama_cpp.llama_log_callback
        def _callback(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
            try:
                log_file.write(text.decode("utf-8", errors="replace"))
            except ValueError:  # file closed at interpreter exit
                pass

        llama_cpp.llama_log_set(_callback, ctypes.c_void_p(0))
        # Keep the ctypes callback alive as long as llama.cpp may call it.
        _state.update(path=path, file=log_file, callback=_callback)
        if old is not None:
            old.close()  # type: ignore[attr-defined]
