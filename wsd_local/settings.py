"""Decoding and runtime settings: one validated dataclass each.

Every decoding setting is declared once, on `DecodingSettings`, with its type,
default, range and help text (`setting(...)`). Everything else is derived from those
declarations: validation, the CLI flags (`cli/options.py`), the TUI settings form,
the inspector's what-if fields and the JSON schema of the server's `wsd` request
object (`settings_json_schema`). A new setting is one new field here.
"""

from __future__ import annotations

import math
import typing
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from typing import Any

from .errors import ConfigError
from .modes import BASE, MODE_NAMES, MODES, mode_named

#: How the draft reaches the base model: `ids` hands the drafter's token ids over when
#: both models share a vocabulary (else the text, as `text`); `text` always goes through
#: text, exactly as the paper's reference code does (docs/DESIGN.md, "Hand-over").
HANDOFFS = ("ids", "text")
#: `repetition_stop` when left on `auto`: the answer ends when its tail repeats an
#: earlier span this many times; `auto` is off where the mode says so (see `resolved`).
AUTO_REPETITION_STOP = 3

_SPEC = "wsd_setting"


@dataclass(frozen=True)
class SettingSpec:
    """One decoding setting: what it is, what values it takes, how to ask for it."""

    name: str
    kind: type  # int, float, str or bool
    default: Any
    help: str
    label: str  # short name for forms and error messages, e.g. "Threshold γ"
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False  # (minimum, ...] instead of [minimum, ...]
    choices: tuple[str, ...] | None = None
    optional: bool = False  # None is a valid value ("not set")
    hint: str | None = None  # appended to range errors, e.g. the paper's default
    multiline: bool = False  # a text box in forms (the system prompt)
    #: What None means, as users type it (e.g. "auto"): parsed, checked and shown as
    #: that word. None for settings where None just means "not set".
    none_word: str | None = None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def key(self) -> str:
        """The name users type: the flag without dashes (`max-tokens`)."""
        return self.name.replace("_", "-")

    def range_text(self) -> str:
        """The valid values in words, e.g. "in (0, 1]" or ">= 1"."""
        if self.choices:
            return "one of " + ", ".join(self.choices)
        low, high = self.minimum, self.maximum
        text = ""
        if low is not None and high is not None:
            text = f"in {'(' if self.exclusive_minimum else '['}{low:g}, {high:g}]"
        elif low is not None:
            text = f"{'>' if self.exclusive_minimum else '>='} {low:g}"
        elif high is not None:
            text = f"<= {high:g}"
        if text and self.none_word:
            text += f" or {self.none_word}"
        return text

    def check(self, value: Any) -> Any:
        """The value if valid (ints accepted for floats), else ConfigError in one line."""
        if self.none_word is not None and value == self.none_word:
            value = None
        if value is None:
            if self.optional:
                return None
            raise ConfigError(f"{self.key} must be set")
        if self.kind is bool:
            if not isinstance(value, bool):
                raise ConfigError(f"{self.key} must be true or false, got {value!r}")
            return value
        if self.kind is str:
            if not isinstance(value, str):
                raise ConfigError(f"{self.key} must be text, got {value!r}")
            if self.choices and value not in self.choices:
                raise ConfigError(f"unknown {self.key} {value!r}", f"use {self.range_text()}")
            return value
        if self.kind is int:
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(f"{self.key} must be a whole number, got {value!r}", self.hint)
        elif isinstance(value, bool) or not isinstance(value, (int, float)) or not _finite(value):
            what = "a number" + (f" {self.range_text()}" if isinstance(value, int) else "")
            raise ConfigError(f"{self.key} must be {what}, got {shown_value(value)}", self.hint)
        if not self._in_range(value):
            raise ConfigError(f"{self.key} must be {self.range_text()}, got {shown_value(value)}", self.hint)
        return float(value) if self.kind is float else value

    def _in_range(self, value: float) -> bool:
        if self.minimum is not None:
            if value < self.minimum or (self.exclusive_minimum and value == self.minimum):
                return False
        return self.maximum is None or value <= self.maximum

    def parse(self, text: str) -> Any:
        """A value from what a user typed (a flag, a form field), checked."""
        raw = text.strip()
        if self.optional and (raw == "" or raw == self.none_word):
            return None
        if self.kind is bool:
            lowered = raw.lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ConfigError(f"{self.key} must be true or false, got {text!r}")
        if self.kind is str:
            return self.check(text)
        try:
            value: Any = int(raw) if self.kind is int else float(raw)
        except ValueError:
            what = "a whole number" if self.kind is int else "a number"
            raise ConfigError(f"{self.key} must be {what}, got {text!r}", self.hint) from None
        return self.check(value)

    def format(self, value: Any) -> str:
        """The value as a user would type it back."""
        if value is None:
            return self.none_word or ""
        if self.kind is float:
            return f"{value:g}"
        return str(value).lower() if self.kind is bool else str(value)

    def json_schema(self) -> dict[str, Any]:
        types = {int: "integer", float: "number", str: "string", bool: "boolean"}
        schema: dict[str, Any] = {"type": [types[self.kind], "null"] if self.optional else types[self.kind],
                                  "description": self.help, "default": self.default}
        if self.none_word:  # null, or the word, means it
            schema["type"] = [types[self.kind], "string", "null"]
            schema["description"] += f'; null or "{self.none_word}" means {self.none_word}'
        if self.choices:
            schema["enum"] = list(self.choices)
        if self.minimum is not None:
            schema["exclusiveMinimum" if self.exclusive_minimum else "minimum"] = self.minimum
        if self.maximum is not None:
            schema["maximum"] = self.maximum
        return schema


