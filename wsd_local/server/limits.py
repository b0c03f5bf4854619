"""What one request may ask of the server: its size, its shape, its length and time.

`wsd serve` flags set the first three (`--max-body-mb`, `--max-tokens-limit`,
`--request-timeout`); the others are fixed. Each bound turns a request that would
exhaust memory, the stack or the model's time into a one-line 4xx (or, for time, an
answer stopped and marked at the deadline).
"""

from __future__ import annotations

from dataclasses import dataclass

MIB = 1024 * 1024


@dataclass(frozen=True)
class RequestLimits:
    max_body_bytes: int = 4 * MIB  # a long conversation is well under 1 MiB of JSON
    #: The most tokens a request may ask for (`max_tokens`, `draft_max_tokens`, and the
    #: other token counts of the `wsd` object): a bound on one answer's work.
    max_tokens: int = 8192
    #: Seconds one answer may run (from when the pair starts on it); then it stops, and
    #: what was written is sent, stored and marked, as when a client leaves.
    deadline_s: float = 600.0
    max_messages: int = 1024
    max_stop_strings: int = 16
    max_stop_chars: int = 256
    #: Nesting of JSON arrays and objects; a real request nests about 5 deep.
    max_json_depth: int = 64

    @property
    def max_body_text(self) -> str:
        mib = self.max_body_bytes / MIB
        return f"{mib:g} MiB" if mib >= 1 else f"{self.max_body_bytes} bytes"
