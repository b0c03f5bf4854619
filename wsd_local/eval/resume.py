"""Which run a `wsd eval` command continues: settings, modes and models.

Flags not given are taken from the run file's latest header, so the same short command
resumes a run however it was started; flags given are checked against it. A file made
with other settings or other models is refused unless `--force`, which adds a second
run (its own header and fingerprint) to the same file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..settings import SETTINGS_BY_NAME, DecodingSettings
from ..errors import ConfigError
from ..modes import BASE_MODE, DRAFT_MODE, WSD_MODE, names
from .records import fingerprint, model_entry, run_settings, served_model_entry, settings_of
from .runfile import RunContents, RunFileRefused

#: What `wsd eval FILE -o OUT` runs when neither the flags nor the file say otherwise.
DEFAULT_MODES = names((BASE_MODE, DRAFT_MODE, WSD_MODE))


@dataclass
class RunChoice:
    settings: DecodingSettings
    modes: list[str]
    models: dict[str, dict[str, Any]]  # role -> model_entry
    fp: str
    new_header: bool  # the file has no header for this run yet (or its modes grew)
    header_modes: list[str]  # every mode this run has been asked for, for the header


def choose_run(contents: RunContents, given: dict[str, Any], modes_given: list[str] | None,
               model_specs: dict[str, str | None], defaults: DecodingSettings,
               force: bool) -> RunChoice:
    """`given`: the decoding flags the user typed; `modes_given`: --modes (parsed);
    `model_specs`: --drafter/--base."""
    latest = contents.headers.get(contents.latest) if contents.latest else None
    base = settings_of(latest, WSD_MODE.name) if latest else defaults
    mode_flag = given.pop("mode", None)
    if modes_given is not None and mode_flag is not None:
        raise ConfigError("give --modes or --mode, not both")
    if modes_given is not None:
        modes = list(modes_given)
    elif mode_flag is not None:
        modes = [mode_flag]
    else:
        modes = list(latest["modes"]) if latest else list(DEFAULT_MODES)
    settings = base.with_changes(**given)

    models = run_models(model_specs, latest)
    fp = fingerprint(settings, models)

    runs = [h for h in contents.headers.values() if h.get("purpose", "run") == "run"]
    if runs and fp not in contents.headers and not force:
        differences = describe_differences(latest or runs[-1], settings, models)
        raise RunFileRefused(f"{contents.path} holds a run with other settings ({differences})",
                           "use another output file, or --force to add a run with these settings "
                           "to it (reports keep runs apart)")
    header = contents.headers.get(fp)
    header_modes = list(dict.fromkeys([*(header or {}).get("modes", []), *modes]))
    new_header = header is None or header_modes != header.get("modes")
    return RunChoice(settings, modes, models, fp, new_header, header_modes)


def run_models(model_specs: dict[str, str | None],
               header: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """role -> model_entry for the drafter and the base: the --drafter/--base given, else
    the model the run header names (its path while the file is there, else its name),
    else the configured default."""
    from ..models.resolve import remote_spec_for, resolve_model

    models: dict[str, dict[str, Any]] = {}
    for role in ("drafter", "base"):
        spec = model_specs.get(role)
        if spec is None and header and role in header.get("models", {}):
            stored = header["models"][role]
            served = remote_spec_for(stored["path"], role) is not None
            spec = stored["path"] if served or Path(stored["path"]).is_file() else stored["name"]
        server = remote_spec_for(spec, role)
        if server is not None:  # a model on a server (a URL, or a name registered for one)
            models[role] = served_model_entry(str(spec), str(server))
            continue
        resolved = resolve_model(spec, role)
        models[role] = model_entry(resolved.name, resolved.path)
    return models


def describe_differences(header: dict[str, Any], settings: DecodingSettings,
                         models: dict[str, dict[str, Any]]) -> str:
    """`max-tokens 128 -> 256; base model a.gguf -> b.gguf`, for the refusal message."""
    parts = []
    stored = header.get("settings", {})
    for name, value in run_settings(settings).items():
        if stored.get(name) != value:
            spec = SETTINGS_BY_NAME[name]
            parts.append(f"{spec.key} {spec.format(stored.get(name))} -> {spec.format(value)}")
    for role, entry in models.items():
        old = header.get("models", {}).get(role, {})
        if [old.get("file"), old.get("size_bytes")] != [entry["file"], entry["size_bytes"]]:
            parts.append(f"{role} model {old.get('file', '?')} -> {entry['file']}")
    return "; ".join(parts) or "other settings"


__all__ = ["RunChoice", "choose_run", "run_models", "describe_differences", "DEFAULT_MODES"]