def _finite(value: int | float) -> bool:
    """False for inf, nan and integers too large for a float (a 400-digit number)."""
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def shown_value(value: Any) -> str:
    """A number as an error message quotes it: a 400-digit one by its length."""
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, int) and not isinstance(value, bool):
        text = str(value)
        return text if len(text) <= 24 else f"a number of {len(text.lstrip('-'))} digits"
    return repr(value)


def setting(default: Any, help: str, *, label: str, **spec: Any) -> Any:
    """Declare a field of `DecodingSettings` (name and type come from the field)."""
    return field(default=default, metadata={_SPEC: dict(help=help, label=label, **spec)})


@dataclass(frozen=True)
class DecodingSettings:
    mode: str = setting(MODE_NAMES[0], "; ".join(f"{m.name}: {m.description}" for m in MODES),
                        label="Mode", choices=MODE_NAMES)
    threshold: float = setting(0.8, "switch threshold γ: the window score that hands over to the base model",
                               label="Threshold γ", minimum=0.0, exclusive_minimum=True, maximum=1.0,
                               hint="the paper's default is 0.8")
    window: int = setting(6, "window w: draft tokens in the geometric-mean window",
                          label="Window w", minimum=1, hint="the paper's default is 6")
    draft_max_tokens: int = setting(512, "most tokens the drafter may write",
                                    label="Draft max tok", minimum=0)
    max_tokens: int = setting(2048, "answer length limit in tokens (kept draft + continuation)",
                              label="Answer max tok", minimum=1)
    chunk_tokens: int = setting(16, "online mode: drafter tokens between two scoring steps",
                                label="Chunk tokens", minimum=1)
    # Nudging (docs/NUDGING.md): defaults of the reference code, run_api.py's
    # --top_prob_thres and --completion_token_num_nudging.
    nudge_threshold: float = setting(0.3, "nudging: the base model's top-1 probability below which "
                                          "the drafter writes the next words",
                                     label="Nudge threshold", minimum=0.0, maximum=1.0,
                                     hint="Nudging's default is 0.3")
    nudge_tokens: int = setting(16, "nudging: tokens the drafter writes per turn (its words up to "
                                    "where the base model is confident are kept)",
                                label="Nudge tokens", minimum=1, hint="Nudging's default is 16")
    temperature: float = setting(0.0, "sampling temperature; 0 is greedy",
                                 label="Temperature", minimum=0.0, hint="0 means greedy decoding")
    top_p: float = setting(1.0, "nucleus sampling: keep the smallest token set with this much probability",
                           label="Top-p", minimum=0.0, exclusive_minimum=True, maximum=1.0)
    seed: int = setting(0, "random seed for sampling", label="Seed", minimum=0)
    system: str | None = setting(None, "system prompt (both models see it)",
                                 label="System prompt", optional=True, multiline=True)
    handoff: str = setting("ids", "how the draft reaches the base model: ids hands the drafter's "
                                  "tokens over when both models share a vocabulary; text re-reads "
                                  "the draft's text, exactly as the paper's code does",
                           label="Hand-over", choices=HANDOFFS)
    sample_base: bool = setting(False, "wsd / paper: the base model samples its continuation with "
                                       "temperature and top-p too (the paper's is greedy)",
                                label="Sample base")
    repetition_stop: int | None = setting(
        None, "end the answer when its tail repeats an earlier span this many times (0: off; "
              f"auto: {AUTO_REPETITION_STOP}, off in paper mode; nudging uses its own loop guards)",
        label="Repetition stop", minimum=0, optional=True, none_word="auto")
    switch_skip_repeats: bool = setting(
        False, "wsd: a window lying in text that repeats earlier draft text (a loop of the "
               "drafter's) is not the switch; not in paper mode, which keeps the paper's rule",
        label="Skip repeats")

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        for spec in SETTINGS:
            value = spec.check(getattr(self, spec.name))
            if value is not getattr(self, spec.name):  # an int given for a float setting
                object.__setattr__(self, spec.name, value)
        for name in mode_named(self.mode).refuses:
            if getattr(self, name):
                key = SETTINGS_BY_NAME[name].key
                raise ConfigError(f"{key} is not part of the {self.mode} mode's switch rule",
                                  f"use --mode wsd with it, or leave it off in {self.mode} mode")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0

    @property
    def base_greedy(self) -> bool:
        """The base model's continuation is greedy (the paper's) unless `sample_base`;
        in base mode it is the only model, and the sampling settings are its own."""
        return self.greedy or not (self.sample_base or mode_named(self.mode).alone == BASE)

    def resolved(self) -> "DecodingSettings":
        """These settings with every `auto` value made concrete, as an answer uses them
        (and its trace records them): the repetition stop is on where the mode says so
        (not in paper mode, which stays the paper's pipeline), and off in a mode it does
        not apply to (nudging has its own loop guards)."""
        mode = mode_named(self.mode)
        if not mode.applies("repetition_stop"):
            # The trace says this one is not used.
            return replace(self, repetition_stop=0) if self.repetition_stop != 0 else self
        if self.repetition_stop is not None:
            return self
        return replace(self, repetition_stop=AUTO_REPETITION_STOP if mode.auto_stops_repetition else 0)

    def with_changes(self, **changes: Any) -> "DecodingSettings":
        return replace(self, **changes)

    def check_modes(self, modes: typing.Iterable[str]) -> None:
        """Raise ConfigError, before anything is decoded, when these settings are refused
        in one of the modes a command runs (paper mode refuses switch-skip-repeats)."""
        for mode in modes:
            self.with_changes(mode=mode)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "DecodingSettings":
        """Settings from stored data: unknown keys (from other versions) are ignored."""
        return cls(**{k: v for k, v in data.items() if k in SETTINGS_BY_NAME})

    @classmethod
    def from_request(cls, data: Any, base: "DecodingSettings | None" = None) -> "DecodingSettings":
        """Settings a client sent (e.g. the server's `wsd` object) over `base`: unknown
        keys are an error naming the key, so a typo is never silently ignored."""
        if not isinstance(data, dict):
            raise ConfigError("settings must be an object of name: value pairs")
        names = SETTING_NAMES
        unknown = [k for k in data if k not in names]
        if unknown:
            raise ConfigError(f"unknown setting {unknown[0]!r}",
                              "known: " + ", ".join(s.name for s in SETTINGS))
        return (base or cls()).with_changes(**{names[k]: v for k, v in data.items()})


