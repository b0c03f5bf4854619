"""Prompt sets: JSONL, JSON or CSV files, read into `EvalItem`s with line numbers.

One record is one item: a prompt to answer, or a conversation with several user turns
to answer one after the other. Recognised fields (the first that is present wins;
`--field NAME` names another one):

- `messages` / `raw_context` / `context`: a list of `{role, content}`; every user
  message not followed by an assistant message is a turn to answer (so an HH-RLHF style
  history of user/assistant turns ending with a user turn is one turn with context,
  and `[user, user]` is two turns answered in sequence);
- `turns`: MT-Bench (`["first", "second"]`) or Arena-Hard (`[{"content": ...}]`);
- `prompt`, `instruction` (AlpacaEval; an Alpaca-style `input` is appended),
  `question` (TruthfulQA);
- `chosen` holding an Anthropic HH-RLHF transcript (`\\n\\nHuman: ...\\n\\nAssistant: ...`):
  the conversation up to its last assistant reply.

Optional: `id` (or `question_id`), `category` (or `dataset`, `cluster`, `Category`),
`system`. A record without an id gets one of its own, unique in the set: `L<line>`,
or `L<line>.<k>` for the k-th of several records on one line (a JSON list written on one
line). A record that cannot be read is a `BadLine` with its line number; the caller
reports and skips it, or stops (`--strict`). Only an id the file gave twice is a
duplicate.

The format follows the content, never the line breaks or the file name (CSV/TSV
aside): text that starts with `[` is one JSON list of records, text that is one JSON
object is one record, anything else is JSONL (one record per line).
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Iterator

from ..errors import UsageError
from ..messages import ROLES

PROMPT_FIELDS = ("messages", "raw_context", "context", "turns", "prompt", "instruction",
                 "question", "chosen")
ID_FIELDS = ("id", "question_id", "prompt_id", "uid")
CATEGORY_FIELDS = ("category", "dataset", "cluster", "subset")
#: Prompt sets that ship with wsd-local: `wsd eval everyday50 -o run.jsonl`.
BUNDLED = ("everyday50",)


class InputError(UsageError):
    """A prompt file that cannot be read at all (missing, wrong format)."""


@dataclass(frozen=True)
class BadLine:
    line: int
    problem: str
    record: int | None = None  # the record's number in a JSON list (several may share a line)

    def describe(self, path: Path | str) -> str:
        where = f"{path}:{self.line}: " + (f"record {self.record}: " if self.record is not None else "")
        return where + self.problem


@dataclass
class EvalItem:
    """One prompt (or conversation) of the set.

    `chunks[t]` are the messages that come before turn t is answered: for turn 0 any
    system message and given history plus the first user message; for later turns the
    next user message. Between two turns the runner appends the answer of the mode
    being run (`history`)."""

    id: str
    line: int
    chunks: list[list[dict[str, str]]]
    category: str = ""
    dataset: str | None = None  # AlpacaEval's `dataset` column, written back on export
    sha: str = field(default="")

    def __post_init__(self) -> None:
        if not self.sha:
            canonical = json.dumps(self.chunks, ensure_ascii=False, sort_keys=True)
            self.sha = hashlib.sha256(canonical.encode()).hexdigest()[:16]

    @property
    def turns(self) -> int:
        return len(self.chunks)

    def prompt(self, turn: int) -> str:
        """The user message answered at `turn`."""
        return self.chunks[turn][-1]["content"]

    def conversation(self, turn: int, answers: list[str]) -> list[dict[str, str]]:
        """The messages for turn `turn`, given the answers to the turns before it."""
        messages: list[dict[str, str]] = []
        for t in range(turn + 1):
            messages.extend(self.chunks[t])
            if t < turn:
                messages.append({"role": "assistant", "content": answers[t]})
        return messages


@dataclass
class PromptSet:
    path: Path
    items: list[EvalItem]
    bad: list[BadLine]
    sha256: str  # of the file's bytes: recorded in the run's header


def load_prompts(spec: str | Path, field_name: str | None = None) -> PromptSet:
    """Read a prompt file (or a bundled set by name). Unreadable records become
    `BadLine`s; a missing file or an unreadable whole file is an `InputError`."""
    path = resolve_prompt_file(spec)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path} is not UTF-8 text (byte {exc.start})", "save it as UTF-8") from None
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        records = list(_csv_records(text, "\t" if suffix == ".tsv" else ","))
    elif text.lstrip().startswith("["):
        records = list(_json_array_records(text, path))
    else:
        records = _single_object_record(text) or list(_jsonl_records(text))
    items: list[EvalItem] = []
    bad: list[BadLine] = []
    seen: dict[str, int] = {}  # ids the file gave -> the line of their first record
    unnamed: list[tuple[EvalItem, str]] = []  # named once every id the file gave is known
    for place, (line, record) in zip(_places(records), records):
        if isinstance(record, BadLine):
            bad.append(BadLine(record.line, record.problem, place.record))
            continue
        try:
            item = _item(record, line, field_name)
        except ValueError as exc:
            bad.append(BadLine(line, str(exc), place.record))
            continue
        if not item.id:
            unnamed.append((item, place.generated_id))
        elif item.id in seen:
            bad.append(BadLine(line, f"duplicate id {item.id!r} (first on line {seen[item.id]})", place.record))
            continue
        else:
            seen[item.id] = line
        items.append(item)
    for item, ident in unnamed:
        item.id = _unique(ident, seen)
        seen[item.id] = item.line
    if not items and not bad:
        raise InputError(f"{path} holds no prompts")
    return PromptSet(path, items, bad, hashlib.sha256(raw).hexdigest())


@dataclass(frozen=True)
class _Place:
    """Where a record is: the id it gets when the file gives none, and its number when
    several records share its line (a JSON list on one line)."""

    generated_id: str
    record: int | None


def _places(records: list[tuple[int, Any]]) -> list[_Place]:
    per_line: dict[int, int] = {}
    for line, _ in records:
        per_line[line] = per_line.get(line, 0) + 1
    places, k_on_line = [], dict.fromkeys(per_line, 0)
    for number, (line, _) in enumerate(records, start=1):
        k_on_line[line] += 1
        if per_line[line] == 1:
            places.append(_Place(f"L{line}", None))
        else:
            places.append(_Place(f"L{line}.{k_on_line[line]}", number))
    return places


def _unique(ident: str, taken: dict[str, int]) -> str:
    """`ident`, or `ident~2`, `ident~3`... when the file gave that id to another record."""
    candidate, n = ident, 1
    while candidate in taken:
        n += 1
        candidate = f"{ident}~{n}"
    return candidate


def resolve_prompt_file(spec: str | Path) -> Path:
    path = Path(spec).expanduser()
    if path.is_file():
        return path
    if str(spec) in BUNDLED:
        return bundled_path(str(spec))
    if path.is_dir():
        raise InputError(f"{path} is a directory, not a prompt file")
    raise InputError(f"prompt file not found: {spec}",
                     "give a .jsonl, .json or .csv file, or a bundled set: " + ", ".join(BUNDLED))


def bundled_path(name: str) -> Path:
    return Path(str(resources.files("wsd_local.eval") / "data" / f"{name}.jsonl"))


# -- records with their line numbers ---------------------------------------------------
def _jsonl_records(text: str) -> Iterator[tuple[int, dict | BadLine]]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("//"):
            continue
        try:
            record = json.loads(line)
        except RecursionError:
            yield number, BadLine(number, "JSON nested too deeply")
            continue
        except ValueError as exc:
            yield number, BadLine(number, f"not valid JSON ({_json_problem(exc)})")
            continue
        yield number, record if isinstance(record, dict) else BadLine(
            number, f"expected a JSON object, got {type(record).__name__}")


def _json_array_records(text: str, path: Path) -> Iterator[tuple[int, dict | BadLine]]:
    """Elements of a JSON array, each with the line it starts on (one element at a time,
    so an element's line is known without a position-tracking parser)."""
    try:
        data = json.loads(text)
    except RecursionError:
        raise InputError(f"{path} is JSON nested too deeply to be a prompt list") from None
    except ValueError as exc:
        raise InputError(f"{path} is not valid JSON: {_json_problem(exc)}",
                         "fix the file, or use JSONL (one record per line) so that one bad "
                         "record does not spoil the rest") from None
    if not isinstance(data, list):  # pragma: no cover - guarded by startswith("[")
        raise InputError(f"{path} must hold a JSON list of records")
    decoder = json.JSONDecoder()
    position = text.index("[") + 1
    line, counted = 1, 0  # newlines are counted once, from where the last count stopped
    for element in data:
        while text[position] in " \t\r\n,":
            position += 1
        line += text.count("\n", counted, position)
        counted = position
        _, position = decoder.raw_decode(text, position)
        yield line, element if isinstance(element, dict) else BadLine(
            line, f"expected a JSON object, got {type(element).__name__}")


def _csv_records(text: str, delimiter: str) -> Iterator[tuple[int, dict | BadLine]]:
    reader = csv.DictReader(text.splitlines(keepends=True), delimiter=delimiter)
    start = 2  # line 1 is the header row
    try:
        for row in reader:
            if None in row:
                yield start, BadLine(start, "more cells than the header row has columns")
            elif any((v or "").strip() for v in row.values()):
                yield start, {k: v for k, v in row.items() if v is not None}
            start = reader.line_num + 1
    except csv.Error as exc:
        raise InputError(f"CSV error on line {reader.line_num}: {exc}") from None


def _single_object_record(text: str) -> list[tuple[int, dict]] | None:
    """The whole text as one JSON object (a record written with indentation), or None
    when it is not one (then it is JSONL)."""
    if not text.lstrip().startswith("{"):
        return None
    try:
        record = json.loads(text)
    except (ValueError, RecursionError):
        return None
    line = text.count("\n", 0, len(text) - len(text.lstrip())) + 1
    return [(line, record)] if isinstance(record, dict) else None


def _json_problem(exc: ValueError) -> str:
    return exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)


