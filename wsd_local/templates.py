"""Prompt formats: the drafter's chat template, and the base model's plain frame.

The base model never sees a chat template: it reads

    [BOS] "\\n\\n[System]\\n" system "\\n\\n[User]\\n" question ... "\\n\\n[Assistant]\\n"

and stops when it starts a new turn of its own (`STOP_STRINGS`).
"""

from __future__ import annotations

import functools
import json
from datetime import datetime
from typing import Any, Sequence

from .errors import ModelError
from .messages import Message
from .template_limits import TemplateLimit, bounded_binop, check_template_size, render_within_limits

_TAGS = {"system": "[System]", "user": "[User]", "assistant": "[Assistant]"}

#: The base model's turn ends where it writes a new tag, with 2, 1 or 0 newlines before.
STOP_STRINGS: tuple[str, ...] = tuple(
    newlines + tag for tag in ("[User]", "[System]", "[Assistant]") for newlines in ("\n\n", "\n", "")
)


def base_frame(messages: Sequence[Message]) -> str:
    """The plain-text frame the base model continues (BOS is added by the tokenizer)."""
    parts = [f"\n\n{_TAGS[m.role]}\n{m.content.strip()}" for m in messages]
    return "".join(parts) + "\n\n[Assistant]\n"


def render_chat(template: str | None, messages: Sequence[Message], bos_token: str,
                eos_token: str) -> str:
    """The drafter's prompt from its GGUF chat template, ready for the assistant turn.

    Rendered as Hugging Face transformers and llama-cpp-python's `Jinja2ChatFormatter`
    render chat templates, so a GGUF's template means what it means there: a sandboxed
    Jinja environment with `trim_blocks` and `lstrip_blocks`, the loop-control extension
    (`{% break %}`, `{% continue %}`), `{% generation %}` blocks passed through, a
    `tojson` filter with transformers' semantics (no HTML escaping, keys in their order,
    `indent` etc. as `json.dumps` takes them), and the globals `raise_exception` and
    `strftime_now` (today's date: Llama 3.2 writes it into the system header).

    The template comes from a model file: its size, its output and its rendering time are
    limited (template_limits.py)."""
    if not template:
        raise ModelError("the drafter has no chat template in its GGUF metadata",
                         "pick an instruction-tuned drafter (see `wsd models info`)")
    from jinja2 import runtime

    try:
        check_template_size(template)
        compiled = _environment().from_string(template)
        pieces = compiled.generate(messages=[m.to_dict() for m in messages], add_generation_prompt=True,
                                   bos_token=bos_token, eos_token=eos_token, tools=None, documents=None)
        return render_within_limits(pieces, joins=(runtime.str_join.__code__, runtime.markup_join.__code__))
    except TemplateLimit as exc:
        raise ModelError(f"the drafter's chat template {exc}",
                         "the model file's template is not usable; pick another drafter") from None
    except _TemplateRejected as exc:
        raise ModelError(f"the drafter's chat template rejected the conversation: {exc}") from None
    except Exception as exc:  # a template error is the model file's problem, said in one line
        raise ModelError(f"the drafter's chat template failed: {exc}") from None


class _TemplateRejected(Exception):
    """`raise_exception(...)` called by a template (e.g. "System role not supported")."""


def _raise_exception(message: str) -> None:
    raise _TemplateRejected(message)


def _strftime_now(fmt: str) -> str:
    return datetime.now().strftime(fmt)


def _tojson(value: Any, ensure_ascii: bool = False, indent: int | None = None,
            separators: tuple[str, str] | None = None, sort_keys: bool = False) -> str:
    """transformers' `tojson`: plain `json.dumps` (Jinja's own escapes <, >, & and ')."""
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                      sort_keys=sort_keys)


@functools.lru_cache(maxsize=1)
def _environment():
    from jinja2 import ext, nodes
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class GenerationBlocks(ext.Extension):
        """`{% generation %}...{% endgeneration %}` (marks assistant text for training
        masks in transformers): rendered as its content."""

        tags = {"generation"}

        def parse(self, parser: Any) -> list[nodes.Node]:
            next(parser.stream)
            return parser.parse_statements(("name:endgeneration",), drop_needle=True)

    class BoundedSandbox(ImmutableSandboxedEnvironment):
        """The sandbox, with `+`, `*` and `**` bounded in size (template_limits.py)."""

        intercepted_binops = frozenset({"+", "*", "**"})

        def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
            return bounded_binop(operator, left, right)

    env = BoundedSandbox(trim_blocks=True, lstrip_blocks=True, extensions=[GenerationBlocks, ext.loopcontrols])
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = _strftime_now
    return env
