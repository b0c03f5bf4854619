"""Read and edit small TOML files made of `[section]` tables of scalar keys.

Reading is the standard library's `tomllib` (the `tomli` backport before Python 3.11).
Editing keeps what the user wrote: `set_value` rewrites or adds one `key = value` line,
`remove_value` drops one; comments, order and every other line stay as they are. Each
edit is checked by parsing the result: if the file holds something this line editor
does not understand (a multi-line string, a dotted key, an inline table), the edit is
refused rather than guessed.
"""

from __future__ import annotations

import copy
import re
import sys
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

TOMLDecodeError = tomllib.TOMLDecodeError

_TABLE = re.compile(r"^\s*\[")  # any table header, [x] or [[x]]
_HEADER = re.compile(r"^\s*\[\s*(?P<name>[A-Za-z0-9_-]+|\"[^\"]*\")\s*\]\s*(#.*)?$")
_KEY = re.compile(r"^\s*(?P<key>[A-Za-z0-9_-]+|\"[^\"]*\")\s*=")


class EditRefused(Exception):
    """The file is valid TOML but not in the simple layout this editor changes safely."""


def loads(text: str) -> dict[str, Any]:
    return tomllib.loads(text)


def format_value(value: Any) -> str:
    """A TOML literal for a scalar."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = repr(value)
        return text if any(c in text for c in ".eE") or "inf" in text or "nan" in text else text + ".0"
    if isinstance(value, str):
        return _basic_string(value)
    raise TypeError(f"not a TOML scalar: {value!r}")


def _basic_string(text: str) -> str:
    escapes = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r", "\b": "\\b", "\f": "\\f"}
    out = []
    for char in text:
        if char in escapes:
            out.append(escapes[char])
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _unquote(name: str) -> str:
    return name[1:-1] if name.startswith('"') else name


def _section_range(lines: list[str], section: str) -> tuple[int, int] | None:
    """(index of the header line, index after the section's last line) or None."""
    start = None
    for i, line in enumerate(lines):
        if start is None:
            match = _HEADER.match(line)
            if match and _unquote(match["name"]) == section:
                start = i
        elif _TABLE.match(line):
            return start, i
    return None if start is None else (start, len(lines))


def _key_lines(lines: list[str], start: int, end: int, names: set[str]) -> list[int]:
    found = []
    for i in range(start + 1, end):
        match = _KEY.match(lines[i])
        if match and _unquote(match["key"]) in names:
            found.append(i)
    return found


def set_value(text: str, section: str, key: str, value: Any, aliases: tuple[str, ...] = (),
              header: str = "") -> str:
    """`text` with `[section] key = value` set (a line spelled with an alias is replaced)."""
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    new_line = f"{key} = {format_value(value)}\n"
    where = _section_range(lines, section)
    if where is None:
        if not lines and header:
            lines.append(header if header.endswith("\n") else header + "\n")
        if lines and lines[-1].strip():
            lines.append("\n")
        lines += [f"[{section}]\n", new_line]
    else:
        start, end = where
        existing = _key_lines(lines, start, end, {key, *aliases})
        if existing:
            first = existing[0]
            indent = lines[first][: len(lines[first]) - len(lines[first].lstrip())]
            lines[first] = indent + new_line
            for i in reversed(existing[1:]):
                del lines[i]
        else:
            last = start
            for i in range(start + 1, end):
                if lines[i].strip():
                    last = i
            lines.insert(last + 1, new_line)
    result = "".join(lines)
    expected = _without(loads(text), section, (key, *aliases))
    expected.setdefault(section, {})[key] = value
    _check(result, expected)
    return result


def remove_value(text: str, section: str, key: str, aliases: tuple[str, ...] = ()) -> str:
    """`text` without `[section] key` (and its aliases); the section header stays."""
    lines = text.splitlines(keepends=True)
    where = _section_range(lines, section)
    if where is None:
        result = text
    else:
        for i in reversed(_key_lines(lines, *where, {key, *aliases})):
            del lines[i]
        result = "".join(lines)
    _check(result, _without(loads(text), section, (key, *aliases)))
    return result


def _without(data: dict[str, Any], section: str, keys: tuple[str, ...]) -> dict[str, Any]:
    data = copy.deepcopy(data)
    table = data.get(section)
    if isinstance(table, dict):
        for name in keys:
            table.pop(name, None)
    return data


def _check(result: str, expected: dict[str, Any]) -> None:
    try:
        parsed = loads(result)
    except TOMLDecodeError as exc:
        raise EditRefused(str(exc)) from None
    if parsed != expected:
        raise EditRefused("the edit would change more than one key")
