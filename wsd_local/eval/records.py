"""What one line of a run file says: the header of a run and one answer.

An answer record is flat where a reader wants numbers (switch, kept share, tokens by
model, timings) and keeps the full trace (inline, or as a path with `--traces-dir`),
so the sweep and the report can recompute anything from the stored probabilities.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

from .. import __version__
from ..answer import describe_handovers, describe_switch
from ..settings import DecodingSettings
from ..modes import DRAFTER, mode_named
from ..trace import Trace
from .inputs import EvalItem
from .runfile import FORMAT, VERSION

def model_entry(name: str, path: Path) -> dict[str, Any]:
    """How a run names a model: what the user called it, where it was, and the file's
    name and size, which identify it (the same file may be reached by name or path)."""
    return {"name": name, "path": str(path), "file": path.name, "size_bytes": path.stat().st_size}


def served_model_entry(name: str, url: str) -> dict[str, Any]:
    """How a run names a model on a server: its `URL#model` stands for the file (no key:
    it never reaches a URL), and is what a resumed run connects to."""
    return {"name": name, "path": url, "file": url, "size_bytes": 0}


def run_settings(settings: DecodingSettings) -> dict[str, Any]:
    """Decoding settings of a run: everything but the mode (a run holds several)."""
    data = settings.to_dict()
    data.pop("mode")
    return data


def fingerprint(settings: DecodingSettings, models: dict[str, dict[str, Any]]) -> str:
    """Short id of a run's settings and models: answers made with other settings or
    other models never mix with these."""
    identity = {role: [m["file"], m["size_bytes"]] for role, m in sorted(models.items())}
    canonical = json.dumps({"settings": run_settings(settings), "models": identity}, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def header_record(fp: str, settings: DecodingSettings, models: dict[str, dict[str, Any]],
                  modes: list[str], input_path: Path, input_sha: str, runtime: dict[str, Any],
                  purpose: str = "run") -> dict[str, Any]:
    return {"type": "header", "format": FORMAT, "version": VERSION, "run": fp, "purpose": purpose,
            "settings": run_settings(settings), "modes": list(modes), "models": models,
            "input": {"path": str(input_path), "sha256": input_sha},
            "runtime": runtime, "wsd_local": __version__, "created_at": round(time.time(), 3)}


def settings_of(header: dict[str, Any], mode: str) -> DecodingSettings:
    return DecodingSettings.from_dict({**header["settings"], "mode": mode})


def answer_tokens(trace: Trace) -> int:
    """Tokens of the answer (`Trace.answer_tokens`)."""
    return trace.answer_tokens


def kept_share(trace: Trace) -> float:
    """Share of the answer's tokens that the drafter wrote (1 for drafter alone, 0 for
    the base model alone)."""
    if mode_named(trace.mode).alone == DRAFTER:
        return 1.0
    total = answer_tokens(trace)
    return trace.counts.get("kept_draft_tokens", 0) / total if total else 0.0


def answer_record(fp: str, item: EvalItem, turn: int, trace: Trace, wall_s: float,
                  trace_path: str | None = None) -> dict[str, Any]:
    prompt = {"id": item.id, "turn": turn, "turns": item.turns, "category": item.category,
              "line": item.line, "prompt_sha": item.sha, "prompt": item.prompt(turn)}
    if item.dataset is not None:
        prompt["dataset"] = item.dataset
    return _record(fp, prompt, trace, wall_s, trace_path)


#: The fields that say which prompt (and turn) an answer belongs to.
PROMPT_FIELDS = ("id", "turn", "turns", "category", "line", "prompt_sha", "prompt", "dataset")


def rerun_record(fp: str, source: dict[str, Any], trace: Trace, wall_s: float) -> dict[str, Any]:
    """An answer re-decoded from another answer's stored draft (the sweep's --rerun)."""
    prompt = {k: source[k] for k in PROMPT_FIELDS if k in source}
    record = _record(fp, prompt, trace, wall_s, None)
    record["rerun_of"] = {"run": source["run"], "switch_index": source["switch_index"]}
    return record


def _record(fp: str, prompt: dict[str, Any], trace: Trace, wall_s: float,
            trace_path: str | None) -> dict[str, Any]:
    c = trace.counts
    has_switch = trace.switch_index is not None
    record: dict[str, Any] = {
        "type": "answer", "run": fp, **prompt, "mode": trace.mode, "answer": trace.answer,
        "switch_index": trace.switch_index,
        "switch_fired": trace.switch_fired if has_switch else None,
        "switch": describe_switch(trace, brief=True) or describe_handovers(trace, brief=True),
        # The switch window repeats earlier draft text (a loop the base model found predictable).
        "switch_in_repeat": trace.switch_in_repeat if has_switch else None,
        "kept_share": round(kept_share(trace), 6),
        "kept_chars": trace.switch_char,
        "tokens": {"drafter": c.get("draft_tokens", 0),
                   "base": c.get("base_tokens_generated", 0),
                   "scored": c.get("draft_tokens_scored", 0),
                   "kept_draft": c.get("kept_draft_tokens", 0) if has_switch else None,
                   "answer": answer_tokens(trace)},
        "timings": {**trace.timings, "wall_s": round(wall_s, 6)},
        "stop_reason": trace.stop_reason, "created_at": round(time.time(), 3)}
    if mode_named(trace.mode).hands_over:  # how often the turn passed between the models
        record["handovers"] = c.get("handovers", 0)
    if trace_path is not None:
        record["trace_path"] = trace_path
    else:
        record["trace"] = trace.to_dict()
    return record


def error_record(fp: str, item: EvalItem, turn: int, mode: str, message: str) -> dict[str, Any]:
    return {"type": "error", "run": fp, "id": item.id, "turn": turn, "mode": mode,
            "line": item.line, "prompt_sha": item.sha, "error": message,
            "created_at": round(time.time(), 3)}


def load_trace(record: dict[str, Any], run_path: Path) -> Trace | None:
    """The record's trace (inline, or from its file next to the run file); None when
    the file is gone."""
    if "trace" in record:
        return Trace.from_dict(record["trace"])
    path = Path(record.get("trace_path", ""))
    if not path.is_absolute():
        path = run_path.parent / path
    try:
        return Trace.from_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


__all__ = ["model_entry", "fingerprint", "header_record", "answer_record", "rerun_record", "error_record", "settings_of",
           "run_settings", "answer_tokens", "kept_share", "load_trace"]
