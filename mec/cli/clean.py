"""`mec clean`: remove everything of this prefix that the project created (mec.host.clean)."""

from __future__ import annotations

import argparse
import os

from mec.core import config
from mec.host.clean import clean


def _cmd(args: argparse.Namespace) -> int:
    if os.geteuid() != 0:
        print("mec clean needs root (run with sudo)")
        return 1
    report = clean(dry=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    for item in report.removed:
        print(f"{verb}: {item}")
    for err in report.errors:
        print(f"error: {err}")
    if not report.removed and not report.errors:
        print(f"nothing to clean (prefix '{config.PREFIX}')")
    return 1 if report.errors else 0


def register(subparsers) -> None:
    p = subparsers.add_parser("clean", help="remove every bridge, interface, namespace, engine, "
                              "container and process this project created")
    p.add_argument("--dry-run", action="store_true", help="only list what would be removed")
    p.set_defaults(func=_cmd)

