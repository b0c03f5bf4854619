"""The run file: JSON lines, appended one whole line at a time, fsync'd.

Line kinds (`type`):
- `header`: the settings of a run (decoding settings without the mode, the models, the
  prompt file). Its `run` field is a fingerprint of the settings and models; every
  answer carries the fingerprint it was made with.
- `answer`: one prompt x mode x turn (see `records.py`).
- `error`: an answer that could not be made (it is tried again on resume).

Reading rules: for one (run, id, mode, turn) the last answer line wins; for one run
fingerprint the last header wins. A crash can leave at most one torn last line (each
line is one `write` call, followed by fsync); opening the file for appending cuts it
off. A disk-full error undoes a partly written line, so the file always holds whole
lines only.
"""

from __future__ import annotations

import errno
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import fsutil
from ..errors import UsageError, WsdError

try:  # one writer per run file; advisory locks are POSIX-only
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

FORMAT = "wsd-eval"
VERSION = 1


class RunFileError(WsdError):
    """A run file that cannot be read or written (exit 1: the machine, not the command)."""


class RunFileRefused(UsageError):
    """A run file this command should not add to or read as asked (exit 2: change the
    command, e.g. another output file or --force)."""


Key = tuple[str, str, str, int]  # (run fingerprint, id, mode, turn)


@dataclass
class RunContents:
    path: Path
    headers: dict[str, dict[str, Any]] = field(default_factory=dict)  # fingerprint -> last header
    latest: str | None = None  # fingerprint of the last `run` header line (what a resume continues)
    answers: dict[Key, dict[str, Any]] = field(default_factory=dict)  # last answer per key
    errors: dict[Key, dict[str, Any]] = field(default_factory=dict)  # still failing
    bad_lines: list[int] = field(default_factory=list)  # lines that are not records
    torn_tail: int = 0  # bytes of an unfinished last line (a crash while writing)

    @property
    def runs(self) -> list[str]:
        return list(self.headers)

    def rows(self, run: str | None = None, mode: str | None = None) -> list[dict[str, Any]]:
        return [r for (fp, _, m, _), r in self.answers.items()
                if (run is None or fp == run) and (mode is None or m == mode)]


def key_of(record: dict[str, Any]) -> Key:
    return (str(record["run"]), str(record["id"]), str(record["mode"]), int(record.get("turn", 0)))


def read_run(path: Path) -> RunContents:
    """Everything in a run file (a missing file reads as empty)."""
    contents = RunContents(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return contents
    except OSError as exc:
        raise RunFileError(f"cannot read {path}: {exc.strerror or exc}") from None
    end = data.rfind(b"\n") + 1
    contents.torn_tail = len(data) - end
    for number, raw in enumerate(data[:end].split(b"\n")[:-1], start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
            kind = record["type"]
            if kind == "header":
                if record.get("format") != FORMAT:
                    raise ValueError("not a wsd eval header")
                contents.headers[str(record["run"])] = record
                if record.get("purpose", "run") == "run":
                    contents.latest = str(record["run"])
            elif kind == "answer":
                contents.answers[key_of(record)] = record
                contents.errors.pop(key_of(record), None)
            elif kind == "error":
                contents.errors[key_of(record)] = record
            else:
                raise ValueError(kind)
        except (ValueError, KeyError, TypeError):
            contents.bad_lines.append(number)
    if contents.answers and not contents.headers:
        raise RunFileRefused(f"{path} has answers but no header line", "is it a wsd eval run file?")
    return contents


class RunWriter:
    """Appends records to a run file. Open with `open()`; use as a context manager."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self.dropped_tail = 0

    def open(self) -> "RunWriter":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        except OSError as exc:
            raise RunFileError(f"cannot open {self.path} for writing: {exc.strerror or exc}") from None
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                raise RunFileError(f"another `wsd eval` is writing {self.path}",
                                   "wait for it to finish, or write to another file") from None
        self._fd = fd
        self.dropped_tail = self._cut_torn_tail()
        return self

    def _cut_torn_tail(self) -> int:
        """Drop an unfinished last line left by a killed run (it is answered again)."""
        assert self._fd is not None
        size = os.fstat(self._fd).st_size
        if size == 0:
            return 0
        with open(self.path, "rb") as f:
            # Read back from the end until the last newline (lines are a few kB to MBs).
            chunk, position = 65536, size
            while position > 0:
                position = max(0, position - chunk)
                f.seek(position)
                block = f.read(size - position)
                last = block.rfind(b"\n")
                if last >= 0:
                    keep = position + last + 1
                    break
            else:
                keep = 0
        if keep < size:
            os.ftruncate(self._fd, keep)
            os.fsync(self._fd)
        return size - keep

    def append(self, record: dict[str, Any]) -> None:
        """Write one record as one line and make it durable; on failure (disk full) the
        partial line is removed and a `RunFileError` says what was kept."""
        assert self._fd is not None, "open() first"
        line = (json.dumps(record, ensure_ascii=False) + "\n").encode()
        before = os.fstat(self._fd).st_size
        try:
            written = os.write(self._fd, line)
            if written != len(line):
                raise OSError(errno.ENOSPC, "short write")
            os.fsync(self._fd)
        except OSError as exc:
            try:
                os.ftruncate(self._fd, before)
            except OSError:
                pass
            reason = "the disk is full" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else (
                exc.strerror or str(exc))
            raise RunFileError(f"cannot write to {self.path}: {reason}",
                               "the answers written before are kept; free space and run the "
                               "same command again to resume") from None

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # also releases the lock
            self._fd = None

    def __enter__(self) -> "RunWriter":
        return self.open() if self._fd is None else self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_text_atomic(path: Path, text: str) -> None:
    """`fsutil.write_text_atomic`, a failure told as a RunFileError (one line)."""
    try:
        fsutil.write_text_atomic(path, text)
    except OSError as exc:
        raise RunFileError(f"cannot write {path}: {exc.strerror or exc}") from None


def write_json_atomic(path: Path, data: Any) -> None:
    write_text_atomic(path, json.dumps(data, ensure_ascii=False, indent=1) + "\n")


__all__ = ["RunWriter", "RunContents", "RunFileError", "read_run", "key_of", "write_json_atomic", "write_text_atomic",
           "FORMAT", "VERSION"]
