"""`mec run NAME ...`: run an experiment scenario (the same as ``sudo python3 scenarios/NAME.py``).

Every scenario is a module of ``scenarios/`` listed in SCENARIOS, with
``add_arguments(parser)``, ``run(args) -> int`` and ``make_plots(run_dir, groups)``
(used by ``mec report`` to redraw a run's figures), so adding one is one line.
"""

from __future__ import annotations

import argparse
import importlib
from types import ModuleType

#: name -> (module, one-line help)
SCENARIOS: dict[str, tuple[str, str]] = {
    "startup": ("scenarios.startup",
                "paper Fig. 4: container start-up, pre-cached vs pulled from the cloud"),
    "transfer": ("scenarios.transfer",
                 "paper Fig. 5: image export, transfer, load, launch between edges per link"),
    "handover": ("scenarios.handover",
                 "a moving user under proactive replication vs reactive migration"),
    "failover": ("scenarios.failover",
                 "the primary's cloudlet crashes: detection, failover, interruption at the user"),
    "sync": ("scenarios.sync",
             "data sync of a storage-dependent service: bytes/s vs staleness per period"),
    "faults": ("scenarios.faults",
               "faults injected under a moving user: detected, recovered, interruption, outcome"),
}


def scenario_module(name: str) -> ModuleType:
    """The module of scenario NAME (KeyError naming the known ones if unknown)."""
    try:
        module, _ = SCENARIOS[name]
    except KeyError:
        raise KeyError(f"unknown scenario {name!r} (known: {', '.join(SCENARIOS)})") from None
    return importlib.import_module(module)


def register(subparsers) -> None:
    run = subparsers.add_parser(
        "run", help="run an experiment scenario (results/NAME/TIMESTAMP/)",
        description="Run an experiment scenario (as root), the same as `sudo python3 "
                    "scenarios/NAME.py`. Each run writes results/NAME/TIMESTAMP/: config.json, "
                    "the raw CSV, summary.json (mean, 95% CI, median per group, environment) "
                    "and the figures. Ctrl-C stops it cleanly and keeps the finished "
                    "repetitions (exit 130).")
    sub = run.add_subparsers(dest="scenario", metavar="SCENARIO")
    for name, (_module, help_text) in SCENARIOS.items():
        mod = scenario_module(name)
        p = sub.add_parser(name, help=help_text, description=mod.__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        mod.add_arguments(p)
        p.set_defaults(func=mod.run)

    def _usage(_args: argparse.Namespace) -> int:
        run.print_help()
        return 2

    run.set_defaults(func=_usage)
