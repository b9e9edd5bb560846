"""`mec smoke`: one cloudlet engine, one service container, one answer (mec.host.smoke)."""

from __future__ import annotations

import argparse

from mec.host import daemons
from mec.host.smoke import run_smoke


def _cmd(args: argparse.Namespace) -> int:
    daemons.ensure_all()
    result = run_smoke(args.image, hold_s=getattr(args, "hold", 0.0))
    print(f"smoke: the UE got '{result['answer']}' from {result['image']} "
          f"(network {result['network_up_s']:.1f} s, engine {result['engine_up_s']:.1f} s, "
          f"pull {result['pull_s']:.2f} s, launch to first answer "
          f"{result['launch_to_answer_s']:.2f} s)")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("smoke", help="build a tiny network with one cloudlet engine and "
                              "one service container, check that it answers, remove it")
    p.add_argument("--image", default="busybox", help="service image to run (default busybox)")
    p.add_argument("--hold", type=float, default=0.0, metavar="S",
                   help="keep the network up S seconds after the check (to inspect it)")
    p.set_defaults(func=_cmd)

