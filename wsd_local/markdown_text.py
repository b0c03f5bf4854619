"""Text from prompts and answers made inert for a Markdown document.

An exported chat is opened in Markdown viewers, editors and web pages, and its text
came from users and models: raw HTML in it would be rendered (scripts, forms, hidden
text), and an image link would load a remote picture when the file is viewed (a
tracking pixel). So, outside code:

- `<` becomes `&lt;`: no HTML tag, comment or autolink can start;
- the `!` of an image (`![alt](url)`, `![alt][ref]`) becomes `&#33;`: what is left is
  an ordinary link, shown as text and followed only when clicked.

Code is left as written, where a renderer shows it verbatim anyway: fenced blocks
(``` or ~~~, up to three spaces in) and code spans within one line. A fence the text
leaves open is closed at its end, so it cannot swallow what the document says next.
Everything else (emphasis, lists, headings, links, tables) stays readable Markdown.
"""

from __future__ import annotations

import re

_FENCE_OPEN = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")
_FENCE_CLOSE = re.compile(r"^ {0,3}(`{3,}|~{3,})[ \t]*$")
_BACKTICKS = re.compile(r"`+")


def inert_markdown(text: str) -> str:
    """`text` with HTML and image links neutralised outside code (see the module)."""
    out: list[str] = []
    fence: str | None = None  # the open fence's backticks or tildes
    for line in text.split("\n"):
        if fence is None:
            opened = _FENCE_OPEN.match(line)
            # A backtick fence's info string cannot hold a backtick (that is a code span).
            if opened and not (opened.group(1)[0] == "`" and "`" in opened.group(2)):
                fence = opened.group(1)
                out.append(line)
            else:
                out.append(_inert_line(line))
            continue
        closed = _FENCE_CLOSE.match(line)
        if closed and closed.group(1)[0] == fence[0] and len(closed.group(1)) >= len(fence):
            fence = None
        out.append(line)
    if fence is not None:
        out.append(fence)
    return "\n".join(out)


def _inert_line(line: str) -> str:
    """One line outside a fence: code spans kept, the rest neutralised."""
    parts: list[str] = []
    position = 0
    while True:
        opening = _BACKTICKS.search(line, position)
        if opening is None:
            break
        # A backslash before the run escapes its first backtick: no code span opens
        # there (treating the run as text is the safe reading either way).
        escaped = opening.start() > 0 and line[opening.start() - 1] == "\\"
        closing = None if escaped else _matching_backticks(line, opening)
        if closing is None:  # no code span: the backticks are text
            parts.append(_neutralise(line[position:opening.end()]))
            position = opening.end()
            continue
        parts.append(_neutralise(line[position:opening.start()]))
        parts.append(line[opening.start():closing.end()])
        position = closing.end()
    parts.append(_neutralise(line[position:]))
    return "".join(parts)


def _matching_backticks(line: str, opening: re.Match[str]) -> re.Match[str] | None:
    """The run of exactly as many backticks that closes a code span, if the line has one."""
    for run in _BACKTICKS.finditer(line, opening.end()):
        if len(run.group()) == len(opening.group()):
            return run
    return None


def _neutralise(text: str) -> str:
    return text.replace("<", "&lt;").replace("![", "&#33;[")


__all__ = ["inert_markdown"]
