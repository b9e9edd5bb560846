"""`mec bench NAME`: benchmarks that print numbers (and JSON with --json).

Speed and fidelity targets live here, not in timed unit tests. Each benchmark
is a module with ``add_arguments(parser)`` and an entry function taking the
parsed arguments and returning an exit code, listed in BENCHES, so adding one
is one line.
"""

from __future__ import annotations

import argparse
import importlib

#: name -> (module, entry function, help)
BENCHES: dict[str, tuple[str, str, str]] = {
    "links": ("mec.bench.links", "run",
              "fidelity of shaped links (rate, RTT, loss) and image pull"),
    "reroute": ("mec.bench.reroute", "main",
                "re-steer latency and rate of the Network Manager, location events"),
    "probe": ("mec.bench.probe", "run",
              "the user probe's highest sustained request rate (loopback, no root)"),
    "scale": ("mec.bench.scale", "run",
              "bring-up, teardown, memory, idle CPU and move cost of generated rings"),
    "cluster": ("mec.bench.cluster", "run",
                "a link between two (test) servers against one within a server"),
}


def register(subparsers) -> None:
    bench = subparsers.add_parser("bench", help="benchmarks: measured numbers, JSON with --json")
    sub = bench.add_subparsers(dest="bench", metavar="BENCH")
    for name, (module, entry, help_text) in BENCHES.items():
        mod = importlib.import_module(module)
        p = sub.add_parser(name, help=help_text, description=mod.__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.add_argument("--json", action="store_true", help="print JSON instead of a table")
        mod.add_arguments(p)
        p.set_defaults(func=getattr(mod, entry))

    def _usage(_args: argparse.Namespace) -> int:
        bench.print_help()
        return 2

    bench.set_defaults(func=_usage)
