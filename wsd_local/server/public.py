"""What clients are shown of the server's own configuration: nothing private.

Every client may read `/v1/models`, the `wsd` extension fields and, when asked, the
answer's trace. Two things in them belong to whoever runs the server, not to its
clients: where the model files live (absolute paths name the user and their folders;
a remote base model's URL names a machine on their network) and the server's own
system prompt (`--system`, often an instruction its owner keeps to themselves). So:

- a model's `path` is its file name (a model on a server: its name), and so is any
  mention of the path, its folder or the server's address in a message sent out (a
  stop note, a 500's one line);
- the server's system prompt is never sent: `settings.system` is null where it
  applied, the trace's messages start after it, and `server_system_prompt: true`
  says that one was used. A system prompt the client sent itself comes back as sent.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import PurePath
from typing import Any, Mapping
from urllib.parse import urlsplit

from ..settings import DecodingSettings
from ..trace import ModelIdentity, Trace


def public_settings(settings: DecodingSettings, server_system: bool) -> dict[str, Any]:
    data = settings.to_dict()
    if server_system:
        data["system"] = None
    return data


def public_defaults(defaults: DecodingSettings) -> dict[str, Any]:
    """The server's default settings, without its system prompt."""
    return public_settings(defaults, server_system=defaults.system is not None)


def public_identity(model: ModelIdentity) -> ModelIdentity:
    path = model.name if model.remote else PurePath(model.path).name
    return replace(model, path=path)


def scrub(text: str, models: Mapping[str, ModelIdentity]) -> str:
    """`text` with each model's path, folder and server address replaced by its public
    name (longest first, so a path goes before its folder)."""
    replacements: dict[str, str] = {}
    for model in models.values():
        public = public_identity(model).path
        if not model.path:
            continue
        replacements[model.path] = public
        if model.remote:
            netloc = urlsplit(model.path).netloc
            if netloc:
                replacements[netloc] = public
        else:
            folder = str(PurePath(model.path).parent)
            if folder not in (".", "/"):
                replacements[folder] = "…"
    for secret in sorted(replacements, key=len, reverse=True):
        text = text.replace(secret, replacements[secret])
    return text


def public_trace(trace: Trace, server_system: bool) -> dict[str, Any]:
    data = trace.to_dict()
    data["models"] = {role: asdict(public_identity(m)) for role, m in trace.models.items()}
    data["stop_note"] = scrub(trace.stop_note, trace.models)
    if server_system:
        data["settings"]["system"] = None
        messages = list(data.get("messages") or [])
        if messages and messages[0].get("role") == "system":
            data["messages"] = messages[1:]
    return data
