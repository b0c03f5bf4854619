"""Export a saved chat: Markdown for reading (spans marked), JSON for analysis (full traces).

Markdown marks who wrote what without relying on colour: the drafter's span starts
with `[drafter ▸]`, the switch point is `[⟫ base ▸]`, and the draft the base model did
not keep follows the answer as a quoted block. Every text that came from a user, a
model or a file goes through `inert_markdown` (no raw HTML, no remote images, no fence
left open). Never imports Textual.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

from .fsutil import write_text_atomic
from .markdown_text import inert_markdown
from .modes import mode_named
from .paths import data_dir
from .store import ChatRecord, MessageRecord, Store
from .trace import Trace

JSON_FORMAT = "wsd-local-chat"
JSON_FORMAT_VERSION = 1

DRAFTER_MARK = "**[drafter ▸]**"
SWITCH_MARK = "**[⟫ base ▸]**"
BASE_MARK = "**[base ▸]**"
TO_DRAFTER_MARK = "**[⟪ drafter ▸]**"  # nudging: the drafter takes the turn again


def chat_to_markdown(chat: ChatRecord, messages: list[MessageRecord]) -> str:
    lines: list[str] = [f"# {_inline(chat.title)}", ""]
    settings = chat.settings or {}
    if settings:
        shown = ", ".join(f"{k} {_inline(str(settings[k]))}" for k in ("mode", "threshold", "window",
                                                          "max_tokens", "temperature", "seed")
                          if k in settings)
        lines += [f"_Exported from wsd-local on {_date(time.time())}. Settings: {shown}._", ""]
    if settings.get("system"):
        lines += ["**System prompt:**", "", _quote(str(settings["system"])), ""]
    lines += [f"Legend: {DRAFTER_MARK} starts the text written by the aligned drafter; "
              f"{SWITCH_MARK} marks the switch point, where the base model took over."
              + (f" Nudging answers take turns: {BASE_MARK} where the base model writes again, "
                 f"{TO_DRAFTER_MARK} where the drafter does."
                 if any(m.trace is not None and mode_named(m.trace.mode).hands_over for m in messages)
                 else ""), ""]
    for message in messages:
        if message.role == "user":
            lines += ["## You", "", inert_markdown(message.content), ""]
        elif message.role == "assistant":
            lines += _answer_markdown(message)
    return "\n".join(lines).rstrip() + "\n"


def _answer_markdown(message: MessageRecord) -> list[str]:
    trace = message.trace
    heading = "## Assistant"
    notes: list[str] = []
    if trace is not None:
        models = trace.models
        names = {role: models[role].name for role in models}
        heading += f" ({trace.mode}"
        if trace.switch_index is not None:
            how = "switch" if trace.switch_fired else "no switch, whole draft kept"
            heading += f", {how} at draft token {trace.switch_index}"
        elif mode_named(trace.mode).hands_over:
            n = trace.counts.get("handovers", 0)
            heading += f", {n} hand-over{'s' if n != 1 else ''}"
        heading += ")"
        if names:
            notes.append(" · ".join(f"{role}: {_inline(name)}" for role, name in names.items()))
    if message.status != "complete":
        notes.append({"stopped": "stopped by the user", "pending": "interrupted, not finished",
                      "error": f"failed: {_inline(message.error or 'error')}"}.get(message.status, message.status))
    lines = [heading, ""]
    if notes:
        lines += [f"_{' — '.join(notes)}_", ""]
    lines += [inert_markdown(_marked_answer(message, trace)), ""]
    if trace is not None and trace.discarded_draft.strip():
        lines += ["> _Draft not kept by the base model:_", ">", _quote(trace.discarded_draft.strip()), ""]
    return lines


def _marked_answer(message: MessageRecord, trace: Trace | None) -> str:
    if trace is None or not trace.spans:
        return message.content
    parts: list[str] = []
    turns = mode_named(trace.mode).hands_over
    for i, span in enumerate(trace.spans):
        if turns and i > 0:  # a mark at every turn that has text
            if span["text"]:
                mark = TO_DRAFTER_MARK if span["model"] == "drafter" else BASE_MARK
                parts.append(f"{mark}{span['text']}" if span["text"][:1].isspace()
                             else f"{mark} {span['text']}")
        elif span["model"] == "drafter":
            parts.append(f"{DRAFTER_MARK} {span['text']}" if i == 0 else span["text"])
        else:
            mark = SWITCH_MARK if trace.switch_index is not None else BASE_MARK
            # Keep the base model's leading whitespace after the marker, where it belongs.
            parts.append(f"{mark}{span['text']}" if span["text"][:1].isspace()
                         else f"{mark} {span['text']}")
    if trace.switch_index is not None and all(s["model"] == "drafter" for s in trace.spans):
        parts.append(f" {SWITCH_MARK}")  # switch found, base wrote nothing (yet)
    return "".join(parts)


def chat_to_json(chat: ChatRecord, messages: list[MessageRecord]) -> str:
    data: dict[str, Any] = {
        "format": JSON_FORMAT,
        "format_version": JSON_FORMAT_VERSION,
        "exported_at": time.time(),
        "chat": {"id": chat.id, "title": chat.title, "created_at": chat.created_at,
                 "updated_at": chat.updated_at, "settings": chat.settings},
        "messages": [],
    }
    for m in messages:
        trace = m.trace
        data["messages"].append({
            "role": m.role, "content": m.content, "status": m.status, "created_at": m.created_at,
            "error": m.error, "trace": trace.to_dict() if trace is not None else None,
        })
    return json.dumps(data, indent=2, ensure_ascii=False)


def export_chat(store: Store, chat_id: int, fmt: str, folder: str | Path | None = None) -> Path:
    """Write one chat to `folder` (default: `<data dir>/exports`); returns the file path."""
    chat = store.get_chat(chat_id)
    if chat is None:
        from .errors import WsdError
        raise WsdError(f"no chat with id {chat_id}")
    messages = store.messages(chat_id)
    if fmt in ("md", "markdown"):
        text, suffix = chat_to_markdown(chat, messages), ".md"
    elif fmt == "json":
        text, suffix = chat_to_json(chat, messages), ".json"
    else:
        from .errors import WsdError
        raise WsdError(f"unknown export format {fmt!r}", "use markdown or json")
    target_dir = Path(folder) if folder is not None else data_dir() / "exports"
    path = target_dir / f"{_slug(chat.title)}-{chat.id}{suffix}"
    write_text_atomic(path, text, private=True)  # a chat is its owner's; never half-written
    return path


def _quote(text: str) -> str:
    text = inert_markdown(text.strip("\n"))
    return "\n".join(f"> {line}" if line else ">" for line in text.splitlines())


def _inline(text: str) -> str:
    """Text for one line of the document (a title, a name, an error): one line, inert."""
    return inert_markdown(" ".join(text.split()))


def _slug(title: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "-", title).strip("-").lower()
    return slug[:40] or "chat"


def _date(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))


__all__ = ["chat_to_markdown", "chat_to_json", "export_chat"]
