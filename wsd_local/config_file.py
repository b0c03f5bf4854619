"""The user's config file, `config.toml`: defaults for the model pair, every decoding
setting, how models are loaded, and what other commands declare.

    [models]
    drafter = "pilot-3b"
    base = "llama3.1-8b"

    [decoding]          # every setting of DecodingSettings, spelled like its flag
    threshold = 0.9
    max-tokens = 1024

    [runtime]
    ctx = 8192
    n-gpu-layers = 0

    [generate]
    log = false

Where it lives: `paths.config_path()` (the user config folder; `WSD_CONFIG` overrides).
Precedence: a flag given on the command line > this file > the built-in default.

The keys are declared, never listed by hand: `[decoding]` comes from `settings.SETTINGS`
(name, type, range and help of each setting), `[runtime]` from `RuntimeSettings`'
validation, and other modules add sections with `declare()` (a `[serve]` section, for
instance). Unknown sections or keys and bad values are one-line `ConfigError`s naming the
key and the file.
"""

from __future__ import annotations

import difflib
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable

import tomlkit
from tomlkit.exceptions import TOMLKitError

from .errors import ConfigError
from .fsutil import write_text_atomic
from .paths import config_path
from .settings import SETTINGS, RuntimeSettings, SettingSpec

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

HEADER = ("# wsd-local configuration. `wsd config show` lists every key with its value;\n"
          "# a flag on the command line overrides what is set here.\n")


@dataclass(frozen=True)
class ConfigKey:
    """One key of the file: `[section] name = value`."""

    section: str
    name: str                      # as written in the file, like its flag: "max-tokens"
    kind: type                     # int, float, str or bool
    help: str
    default: Any                   # the built-in value; None: not set
    check: Callable[[Any], Any]    # a value read from the file -> the value, or ConfigError
    parse: Callable[[str], Any]    # text typed by the user (`wsd config set`) -> the value
    target: str | None = None      # the field it feeds, when it differs from the name

    @property
    def dotted(self) -> str:
        return f"{self.section}.{self.name}"

    @property
    def field_name(self) -> str:
        return self.target or self.name.replace("-", "_")

    @property
    def aliases(self) -> tuple[str, ...]:
        """Other spellings accepted in the file: `max_tokens` for `max-tokens`."""
        other = self.name.replace("-", "_")
        return (other,) if other != self.name else ()


_KEYS: dict[str, ConfigKey] = {}


def declare(section: str, name: str, kind: type, help: str, default: Any = None, *,
            check: Callable[[Any], Any] | None = None, parse: Callable[[str], Any] | None = None,
            target: str | None = None) -> ConfigKey:
    """Add a key (and, with its first key, a section). Commands call this at import for
    their own section; `check` and `parse` default to SettingSpec's for the type."""
    spec = _typed_spec(f"{section}.{name}", kind, help, default)
    key = ConfigKey(section, name, kind, help, default, check or spec.check, parse or spec.parse, target)
    _KEYS[key.dotted] = key
    return key


def keys() -> list[ConfigKey]:
    return list(_KEYS.values())


def sections() -> list[str]:
    return list(dict.fromkeys(key.section for key in _KEYS.values()))


# -- value checks -------------------------------------------------------------------------

def _typed_spec(dotted: str, kind: type, help: str, default: Any) -> SettingSpec:
    """The type check and typed-text parsing every setting has (settings.SettingSpec)."""
    return SettingSpec(dotted, kind, default, help, label=dotted)


def _model_name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"must be a model name or a .gguf path, got {value!r}")
    return value.strip()


def _model_typed(text: str) -> str:
    """A name as typed to `wsd config set`: a relative path to an existing file is made
    absolute, so the setting means the same file from any folder."""
    name = _model_name(text)
    path = Path(name).expanduser()
    if not path.is_absolute() and path.is_file():
        return str(path.resolve())
    return name


def _runtime_check(field_name: str) -> Callable[[Any], Any]:
    """RuntimeSettings' own validation, one field at a time."""
    def check(value: Any) -> Any:
        RuntimeSettings(**{field_name: value})
        return value

    return check


# -- the built-in sections --------------------------------------------------------------

declare("models", "drafter", str, "the aligned drafter: a model name, a .gguf path or a vLLM URL[#model] "
        "(built in: the demo SmolLM2-135M-Instruct)", check=_model_name, parse=_model_typed)
