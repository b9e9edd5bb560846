"""`mec probe`: the user probe on this host (the same as ``python -m mec.measure.probe``)."""

from __future__ import annotations

from mec.measure.probe import add_arguments, run_cli


def register(subparsers) -> None:
    p = subparsers.add_parser("probe", help="send HTTP, TCP or UDP requests at a fixed "
                              "rate and log them (run on a UE)")
    add_arguments(p)
    p.set_defaults(func=run_cli)
