"""One self-contained HTML page: text, tables and figures (PNG embedded, SVG linked)."""

from __future__ import annotations

import base64
import html
import os
import time
from pathlib import Path

from .runfile import write_text_atomic
from .stats import Table

_STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; max-width: 1150px; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.8em; }
table { border-collapse: collapse; margin: .6em 0; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
p.note, div.note, figcaption { color: #555; font-size: 13px; } figure { margin: 1.2em 0; }
details { margin: .3em 0; } summary { cursor: pointer; } .answer { white-space: pre-wrap; margin: .2em 0 .8em; }
.drafter { color: #1f63b4; } .base { color: #c05000; } .switch { color: #b0009a; font-weight: bold; }
.discarded { color: #999; text-decoration: line-through; } .mode { font-weight: bold; }
img { max-width: 100%; border: 1px solid #eee; } pre { white-space: pre-wrap; }
"""


def table_html(table: Table) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in table.columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>"
                   for row in table.rows)
    note = f'<p class="note">{html.escape(table.note)}</p>' if table.note else ""
    return f"<h2>{html.escape(table.title)}</h2><table><tr>{head}</tr>{body}</table>{note}"


def figure_html(png: Path, svg: Path, caption: str, page: Path) -> str:
    data = base64.b64encode(png.read_bytes()).decode()
    link = os.path.relpath(svg, page.parent)
    return (f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
            f'<figcaption>{html.escape(caption)} · <a href="{html.escape(link)}">SVG</a></figcaption></figure>')


def answer_html(mode: str, spans: list[tuple[str, str]], discarded: str, switch: str | None) -> str:
    """One answer: the drafter's span blue, the base model's orange, ⟫ at the switch, the
    draft the base model did not keep struck through, and the switch in words."""
    parts = []
    for i, (model, text) in enumerate(spans):
        if i and model == "base" and spans[i - 1][0] == "drafter":
            parts.append('<span class="switch">⟫</span>')
        elif i and model == "drafter" and spans[i - 1][0] == "base":  # nudging: back to the drafter
            parts.append('<span class="switch">⟪</span>')
        parts.append(f'<span class="{model}">{html.escape(text)}</span>')
    dropped = (f'<div class="note">draft not kept: <span class="discarded">{html.escape(discarded)}</span></div>'
               if discarded else "")
    said = f" · {html.escape(switch)}" if switch else ""
    return (f'<div><span class="mode">{html.escape(mode)}</span>{said}'
            f'<div class="answer">{"".join(parts) or "<i>(empty)</i>"}</div>{dropped}</div>')


def write_page(path: Path, title: str, paragraphs: list[str], tables: list[Table],
               figures: list[tuple[tuple[Path, Path], str]], extra: str = "") -> None:
    parts = [f"<!doctype html><html lang=en><meta charset=utf-8><title>{html.escape(title)}</title>",
             f"<style>{_STYLE}</style><h1>{html.escape(title)}</h1>"]
    parts += [f"<pre>{html.escape(p)}</pre>" for p in paragraphs]
    parts += [table_html(t) for t in tables]
    parts += [figure_html(png, svg, caption, path) for (png, svg), caption in figures]
    parts.append(extra)
    parts.append(f'<p class="note">Written by wsd eval, {time.strftime("%Y-%m-%d %H:%M")}.</p></html>')
    write_text_atomic(path, "\n".join(parts))


__all__ = ["write_page", "table_html", "figure_html", "answer_html"]
