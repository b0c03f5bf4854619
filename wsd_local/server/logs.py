"""The server's log: one line per event on the terminal, tracebacks only in the file.

`server.log` in the data directory (rotated at 5 MB) gets everything, with
tracebacks; the terminal gets the same lines without them, so a bug shows as one line
that points to the file.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path

from ..fsutil import private_opener
from ..paths import data_dir

LOGGERS = ("wsd_local.server", "uvicorn", "uvicorn.error", "uvicorn.access")


def server_log_path() -> Path:
    return data_dir() / "server.log"


class OneLineFormatter(logging.Formatter):
    """A record in one line: a traceback is replaced by a pointer to the log file."""

    def __init__(self, log_file: Path) -> None:
        super().__init__("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S")
        self.log_file = log_file

    def format(self, record: logging.LogRecord) -> str:
        saved = record.exc_info, record.exc_text, record.stack_info
        had_traceback = record.exc_info is not None
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        try:
            text = " ".join(super().format(record).split("\n"))
        finally:
            record.exc_info, record.exc_text, record.stack_info = saved
        return f"{text} (traceback in {self.log_file})" if had_traceback else text


class PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """The log file, and each one rotation starts, is 0600: it names clients and errors."""

    def _open(self):  # noqa: ANN202 - logging's own signature
        return open(self.baseFilename, self.mode, encoding=self.encoding, errors=self.errors,
                    opener=private_opener)


def configure_logging(log_file: Path | None = None, level: int = logging.INFO) -> Path:
    log_file = log_file or server_log_path()
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(OneLineFormatter(log_file))
    file = PrivateRotatingFileHandler(log_file, maxBytes=5_000_000, backupCount=2, encoding="utf-8")
    file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    for name in LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers = [console, file]
        logger.setLevel(level)
        logger.propagate = False
    return log_file
