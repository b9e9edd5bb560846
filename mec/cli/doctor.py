"""`mec doctor`: every prerequisite of the testbed, one line each, with a fix (mec.host.doctor)."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from mec.host.doctor import run_checks


def _cmd(args: argparse.Namespace) -> int:
    results = run_checks()
    if args.json:
        print(json.dumps([asdict(r) for r in results], indent=1))
    else:
        width = max(len(r.name) for r in results)
        for r in results:
            print(f"[{r.status:^4}] {r.name:<{width}}  {r.detail}")
            if r.fix and r.status in ("fail", "warn"):
                print(f"{'':7}{'':<{width}}  fix: {r.fix}")
    failed = [r.name for r in results if r.status == "fail"]
    if not args.json:
        print("all required checks passed" if not failed else f"{len(failed)} required check(s) "
              f"failed: {', '.join(failed)}")
    return 1 if failed else 0


def register(subparsers) -> None:
    p = subparsers.add_parser("doctor", help="check every prerequisite and say how to fix it")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_cmd)

