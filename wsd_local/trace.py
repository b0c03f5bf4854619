"""The full record of one answer, and its JSON format (a public, documented format:
see docs/TRACE_FORMAT.md).

Invariants every trace keeps:
- `answer == kept_draft + continuation`, character for character;
- the texts of `spans` concatenate to `answer`;
- `switch_index` is the rule of `switch.py` applied to `draft_token_probs`
  (for modes that score a draft; with `switch_skip_repeats`, skipping the windows that
  repeat earlier draft text), unless `forced_switch` says where it was put instead.

Format versions: 2 keeps every decoding setting once, in `settings` (version 1 also
had `mode`, `threshold` and `window` at the top level), and records a switch point
chosen by hand (a re-run from the inspector) in `forced_switch` (version 1 kept it in
`settings`). `from_dict` reads both.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from .settings import DecodingSettings
from .errors import WsdError
from .modes import DRAFTER, find_mode, mode_named
from .repetition import window_repeats
from .switch import Skip, first_switch, window_scores

FORMAT_VERSION = 2
#: Stop reasons of an answer cut short by its model server (the text so far is kept and
#: `stop_note` says what happened): the request did not get through or the stream broke
#: off, or the server answered with an error status.
SERVER_STOPS = ("connection_lost", "server_error")


@dataclass
class ModelIdentity:
    role: str  # "drafter" | "base"
    name: str
    path: str
    architecture: str
    quantization: str
    size_bytes: int
    n_vocab: int = 0
    # Where the model runs: "" (or "llama.cpp") for a local GGUF file; for a model on a
    # server the server's engine ("vLLM"), with `path` its URL (never with credentials).
    engine: str = ""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelIdentity":
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})

    @property
    def remote(self) -> bool:
        return self.path.startswith(("http://", "https://"))

    @property
    def label(self) -> str:
        """How screens name the model: its name, and for a served model where it runs
        (`Llama-3.1-70B @ gpu-box:8000 (vLLM)`)."""
        if not self.remote:
            return self.name
        from urllib.parse import urlsplit

        return f"{self.name} @ {urlsplit(self.path).netloc} ({self.engine or 'server'})"


@dataclass(frozen=True)
class WhatIf:
    """Where the switch of an answer would fall with another threshold and window."""

    threshold: float
    window: int
    index: int | None  # k'; None when the answer has no switch point, or it is unknown
    fired: bool  # a window reached the threshold at `index` (else the whole draft is kept)
    # n when the switch lies past the n scored draft tokens, which online mode stopped at:
    # unknown until the rest of the draft is written and scored (a re-run does that)
    unknown_past: int | None = None

    @property
    def known(self) -> bool:
        return self.unknown_past is None


@dataclass
class TokenRecord:
    """One token: its id, its text piece, and a probability.

    For draft tokens `logprob` is the base model's log-probability of the token (the
    check); for continuation tokens it is the base model's own log-probability.
    Pieces concatenate to the decoded text; a token ending inside a multi-byte
    character has an empty piece and the next one carries the whole character.
    """
    id: int
    text: str
    logprob: float

    def to_list(self) -> list[Any]:
        return [self.id, self.text, self.logprob]

    @classmethod
    def from_list(cls, row: list[Any]) -> "TokenRecord":
        return cls(int(row[0]), str(row[1]), float(row[2]))


@dataclass
class Trace:
    settings: DecodingSettings
    messages: list[dict[str, str]]
    models: dict[str, ModelIdentity] = field(default_factory=dict)
    answer: str = ""
    spans: list[dict[str, str]] = field(default_factory=list)
    draft_text: str = ""  # everything the drafter wrote (also past the switch point)
    draft_tokens: list[TokenRecord] = field(default_factory=list)  # base tokens, scored
    switch_index: int | None = None  # k; None for base-only and drafter-only answers
    switch_fired: bool = False  # a window reached the threshold (else the whole draft is kept)
    # The scored draft tokens are the whole draft: false when online mode stopped the
    # drafter at its switch (window scores past the last scored token are unknown)
    draft_complete: bool = True
    forced_switch: int | None = None  # a switch point chosen by hand (re-run from the inspector)
    switch_char: int = 0  # characters of `answer` written by the drafter
    kept_draft: str = ""
    continuation: str = ""
    continuation_tokens: list[TokenRecord] = field(default_factory=list)
    # eos | stop_string | max_tokens | context_full | repetition | cancelled | connection_lost | server_error
    stop_reason: str = ""
    stop_note: str = ""  # why, in words, when the answer stopped early (e.g. the server that was lost)
    timings: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    near_ties: list[int] = field(default_factory=list)  # window positions within 1e-3 of threshold
    continuation_near_ties: list[int] = field(default_factory=list)  # greedy picks with a top-2 gap < TOKEN_NEAR_TIE
    backend: str = ""  # CPU | CUDA | Metal | ...
    created_at: float = field(default_factory=time.time)
    format_version: int = FORMAT_VERSION

    # -- derived views -------------------------------------------------------------
    @property
    def mode(self) -> str:
        return self.settings.mode

    @property
    def threshold(self) -> float:
        return self.settings.threshold

    @property
    def window(self) -> int:
        return self.settings.window

    @property
    def draft_token_probs(self) -> list[float]:
        import math
        return [math.exp(t.logprob) for t in self.draft_tokens]

    @property
    def window_scores(self) -> list[float]:
        return window_scores(self.draft_token_probs, self.window)

    @property
    def answer_tokens(self) -> int:
        """Tokens of the answer: the drafter's own when it answers alone, else the kept
        draft (in base tokens; nudging: the drafter's kept tokens) plus the base model's."""
        c = self.counts
        if mode_named(self.mode).alone == DRAFTER:
            return c.get("draft_tokens", 0)
        return c.get("kept_draft_tokens", 0) + c.get("base_tokens", 0)

    @property
    def stopped_early(self) -> bool:
        """The answer was cut short: stopped by the user or by losing its model server
        (what was written is kept, but the answer is not complete)."""
        return self.stop_reason == "cancelled" or self.stop_reason in SERVER_STOPS

    @property
    def discarded_draft(self) -> str:
        """Draft text the base model did not keep (empty when the whole draft was kept)."""
        return self.draft_text[len(self.kept_draft):] if self.draft_text.startswith(
            self.kept_draft) else ""

    @property
    def switch_in_repeat(self) -> bool:
        """The switch window lies in text that repeats earlier text of the draft (a loop
        the base model found predictable): `repetition.window_repeats` at k."""
        k = self.switch_index
        if not (self.switch_fired or self.forced_switch is not None):
            return False  # the whole draft kept: no window decided it
        if k is None or not 0 <= k < len(self.draft_tokens):
            return False
        return window_repeats([t.text for t in self.draft_tokens], k, self.window)

    def repeat_skip(self, window: int) -> Skip | None:
        """The windows this answer's rule skips (`switch_skip_repeats`), else None."""
        if not self.settings.switch_skip_repeats:
            return None
        pieces = [t.text for t in self.draft_tokens]
        return lambda j: window_repeats(pieces, j, window)

    def what_if(self, threshold: float, window: int) -> "WhatIf":
        """Where the switch would fall with other settings, from the stored probabilities.

        When no window reaches the threshold in the scored tokens of a draft that went on
        unscored (online mode stops the drafter at its switch), the switch lies past
        them and is unknown: `unknown_past` says after how many tokens."""
        if self.switch_index is None:
            return WhatIf(threshold, window, None, False)
        probs = self.draft_token_probs
        found = first_switch(probs, window, threshold, self.repeat_skip(window))
        if found is not None:
            return WhatIf(threshold, window, found, True)
        if not self.draft_complete:
            return WhatIf(threshold, window, None, False, unknown_past=len(probs))
        return WhatIf(threshold, window, len(probs) - 1, False)  # the whole draft is kept

    def check(self) -> None:
        """Raise AssertionError if an invariant is broken (used by tests and on load)."""
        assert self.answer == self.kept_draft + self.continuation, "answer != kept + continuation"
        assert "".join(s["text"] for s in self.spans) == self.answer, "spans do not cover answer"
        assert self.answer[: self.switch_char] == self.kept_draft, "switch_char mismatch"

    # -- JSON ----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["settings"] = self.settings.to_dict()
        data["draft_tokens"] = [t.to_list() for t in self.draft_tokens]
        data["continuation_tokens"] = [t.to_list() for t in self.continuation_tokens]
        data["draft_token_probs"] = self.draft_token_probs
        data["models"] = {role: asdict(m) for role, m in self.models.items()}
        return data

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Trace":
        """A trace from its JSON form, version 1 or 2. Raises ValueError when the data
        is not a readable trace."""
        known = set(cls.__dataclass_fields__)
        kwargs = {k: v for k, v in data.items() if k in known}
        settings = dict(data.get("settings") or {})
        if int(data.get("format_version", 1)) < 2:
            # Version 1: mode/threshold/window also at the top level; a forced switch
            # inside the settings.
            for key in ("mode", "threshold", "window"):
                if key in data:
                    settings.setdefault(key, data[key])
            kwargs["forced_switch"] = settings.pop("forced_switch", None)
            kwargs["format_version"] = FORMAT_VERSION
        if "draft_complete" not in data:
            # Older traces did not say; an online answer that switched stopped its drafter.
            mode = find_mode(settings.get("mode"))
            kwargs["draft_complete"] = not (mode is not None and mode.online and data.get("switch_fired"))
        _describe_older_behaviour(settings)
        try:
            kwargs["settings"] = DecodingSettings.from_dict(settings)
        except WsdError as exc:
            raise ValueError(f"the trace's settings are invalid: {exc.one_line()}") from None
        kwargs["draft_tokens"] = [TokenRecord.from_list(r) for r in data.get("draft_tokens", [])]
        kwargs["continuation_tokens"] = [TokenRecord.from_list(r)
                                         for r in data.get("continuation_tokens", [])]
        kwargs["models"] = {role: ModelIdentity.from_dict(m)
                            for role, m in data.get("models", {}).items()}
        return cls(**kwargs)

    @classmethod
    def from_json(cls, text: str) -> "Trace":
        return cls.from_dict(json.loads(text))


def _describe_older_behaviour(settings: dict[str, Any]) -> None:
    """Settings added later, as the version that wrote the trace behaved: it handed
    ids over, sampled the base model with the temperature, had no repetition stop and
    skipped no windows."""
    settings.setdefault("handoff", "ids")
    settings.setdefault("sample_base", bool(settings.get("temperature")))
    settings.setdefault("repetition_stop", 0)
    settings.setdefault("switch_skip_repeats", False)
