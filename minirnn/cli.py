"""Command-line interface: ``python -m minirnn COMMAND``."""

from __future__ import annotations

import argparse
import sys

from . import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m minirnn",
        description="minirnn: RNNs, attention and retention by hand in NumPy.",
    )
    parser.add_argument("--version", action="version", version=f"minirnn {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    tour = sub.add_parser("tour", help="check every mechanism by the numbers and print tables",
                          description="Gradient-check every mechanism and print the results.")
    tour.add_argument("--seed", type=int, default=0, help="seed of the random examples (default 0)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "tour":
        from .tour import run_tour

        return 0 if run_tour(seed=args.seed) else 1
    return 2  # unreachable: argparse rejects unknown commands


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