declare("models", "base", str, "the base model: a model name, a .gguf path or a vLLM URL[#model] "
        "(built in: the demo Gemma-3-270M)", check=_model_name, parse=_model_typed)
for _spec in SETTINGS:
    declare("decoding", _spec.key, _spec.kind, _spec.help, _spec.default, check=_spec.check,
            parse=_spec.parse, target=_spec.name)
_RUNTIME_DEFAULTS = {f.name: f.default for f in fields(RuntimeSettings)}
declare("runtime", "ctx", int, "context size in tokens", _RUNTIME_DEFAULTS["n_ctx"],
        check=_runtime_check("n_ctx"), target="n_ctx")
declare("runtime", "threads", int, "CPU threads (built in: llama.cpp's choice for this machine)",
        _RUNTIME_DEFAULTS["threads"], check=_runtime_check("threads"))
declare("runtime", "n-gpu-layers", int, "layers to offload to the GPU (-1: all, 0: CPU only)",
        _RUNTIME_DEFAULTS["n_gpu_layers"], check=_runtime_check("n_gpu_layers"))
declare("generate", "log", bool, "save `wsd generate` answers in the chat store (`wsd log` lists "
        "them; --no-log skips one)", True)


# -- reading ------------------------------------------------------------------------------

@dataclass
class UserConfig:
    """What the file sets (validated); anything absent keeps its built-in default."""

    path: Path
    exists: bool
    values: dict[str, Any] = field(default_factory=dict)  # dotted key -> value

    def get(self, dotted: str) -> Any:
        return self.values.get(dotted, _KEYS[dotted].default)

    def is_set(self, dotted: str) -> bool:
        return dotted in self.values

    def section(self, name: str) -> dict[str, Any]:
        """The keys of one section the file sets, by the field they feed (`max_tokens`)."""
        return {_KEYS[d].field_name: v for d, v in self.values.items() if _KEYS[d].section == name}


def load(path: Path | None = None) -> UserConfig:
    """The config file, checked; a missing file is an empty config."""
    path = path or config_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return UserConfig(path, exists=False)
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the config file {path}: {getattr(exc, 'strerror', None) or exc}",
                          "fix its permissions, or set WSD_CONFIG to another file") from None
    return UserConfig(path, exists=True, values=_validate(parse_text(text, path), path))


def parse_text(text: str, path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"the config file {path} is not valid TOML: {exc}",
                          "fix that line, or delete the file to start again") from None
    except RecursionError:  # tomllib recurses once per nested array or table
        raise ConfigError(f"the config file {path} nests arrays or tables too deeply",
                          "fix the file, or delete it to start again") from None


def _validate(data: dict[str, Any], path: Path) -> dict[str, Any]:
    known_sections = sections()
    values: dict[str, Any] = {}
    for section, table in data.items():
        if not isinstance(table, dict):
            owner = [k.section for k in _KEYS.values() if section in (k.name, *k.aliases)]
            hint = (f"put it under [{owner[0]}]" if owner else
                    f"keys belong in a section: {', '.join(f'[{s}]' for s in known_sections)}")
            raise ConfigError(f"key {section!r} in {path} is outside any section", hint)
        if section not in known_sections:
            raise ConfigError(f"unknown section [{section}] in {path}", _suggest(section, known_sections, "[{}]"))
        by_spelling = {spelling: key for key in _KEYS.values() if key.section == section
                       for spelling in (key.name, *key.aliases)}
        for name, value in table.items():
            key = by_spelling.get(name)
            if key is None:
                raise ConfigError(f"unknown key {section}.{name} in {path}", _suggest_key(section, name))
            if key.dotted in values:
                raise ConfigError(f"{key.dotted} is set twice in {path} (as {key.name} and {key.aliases[0]})",
                                  "keep one of them")
            try:
                values[key.dotted] = key.check(value)
            except ConfigError as exc:
                raise ConfigError(f"bad value for {key.dotted} in {path}: {exc.message}", exc.hint) from None
    return values


