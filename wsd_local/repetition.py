"""The repetition stop: end an answer whose tail repeats an earlier span N times.

Small base models fall into greedy loops ("A place of endless wonder," dozens of times,
until the token budget). `RepetitionGuard` watches the tokens as they are written: the
answer ends as soon as its last tokens are one span followed by N more copies of it
(N = the `repetition_stop` setting), so the loop shows N + 1 times and stops there.

Short spans are not loops worth stopping: "ha ha ha", a table rule ("|---|---|---|")
or a run of newlines repeat legitimately. A span counts only when its text has at least
`MIN_SPAN_CHARS` non-space characters, a letter or digit among them. Spans of up to `MAX_SPAN_TOKENS` tokens are
watched; for each period the guard keeps how many tokens in a row equal the token one
period earlier, so each new token costs one comparison per period.
"""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass, field

MIN_SPAN_CHARS = 12
MAX_SPAN_TOKENS = 256


@dataclass
class RepetitionGuard:
    repeats: int  # N: stop when the tail is a span plus N copies (0: never)
    # The last tokens written (a span and one token before it is all a period needs).
    tokens: deque[int] = field(default_factory=lambda: deque(maxlen=MAX_SPAN_TOKENS + 1))
    texts: deque[bytes] = field(default_factory=lambda: deque(maxlen=MAX_SPAN_TOKENS + 1))
    _run: dict[int, int] = field(default_factory=dict)  # period -> tokens matching one period back

    def push(self, token: int, data: bytes) -> bool:
        """Add a written token (its id and bytes); True when the answer should end."""
        if self.repeats <= 0:
            return False
        self.tokens.append(token)
        self.texts.append(data)
        n = len(self.tokens)
        for period in range(1, min(MAX_SPAN_TOKENS, n - 1) + 1):
            if self.tokens[-1] == self.tokens[-1 - period]:
                self._run[period] = self._run.get(period, 0) + 1
            else:
                self._run[period] = 0
            # Judged once per run, when it first has N copies: while the run goes on,
            # the last `period` tokens are a rotation of the same span, so the verdict
            # would not change (and a run of newlines would be judged on every token).
            if self._run[period] == self.repeats * period and self._long_enough(period):
                return True
        return False

    def _long_enough(self, period: int) -> bool:
        span = itertools.islice(self.texts, len(self.texts) - period, None)
        text = b"".join(span).decode("utf-8", errors="replace")
        return (sum(1 for c in text if not c.isspace()) >= MIN_SPAN_CHARS
                and any(c.isalnum() for c in text))


__all__ = ["RepetitionGuard", "MIN_SPAN_CHARS", "MAX_SPAN_TOKENS"]
