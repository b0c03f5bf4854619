"""`wsd log`: the latest answers in the chat store (from `wsd generate`, the chat app and
the server), newest last; `wsd chat --open ID` continues one of them."""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass

from ..store import SOURCES, ChatRecord, MessageRecord, Store
from ..terminal_text import terminal_safe, terminal_safe_json
from .term import use_color

DIM, BOLD, RESET = "\x1b[2m", "\x1b[1m", "\x1b[0m"


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("log", help="list the latest answers (wsd generate logs each one)",
                            description="The latest answers in the chat store, newest last: the "
                                        "question, the answer and where the switch fell. Answers of "
                                        "`wsd generate` are saved unless --no-log; `wsd chat --open ID` "
                                        "opens one.")
    parser.add_argument("-n", "--count", type=int, default=3, metavar="N",
                        help="how many answers (0: all; default: %(default)s)")
    parser.add_argument("--source", choices=("all", *SOURCES), default="all",
                        help="only answers given by this command (default: %(default)s)")
    parser.add_argument("--short", action="store_true",
                        help="one line per answer (default: the question and the whole answer)")
    parser.add_argument("--json", action="store_true",
                        help="print JSON with each answer's full trace (default: text)")
    parser.add_argument("--no-color", action="store_true",
                        help="plain text (default: colour on a terminal, off when NO_COLOR is set)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import UsageError

    if args.count < 0:
        raise UsageError(f"--count must be 0 (all) or more, got {args.count}")
    with Store() as store:
        answers = recent_answers(store, args.count or None, None if args.source == "all" else args.source)
    if args.json:
        print(terminal_safe_json(json.dumps([_as_dict(a) for a in answers], indent=2, ensure_ascii=False)))
        return 0
    if not answers:
        print("no answers logged yet: `wsd generate \"...\"` saves each answer here", file=sys.stderr)
        return 0
    color = use_color(sys.stdout, args.no_color)
    for i, logged in enumerate(answers):
        if args.short:
            print(_short_line(logged, color))
        else:
            if i:
                print()
            _print_entry(logged, color)
    return 0


@dataclass
class LoggedAnswer:
    chat: ChatRecord
    question: MessageRecord | None
    answer: MessageRecord


def recent_answers(store: Store, limit: int | None, source: str | None = None) -> list[LoggedAnswer]:
    """The newest `limit` answers (all when None), oldest first, from chats of `source`
    (every source when None)."""
    found: list[LoggedAnswer] = []
    for chat in store.list_chats(source):  # most recently updated first
        if limit is not None and len(found) >= limit:
            cutoff = sorted((a.answer.created_at for a in found), reverse=True)[limit - 1]
            if chat.updated_at < cutoff:
                break  # every answer of this chat and the ones after is older
        question = None
        for record in store.messages(chat.id):
            if record.role == "user":
                question = record
            elif record.role == "assistant":
                found.append(LoggedAnswer(chat, question, record))
    found.sort(key=lambda a: (a.answer.created_at, a.answer.id))
    return found[-limit:] if limit else found


def _style(code: str, text: str, color: bool) -> str:
    return f"{code}{text}{RESET}" if color else text


# Questions and answers came from users, models and the server's clients; model names
# and errors from files and servers: all of it is shown through terminal_safe.


def _header(logged: LoggedAnswer) -> str:
    from ..answer import describe_handovers, describe_switch

    answer = logged.answer
    parts = [f"#{answer.id}", time.strftime("%Y-%m-%d %H:%M", time.localtime(answer.created_at)),
             logged.chat.source]
    trace = answer.trace
    if trace is not None:
        models = [trace.models[r].name for r in ("drafter", "base") if r in trace.models]
        parts.append(" → ".join(models) + f" ({trace.mode})")
        switch = describe_switch(trace, brief=True) or describe_handovers(trace, brief=True)
        if switch:
            parts.append(switch)
    if answer.status != "complete":
        parts.append(answer.status + (f": {answer.error}" if answer.error else ""))
    parts.append(f"wsd chat --open {logged.chat.id}")
    return terminal_safe(" · ".join(parts), one_line=True)


def _print_entry(logged: LoggedAnswer, color: bool) -> None:
    print(_style(DIM, _header(logged), color))
    if logged.question is not None:
        question = terminal_safe(logged.question.content.strip())
        print(_style(BOLD, "> " + question.replace("\n", "\n> "), color))
    print(terminal_safe(logged.answer.content.strip()) or _style(DIM, "(empty)", color))


def _short_line(logged: LoggedAnswer, color: bool) -> str:
    def clip(text: str, limit: int) -> str:
        flat = terminal_safe(" ".join(text.split()), one_line=True)
        return flat if len(flat) <= limit else flat[: limit - 1] + "…"

    answer = logged.answer
    stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime(answer.created_at))
    question = clip(logged.question.content, 40) if logged.question else ""
    return (_style(DIM, f"#{answer.id} {stamp} {logged.chat.source:<8}", color) +
            f" {question} → {clip(answer.content, 60)}")


def _as_dict(logged: LoggedAnswer) -> dict:
    answer = logged.answer
    trace = answer.trace
    return {"id": answer.id, "chat_id": logged.chat.id, "source": logged.chat.source,
            "created_at": answer.created_at, "status": answer.status, "error": answer.error,
            "question": logged.question.content if logged.question else None,
            "answer": answer.content, "trace": trace.to_dict() if trace is not None else None}
