"""The ``mec`` command: one entry point, one module per group of subcommands.

Each module listed in COMMAND_MODULES exposes ``register(subparsers)`` which
adds its subcommands; a subcommand's parser carries ``func`` (called with the
parsed arguments, returning an exit code).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Sequence

from mec import __version__

COMMAND_MODULES: tuple[str, ...] = (
    "mec.cli.doctor",
    "mec.cli.clean",
    "mec.cli.setup",
    "mec.cli.image",
    "mec.cli.smoke",
    "mec.cli.demo",
    "mec.cli.net",
    "mec.cli.probe",
    "mec.cli.metrics",
    "mec.cli.bench",
    "mec.cli.flows",
    "mec.cli.run",
    "mec.cli.report",
    "mec.cli.view",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mec",
        description="MEC service replication and migration testbed "
        "(reproduces Farris et al., ICC 2017).",
    )
    parser.add_argument("--version", action="version", version=f"mec {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