# -- one record -> one item ------------------------------------------------------------
def _get(record: dict[str, Any], name: str) -> Any:
    """A field by name; case-insensitive as a fallback (TruthfulQA's CSV says `Question`)."""
    if name in record:
        return record[name]
    lowered = {k.lower(): v for k, v in record.items() if isinstance(k, str)}
    return lowered.get(name.lower())


def _item(record: dict[str, Any], line: int, field_name: str | None) -> EvalItem:
    names = (field_name,) if field_name else PROMPT_FIELDS
    value, used = None, None
    for name in names:
        value = _get(record, name)
        if value not in (None, "", []):
            used = name
            break
    if used is None:
        if field_name:
            raise ValueError(f"no {field_name!r} field")
        raise ValueError("no prompt: expected one of " + ", ".join(PROMPT_FIELDS)
                         + " (or name the field with --field)")
    messages = _messages(used, value, record)
    system = _get(record, "system")
    if isinstance(system, str) and system.strip() and not any(m["role"] == "system" for m in messages):
        messages.insert(0, {"role": "system", "content": system})
    chunks = _split_turns(messages)
    ident = next((_get(record, n) for n in ID_FIELDS if _get(record, n) not in (None, "")), None)
    category = next((_get(record, n) for n in CATEGORY_FIELDS if _get(record, n) not in (None, "")), "")
    dataset = record.get("dataset")
    return EvalItem(id=str(ident) if ident is not None else "", line=line, chunks=chunks,
                    category=str(category), dataset=str(dataset) if isinstance(dataset, str) else None)


