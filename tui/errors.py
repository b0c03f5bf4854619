"""One line for the user about any error. A `WsdError` already is that line; anything
else is a bug: its type and message, and where the traceback went (`tui-errors.log`
in the data folder), never a traceback on screen.
"""

from __future__ import annotations

import time
import traceback

from wsd_local.errors import WsdError
from wsd_local.fsutil import private_opener
from wsd_local.terminal_text import terminal_safe
from wsd_local.paths import data_dir

ERROR_LOG = "tui-errors.log"


def describe_error(error: BaseException | None) -> str:
    if isinstance(error, WsdError):
        return terminal_safe(error.one_line(), one_line=True)  # it may quote a file, a server, a prompt
    if error is None:
        return "unknown error"
    try:
        log = data_dir() / ERROR_LOG
        with open(log, "a", encoding="utf-8", opener=private_opener) as fh:
            fh.write(time.strftime("%Y-%m-%d %H:%M:%S ") + "".join(
                traceback.format_exception(type(error), error, error.__traceback__)) + "\n")
        where = f" (details in {log})"
    except OSError:
        where = ""
    message = " ".join(str(error).split())
    return terminal_safe(f"internal error: {type(error).__name__}: {message}{where}", one_line=True)
