"""`wsd bench` (in progress)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("bench", help="benchmark the modes on a fixed prompt set")
    parser.set_defaults(func=lambda args: 2)
