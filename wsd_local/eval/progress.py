"""Progress of an eval run on stderr: a bar with ETA on a terminal, plain lines in logs.

The bar shows the current prompt, mode and turn and, while an answer is written, its
phase and token count (read from the `LiveAnswer` the runner feeds).
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any, TextIO

from ..answer import LiveAnswer
from ..terminal_text import terminal_safe


def answer_label(ident: str, mode: str, turn: int, turns: int) -> str:
    """`everyday-03 · wsd` or `mt-1 · paper · turn 2/2`."""
    turn_text = f" · turn {turn + 1}/{turns}" if turns > 1 else ""
    return f"{terminal_safe(ident, one_line=True)} · {mode}{turn_text}"  # the id is the prompt file's


class Progress:
    """Plain lines: one when the run starts, one per finished answer."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.total = self.count = 0

    def start(self, total: int, already_done: int) -> None:
        self.total = total
        done = f" ({already_done} already in the file)" if already_done else ""
        self._line(f"wsd eval: {total} answers to write{done}")

    def begin(self, label: str) -> None:
        pass

    def update(self, live: LiveAnswer) -> None:
        pass

    def end(self, label: str, record: dict[str, Any]) -> None:
        self.count += 1
        t = record["tokens"]
        switch = f" · {record['switch']}" if record.get("switch") else ""
        self._line(f"[{self.count}/{self.total}] {label} · {t['answer']} tokens"
                   f" · {record['timings']['wall_s']:.1f} s{switch}")

    def failed(self, label: str, message: str) -> None:
        self.count += 1
        self._line(f"[{self.count}/{self.total}] {label} · failed: {message}")

    def note(self, text: str) -> None:
        self._line(text)

    def close(self) -> None:
        pass

    def _line(self, text: str) -> None:
        self.stream.write(terminal_safe(text, one_line=True) + "\n")
        self.stream.flush()


class BarProgress(Progress):
    """A tqdm bar (tqdm comes with huggingface_hub); the live part refreshes at most
    four times a second so drawing never slows decoding down."""

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__(stream)
        from tqdm import tqdm

        self._tqdm = tqdm
        self.bar: Any = None
        self._last = 0.0

    def start(self, total: int, already_done: int) -> None:
        self.total = total
        self.bar = self._tqdm(total=total, file=self.stream, unit="answer", dynamic_ncols=True,
                              bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}{postfix}]")
        if already_done:
            self.bar.write(f"wsd eval: {already_done} answers already in the file, {total} to write",
                           file=self.stream)

    def begin(self, label: str) -> None:
        self.bar.set_description_str(label[:40], refresh=False)
        self.bar.set_postfix_str("", refresh=True)

    def update(self, live: LiveAnswer) -> None:
        now = time.monotonic()
        if now - self._last < 0.25:
            return
        self._last = now
        tokens = live.draft_tokens + live.base_tokens
        self.bar.set_postfix_str(f"{live.phase} · {tokens} tok", refresh=True)

    def end(self, label: str, record: dict[str, Any]) -> None:
        self.count += 1
        self.bar.set_postfix_str("", refresh=False)
        self.bar.update(1)

    def failed(self, label: str, message: str) -> None:
        self.count += 1
        self.bar.write(terminal_safe(f"{label}: failed: {message}", one_line=True), file=self.stream)
        self.bar.update(1)

    def note(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(terminal_safe(text, one_line=True), file=self.stream)
        else:
            self._line(text)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def make_progress(stream: TextIO | None = None) -> Progress:
    """The bar on a terminal (when tqdm is importable), plain lines otherwise."""
    stream = stream or sys.stderr
    if stream.isatty() and _columns(stream) > 0:  # a pty without a size draws no bar
        try:
            return BarProgress(stream)
        except ImportError:
            pass
    return Progress(stream)


def _columns(stream: TextIO) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (OSError, ValueError, AttributeError):
        return 0


__all__ = ["Progress", "BarProgress", "make_progress", "answer_label"]
