"""`wsd models ...` (catalog, info, pull, add, convert)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("models", help="list, inspect, download and convert models")
    parser.set_defaults(func=lambda args: parser.print_help() or 2)
