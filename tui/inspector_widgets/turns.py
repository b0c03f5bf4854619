"""A nudging answer turn by turn, as Rich text (tested without an app): the answer with
the selected turn highlighted, a row per turn, and one turn's details."""

from __future__ import annotations

from dataclasses import dataclass

from rich.style import Style
from rich.text import Text

from wsd_local.answer import Turn, describe_turn, turns_of
from wsd_local.nudge_rule import split_words, words_text
from wsd_local.terminal_text import terminal_safe
from wsd_local.trace import Trace

from ..widgets.spans import DISCARDED_STYLE, STYLES, handover_marker
from .colors import prob_style

SELECTED = Style(reverse=True, bold=True)


@dataclass(frozen=True)
class TurnsView:
    """A nudging trace's turns, worked out once (the screen redraws on every cursor move)."""

    trace: Trace
    turns: list[Turn]
    pieces: list[list[str]]  # each turn's base token texts (see `base_pieces`)
    handovers: list[int]  # indices of the turns that began with a hand-over (what n / p walk through)

    @classmethod
    def of(cls, trace: Trace) -> "TurnsView":
        turns = turns_of(trace)
        return cls(trace, turns, base_pieces(trace), [i for i, turn in enumerate(turns) if turn.handover])

    def answer_text(self, selected: int | None) -> Text:
        """The whole answer in the span styles, ⟫ / ⟪ at each hand-over, the selected turn
        reversed (an empty turn shows as its marker alone)."""
        text = Text()
        for i, turn in enumerate(self.turns):
            if turn.handover:
                marker, style = handover_marker(turn.model)
                text.append(marker, style=style + SELECTED if i == selected else style)
            style = STYLES[turn.model] + SELECTED if i == selected else STYLES[turn.model]
            text.append(terminal_safe(turn.text), style=style)
        if not text.plain:
            text.append("(no text)", style="dim italic")
        return text

    def details(self, index: int) -> Text:
        """Everything the trace records about one turn, in a few lines."""
        trace, turns = self.trace, self.turns
        turn, span = turns[index], trace.spans[index]
        threshold = trace.settings.nudge_threshold
        out = Text()
        out.append(f"turn {index} · {turn.model} · ", style="bold")
        out.append(describe_turn(turn, threshold))
        out.append("\n")
        if turn.model == "drafter":
            _drafter_details(out, span, threshold)
        else:
            _base_details(out, span, self.pieces[index], threshold)
        nxt = turns[index + 1] if index + 1 < len(turns) else None
        out.append("\nthen: ", style="bold")
        if nxt is None:
            out.append(f"the answer ends ({trace.stop_reason})")
        elif nxt.model == turn.model:
            out.append(describe_turn(nxt, threshold) + "; the drafter writes again")
        else:
            out.append(describe_turn(nxt, threshold))
        return out


def turn_row(turn: Turn, index: int) -> tuple[str, str, str, str, str]:
    """#, who, why, the base model's top-1 p, and the text, for the turn table."""
    p = "-" if turn.base_top_prob is None else f"{turn.base_top_prob:.3f}"
    preview = terminal_safe(" ".join(turn.text.split()), one_line=True)
    if len(preview) > 60:
        preview = preview[:59] + "…"
    return str(index), turn.model, turn.reason.replace("_", " "), p, preview or "(empty)"


def _drafter_details(out: Text, span: dict, threshold: float) -> None:
    written, kept = span.get("written", span["text"]), span["text"]
    out.append(f"wrote {span.get('tokens', 0)} tokens: ")
    out.append(terminal_safe(kept), style=STYLES["drafter"])
    out.append(terminal_safe(written[len(kept):]) if written.startswith(kept) else "", style=DISCARDED_STYLE)
    out.append(f"\nkept {span.get('kept_tokens', 0)} tokens")
    probes = span.get("probes", [])
    if not probes:
        out.append(" (no word boundary asked)" if written == kept else "")
        return
    prefix, words = split_words(written)
    out.append(f"; the base model was asked at {len(probes)} word boundar{'y' if len(probes) == 1 else 'ies'}:")
    for probe in probes:
        after = words_text(prefix, words, probe["words"]).strip()
        tail = after[-24:] if len(after) <= 24 else "…" + after[-23:]
        out.append(f"\n  after {tail!r}: ")
        if probe.get("ended"):
            out.append("it would end the answer here → it takes the turn (and ends it)")
            continue
        p = probe["top_prob"]
        out.append(f"{probe['token']!r} p ", style="")
        out.append(f"{p:.3f}", style=prob_style(p))
        if probe["agrees"]:
            out.append(" · starts the drafter's next word → the base model takes over")
        elif p >= threshold:
            out.append(f" ≥ {threshold:g} → the base model takes over")
        else:
            out.append(f" < {threshold:g}, declined")


def _base_details(out: Text, span: dict, pieces: list[str], threshold: float) -> None:
    tops = span.get("top_probs", [])
    out.append(f"wrote {len(tops)} tokens, each on the colour of its top-1 probability "
               f"(all but the first ≥ {threshold:g}):\n")
    used = 0
    for piece, p in zip(pieces, tops):
        out.append(terminal_safe(piece), style=prob_style(p))
        used += len(piece)
    out.append(terminal_safe(span["text"][used:]), style=STYLES["base"])


def base_pieces(trace: Trace) -> list[list[str]]:
    """The text pieces of each turn's base tokens (empty lists for drafter turns), from
    the trace's continuation tokens in order."""
    out, used = [], 0
    tokens = trace.continuation_tokens
    for span in trace.spans:
        n = span.get("tokens", 0) if span["model"] == "base" else 0
        out.append([t.text for t in tokens[used: used + n]])
        used += n
    return out
