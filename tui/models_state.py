"""Where the app's models stand: one value, read by every screen."""

from __future__ import annotations

import enum


class ModelState(enum.Enum):
    LOADING = "loading"  # the load worker is running; questions wait for it
    READY = "ready"  # `app.engine` answers
    FAILED = "failed"  # the load failed; `app.load_error` says why
    NOT_LOADED = "not loaded"  # started without models (browsing saved chats)
