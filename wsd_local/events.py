"""Typed events the decoder yields while it works; the CLI and the TUI consume them.

Text in events is always whole characters: bytes of a character split across tokens
are held back until the character is complete.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Union

if TYPE_CHECKING:
    from .trace import Trace

Phase = Literal["loading", "drafting", "checking", "continuing", "done"]


@dataclass(frozen=True)
class PhaseChanged:
    phase: Phase


@dataclass(frozen=True)
class DraftToken:
    """The drafter wrote a token (its own tokenizer)."""
    text: str
    token_id: int
    logprob: float  # the drafter's own log-probability of this token


@dataclass(frozen=True)
class DraftScored:
    """The base model scored draft token `index` (in base tokens)."""
    index: int
    text: str
    prob: float  # p_j = P_base(draft token j | prompt, draft_<j)
    window_score: float  # g_j (0.0 while j < window - 1)
    is_switch: bool = False  # this token's window is the first to reach the threshold


@dataclass(frozen=True)
class DraftRescored:
    """Online mode: re-tokenizing longer draft text changed scored tokens; every score
    from `index` on is void and will be sent again."""
    index: int


@dataclass(frozen=True)
class SwitchFound:
    """The switch point: draft tokens 0..index (base tokens) are kept."""
    index: int  # k; -1 when the draft is empty
    fired: bool  # True when a window reached the threshold, False when the whole draft is kept
    window_score: float
    kept_text: str  # the kept draft, exactly the drafter's span of the answer
    discarded_text: str  # draft text past the switch point (shown set apart, not dropped)


@dataclass(frozen=True)
class BaseToken:
    """The base model wrote a token of the continuation."""
    text: str
    token_id: int
    logprob: float


@dataclass(frozen=True)
class Handover:
    """Nudging: the turn passes to `to_model` here (also at the start: the drafter
    opens every nudging answer). The reasons are `nudge_rule.HANDOVER_REASONS`."""
    index: int  # characters of the answer before the hand-over
    to_model: str  # "drafter" | "base"
    reason: str
    base_top_prob: float | None  # the base model's top-1 probability that decided it
    base_token: str = ""  # the base model's most likely token there
    token_index: int = 0  # base tokens in the answer before the hand-over


@dataclass(frozen=True)
class WordsKept:
    """Nudging: the drafter's turn ends; `text` (its first words) enters the answer, the
    rest of what it wrote this turn does not."""
    text: str
    discarded_text: str


@dataclass(frozen=True)
class Finished:
    """The answer is complete, or was stopped (`trace.stop_reason == "cancelled"`)."""
    trace: "Trace"


Event = Union[PhaseChanged, DraftToken, DraftScored, DraftRescored, SwitchFound,
              BaseToken, Handover, WordsKept, Finished]