def _collect_specs() -> tuple[SettingSpec, ...]:
    hints = typing.get_type_hints(DecodingSettings)
    specs = []
    for f in fields(DecodingSettings):
        declared = f.metadata[_SPEC]
        kind = hints[f.name]
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        if args:  # `str | None`
            kind = args[0]
        assert f.default is not MISSING
        specs.append(SettingSpec(name=f.name, kind=kind, default=f.default, **declared))
    return tuple(specs)


#: Every decoding setting, in the order forms and help show them.
SETTINGS: tuple[SettingSpec, ...] = _collect_specs()
SETTINGS_BY_NAME: dict[str, SettingSpec] = {spec.name: spec for spec in SETTINGS}
#: What clients may call a setting: its name (`draft_max_tokens`) or its flag/config key
#: (`draft-max-tokens`) -> its name.
SETTING_NAMES: dict[str, str] = {spec.key: spec.name for spec in SETTINGS} | {spec.name: spec.name for spec in SETTINGS}


def settings_json_schema() -> dict[str, Any]:
    """JSON schema of a settings object (the server's `wsd` request field)."""
    return {"type": "object", "additionalProperties": False,
            "properties": {spec.name: spec.json_schema() for spec in SETTINGS}}


@dataclass(frozen=True)
class RuntimeSettings:
    """How models are loaded: context size, threads, GPU offload."""

    n_ctx: int = 4096
    threads: int | None = None  # None: llama.cpp's default for this machine
    n_gpu_layers: int = -1  # -1 offloads every layer when a GPU backend is built in
    log_path: str | None = None  # llama.cpp's log file; None picks the data dir

    def __post_init__(self) -> None:
        _require_int(self.n_ctx, "ctx", minimum=64)
        if self.threads is not None:
            _require_int(self.threads, "threads", minimum=1)
        _require_int(self.n_gpu_layers, "n-gpu-layers", minimum=-1)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _require_int(value: Any, name: str, minimum: int, hint: str | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name} must be a whole number, got {value!r}", hint)
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}", hint)


__all__ = ["DecodingSettings", "RuntimeSettings", "HANDOFFS", "AUTO_REPETITION_STOP", "SETTINGS", "SETTINGS_BY_NAME",
           "SettingSpec", "settings_json_schema"]
