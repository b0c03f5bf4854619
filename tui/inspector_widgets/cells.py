"""A row of styled cells: what the pure layout functions produce and widgets draw."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Cell:
    text: str  # one or more characters drawn with one style
    style: str = ""  # a Rich style string
    token: int | None = None  # the token a click on this cell selects

    @staticmethod
    def plain(row: list[Cell]) -> str:
        return "".join(c.text for c in row)