def _messages(name: str, value: Any, record: dict[str, Any]) -> list[dict[str, str]]:
    if isinstance(value, str):
        if name == "chosen" and "\n\nHuman:" in "\n\n" + value.lstrip():
            return _hh_transcript(value)
        if name == "instruction":
            extra = _get(record, "input")
            if isinstance(extra, str) and extra.strip():
                value = f"{value}\n\n{extra}"
        return [{"role": "user", "content": value}]
    if not isinstance(value, list):
        raise ValueError(f"field {name!r} must be text or a list, got {type(value).__name__}")
    messages = []
    for i, entry in enumerate(value):
        if isinstance(entry, str):  # MT-Bench: a list of user turns
            messages.append({"role": "user", "content": entry})
        elif isinstance(entry, dict) and isinstance(entry.get("content"), str):
            role = entry.get("role", "user")  # Arena-Hard turns carry only content
            if role == "human":
                role = "user"
            if role not in ROLES:
                raise ValueError(f"{name}[{i}]: unknown role {role!r} (use system, user or assistant)")
            messages.append({"role": role, "content": entry["content"]})
        else:
            raise ValueError(f"{name}[{i}] must be text or an object with a text `content`")
    return messages


_HH_TURN = re.compile(r"\n\n(Human|Assistant):")


def _hh_transcript(text: str) -> list[dict[str, str]]:
    """An Anthropic HH-RLHF transcript, without its last assistant reply (the answer
    being rated): the prompt the models should answer."""
    parts = _HH_TURN.split("\n\n" + text.lstrip())
    messages = [{"role": "user" if who == "Human" else "assistant", "content": body.strip()}
                for who, body in zip(parts[1::2], parts[2::2])]
    if messages and messages[-1]["role"] == "assistant":
        messages.pop()
    return messages


def _split_turns(messages: list[dict[str, str]]) -> list[list[dict[str, str]]]:
    """Cut the conversation after each user message that has no assistant reply: those
    are the turns to answer."""
    if not messages:
        raise ValueError("empty conversation")
    if any(m["role"] == "system" for m in messages[1:]):
        raise ValueError("a system message may only come first")
    if messages[-1]["role"] != "user":
        raise ValueError("the conversation ends with an assistant message: nothing to answer")
    chunks: list[list[dict[str, str]]] = []
    current: list[dict[str, str]] = []
    for i, message in enumerate(messages):
        current.append(message)
        answered = i + 1 < len(messages) and messages[i + 1]["role"] == "assistant"
        if message["role"] == "user" and not answered:
            if not message["content"].strip():
                raise ValueError(f"turn {len(chunks) + 1} is empty")
            chunks.append(current)
            current = []
    return chunks


__all__ = ["EvalItem", "PromptSet", "BadLine", "InputError", "load_prompts", "bundled_path",
           "resolve_prompt_file", "BUNDLED", "PROMPT_FIELDS"]
