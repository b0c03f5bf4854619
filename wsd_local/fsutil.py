"""Files written whole or not at all, and private ones.

The data folder holds chats, logs of prompts and the model registry; the config file
may hold server addresses: other users of the machine have no business reading them.
Folders wsd-local creates for them are 0700 and their files 0600, whatever the umask
(a umask only removes permission bits, so a file created 0600 is never more open; the
explicit chmod also covers a umask that would take the owner's own bits away).
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path, PurePosixPath, PureWindowsPath

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def private_dir(path: Path) -> Path:
    """`path` as a folder; created 0700 when missing (its missing parents get the
    usual permissions: the folder itself is what keeps its contents private)."""
    path = Path(path)
    if not path.is_dir():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            path.mkdir(mode=PRIVATE_DIR)
        except FileExistsError:  # another process made it first, or it is a file
            if not path.is_dir():
                raise
        else:
            os.chmod(path, PRIVATE_DIR)
    return path


def private_opener(path: str | os.PathLike[str], flags: int) -> int:
    """An `opener` for `open()`: a file it creates is 0600."""
    fd = os.open(path, flags, PRIVATE_FILE)
    if flags & os.O_CREAT:
        try:
            if os.fstat(fd).st_size == 0:  # new (or empty): ours to make private
                os.fchmod(fd, PRIVATE_FILE)
        except OSError:
            os.close(fd)
            raise
    return fd


def create_private_file(path: Path) -> None:
    """Create `path` empty and 0600 unless it exists (SQLite then opens it as it is,
    and gives its journal files the same permissions)."""
    os.close(private_opener(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND))


def write_text_atomic(path: Path, text: str, private: bool = False) -> None:
    """Write `text` (UTF-8) to `path` whole or not at all: into a temporary file of its
    own next to it (a unique name, so two writers never share one), fsync'd, then
    renamed over `path`. On any failure the temporary file is removed, `path` keeps
    its old text, and the error is raised. `private`: the file is 0600 and a folder
    created for it 0700."""
    path = Path(path)
    if private:
        private_dir(path.parent)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.part")
    try:
        with open(tmp, "x", encoding="utf-8", opener=private_opener if private else None) as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def path_inside(folder: Path, name: str) -> Path | None:
    """`folder / name` for a relative name that came from outside (a spec, a server's
    file list, an index file), or None when it could land anywhere else: an absolute
    path or a drive, a `..` or `.` part, a backslash, a NUL. Checked on the text, so a
    name is refused the same way on every system, before anything touches the disk."""
    if not isinstance(name, str) or not name or "\\" in name or "\x00" in name:
        return None
    if PurePosixPath(name).is_absolute() or PureWindowsPath(name).drive:
        return None
    if any(part in ("", ".", "..") for part in name.split("/")):
        return None
    return Path(folder) / name


__all__ = ["write_text_atomic", "path_inside", "private_dir", "private_opener", "create_private_file",
           "PRIVATE_DIR", "PRIVATE_FILE"]
