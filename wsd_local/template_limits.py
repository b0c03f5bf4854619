"""Limits on rendering a chat template: it comes from a model file nobody vetted.

The sandbox (templates.py) keeps a template away from Python's internals; these limits
keep it from taking the machine: the template's text, every text value it builds and
its output are bounded in size, and rendering stops at a deadline. The deadline is
checked at every line of the compiled template and every function call it makes (a
trace function for the duration of the render), so a loop that writes nothing is
stopped too. `**` is bounded as well (a huge power is computed in C, where no deadline
can reach).
"""

from __future__ import annotations

import sys
import time
from typing import Any, Iterable

MAX_TEMPLATE_CHARS = 256 * 1024  # real chat templates are a few KB; the largest tens of KB
MAX_OUTPUT_CHARS = 4 * 1024 * 1024  # about a million tokens: more than any context holds
TIME_LIMIT_S = 5.0  # a real template renders in milliseconds
MAX_EXPONENT_BITS = 4096


class TemplateLimit(Exception):
    """A template went past a limit; the message says which, in a few words."""


def check_template_size(template: str) -> None:
    if len(template) > MAX_TEMPLATE_CHARS:
        raise TemplateLimit(f"is {len(template):,} characters long, over the limit of {MAX_TEMPLATE_CHARS:,}")


def bounded_binop(operator: str, left: Any, right: Any) -> Any:
    """`+`, `*` and `**` with their results' sizes bounded (before they are computed)."""
    if operator == "*":
        for sequence, count in ((left, right), (right, left)):
            if isinstance(sequence, (str, list, tuple)) and isinstance(count, int):
                if len(sequence) * max(count, 0) > MAX_OUTPUT_CHARS:
                    raise TemplateLimit(f"repeats a value {count:,} times, over the size limit")
        return left * right
    if operator == "**":
        if isinstance(left, int) and isinstance(right, int) and abs(left) > 1 and \
                right * max(abs(left).bit_length(), 1) > MAX_EXPONENT_BITS:
            raise TemplateLimit(f"computes a power too large ({left} ** {right})")
        return left ** right
    if operator == "+":
        if isinstance(left, (str, list, tuple)) and isinstance(right, type(left)) and \
                len(left) + len(right) > MAX_OUTPUT_CHARS:
            raise TemplateLimit("builds a value over the size limit")
        return left + right
    raise AssertionError(operator)  # only the intercepted operators come here


def render_within_limits(pieces: Iterable[str], joins: tuple[Any, ...] = ()) -> str:
    """Collect a template's output (`Template.generate(...)`) within the output and
    time limits. `joins`: the code objects of Jinja's `~` (str_join, markup_join), whose
    operands are checked as they are joined."""
    deadline = time.monotonic() + TIME_LIMIT_S

    def tracer(frame, event, arg):  # noqa: ANN001, ARG001 - sys.settrace's signature
        if time.monotonic() > deadline:
            raise TemplateLimit(f"took longer than {TIME_LIMIT_S:g} s to render")
        if event == "call" and frame.f_code in joins:
            operands = frame.f_locals.get("seq", ())
            if isinstance(operands, tuple) and sum(len(x) for x in operands if isinstance(x, str)) \
                    > MAX_OUTPUT_CHARS:
                raise TemplateLimit("builds a text over the size limit")
        return tracer

    out: list[str] = []
    size = 0
    previous = sys.gettrace()
    sys.settrace(tracer)
    try:
        for piece in pieces:
            size += len(piece)
            if size > MAX_OUTPUT_CHARS:
                raise TemplateLimit(f"wrote more than {MAX_OUTPUT_CHARS:,} characters")
            out.append(piece)
    finally:
        sys.settrace(previous)
    return "".join(out)


__all__ = ["TemplateLimit", "check_template_size", "bounded_binop", "render_within_limits",
           "MAX_TEMPLATE_CHARS", "MAX_OUTPUT_CHARS", "TIME_LIMIT_S"]
