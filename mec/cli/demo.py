"""`mec demo`: the main demo on built-in defaults.

Runs the handover scenario on the paper's topology (topologies/paper.yaml: three
sites joined by 25 Mbit/s, 50 ms links) with both strategies on the same moves,
in its quick form: a UE walks s1 -> s2 -> s3 while a probe sends 200 requests/s
to the service, first with proactive replication, then with reactive migration
(image pulled from the cloud registry). It prints the proactive vs reactive
table (interruption, time above the SLA) and the paths of the plots.
"""

from __future__ import annotations

import argparse


def _cmd(args: argparse.Namespace) -> int:
    from scenarios import handover

    parser = argparse.ArgumentParser(prog="mec demo")
    handover.add_arguments(parser)
    argv = ["--strategy", "both", "--quick"]
    if args.out:
        argv += ["--out", str(args.out)]
    return handover.run(parser.parse_args(argv))


def register(subparsers) -> None:
    p = subparsers.add_parser("demo", help="the main demo: a moving user, proactive vs reactive "
                              "(handover --strategy both --quick on topologies/paper.yaml)",
                              description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=None, help="base folder of the results (default ./results)")
    p.set_defaults(func=_cmd)