def _suggest_key(section: str, name: str) -> str:
    """The key under its right section, else a close key of this section, else a close
    key of any section, else the list."""
    here = [k.name for k in _KEYS.values() if k.section == section]
    elsewhere = [k for k in _KEYS.values() if name in (k.name, *k.aliases)]
    if elsewhere:
        return f"did you mean {elsewhere[0].dotted}, under [{elsewhere[0].section}]?"
    if difflib.get_close_matches(name.replace("_", "-"), here, n=1, cutoff=0.6):
        return _suggest(name, here, f"{section}.{{}}")
    anywhere = difflib.get_close_matches(name.replace("_", "-"), [k.name for k in _KEYS.values()], n=1, cutoff=0.6)
    if anywhere:
        return f"did you mean {find_key(anywhere[0]).dotted}, under [{find_key(anywhere[0]).section}]?"
    return _suggest(name, here, f"{section}.{{}}")


def _suggest(name: str, known: list[str], form: str) -> str:
    close = difflib.get_close_matches(name.replace("_", "-"), known, n=1, cutoff=0.6)
    if close:
        return f"did you mean {form.format(close[0])}?"
    return "known: " + ", ".join(form.format(k) for k in known)


# -- finding and writing keys ---------------------------------------------------------------

def find_key(name: str) -> ConfigKey:
    """A key from what a user typed: `decoding.max-tokens`, `max_tokens` or `threshold`."""
    wanted = name.strip().replace("_", "-")
    if "." in wanted:
        key = _KEYS.get(wanted)
        if key is not None:
            return key
        raise ConfigError(f"unknown config key {name!r}", _suggest(wanted, list(_KEYS), "{}"))
    matches = [key for key in _KEYS.values() if key.name == wanted]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise ConfigError(f"{name!r} is a key of several sections",
                          "write one of " + ", ".join(k.dotted for k in matches))
    raise ConfigError(f"unknown config key {name!r}",
                      _suggest(wanted, [k.name for k in _KEYS.values()], "{}") + " `wsd config show` lists every key")


def _without_empty(data: dict[str, Any]) -> dict[str, Any]:
    return {name: table for name, table in data.items() if table != {}}


def format_value(value: Any) -> str:
    """A scalar as TOML writes it (`wsd config show` prints valid TOML)."""
    return tomlkit.item(value).as_string()


def set_value(name: str, text: str, path: Path | None = None) -> tuple[ConfigKey, Any, Path]:
    """Check `text` for key `name` and write it into the file (created if missing);
    comments, order and the other keys stay as they were. An optional key given "" is removed."""
    key = find_key(name)
    value = key.parse(text)
    if value is None:
        return key, None, unset_value(name, path)
    path = path or config_path()
    _rewrite(path, key, value, _current_text(path) or HEADER)
    return key, value, path


def unset_value(name: str, path: Path | None = None) -> Path:
    """Remove a key from the file: it takes its built-in default again."""
    key = find_key(name)
    path = path or config_path()
    current = _current_text(path)
    if current:
        _rewrite(path, key, None, current)
    return path


def _current_text(path: Path) -> str:
    """The file's text, after checking it: a broken file is never edited."""
    load(path)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ""


def _rewrite(path: Path, key: ConfigKey, value: Any, current: str) -> None:
    """Write `current` with `key` set to `value` (None: removed, with every spelling)."""
    expected = parse_text(current, path)
    table = expected.setdefault(key.section, {})
    try:
        document = tomlkit.parse(current)
        for spelling in (key.name, *key.aliases):
            table.pop(spelling, None)
            if key.section in document and (value is None or spelling != key.name):
                document[key.section].pop(spelling, None)  # set in place: its comment stays
        if value is not None:
            table[key.name] = value
            document.setdefault(key.section, tomlkit.table())[key.name] = value
        new = document.as_string()
    except TOMLKitError as exc:
        raise ConfigError(f"cannot change {path} safely ({exc})", "edit the file by hand") from None
    loaded = parse_text(new, path)
    if _without_empty(loaded) != _without_empty(expected):  # tomlkit misread the layout
        raise ConfigError(f"cannot change {path} safely (the edit would change more than {key.dotted})",
                          "edit the file by hand")
    _validate(loaded, path)  # never write a file that would not load
    write_text_atomic(path, new, private=True)


__all__ = ["ConfigKey", "UserConfig", "declare", "keys", "sections", "load", "find_key",
           "set_value", "unset_value", "format_value", "HEADER"]
