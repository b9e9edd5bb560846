"""`mec report DIR...`: compare scenario runs and redraw their figures from the raw data.

Each DIR is a run folder (holding summary.json) or a folder above run folders
(e.g. ``results/startup``: every run below it). For each scenario, a table
shows every metric per group as ``mean ±half-width of the 95% CI n=N`` with one
column per run (``n=N+M?``: M rows had no value; each run's line says how many
rows were not ok); the figures of every run are redrawn from its raw CSV files
(summaries recomputed from the rows, so an edited or merged CSV is honoured).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Mapping, Sequence

from mec.cli.run import SCENARIOS, scenario_module
from mec.measure.report import comparison_table, regroup, report, run_line
from mec.measure.results import Metric


def replot(path: Path, scenario: str) -> list[Path]:
    """Redraw the figures of the run in PATH (of SCENARIO) from its raw CSV files."""
    mod = scenario_module(scenario)
    groups = regroup(path, getattr(mod, "SPECS", None) or [mod.SPEC])
    if not any(groups.values()):
        return []
    return list(mod.make_plots(path, groups))


def register(subparsers) -> None:
    p = subparsers.add_parser("report", help="compare scenario runs, redraw their figures",
                              description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dirs", nargs="+", type=Path, metavar="DIR",
                   help="run folder(s), or folders above them (e.g. results/startup)")
    p.add_argument("--no-plots", action="store_true", help="do not redraw the figures")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.set_defaults(func=_cmd)


def _cmd(args: argparse.Namespace) -> int:
    try:
        rep = report(args.dirs, replot=None if args.no_plots else replot)
    except FileNotFoundError as exc:
        print(f"mec report: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(rep, indent=1, default=str))
        return 0
    runs = {e["index"]: e for e in rep["runs"]}
    for scenario, indexes in rep["scenarios"].items():
        print(f"== {scenario}")
        for i in indexes:
            print(run_line(i, Path(runs[i]["path"]), runs[i]["run"]))
        metrics_by_table: Mapping[str, Sequence[Metric]] = {}
        if scenario in SCENARIOS:
            metrics_by_table = getattr(scenario_module(scenario), "TABLE_METRICS", {})
        pairs = [(i, runs[i]["run"]) for i in indexes]
        tables = dict.fromkeys(t for _, r in pairs for t in r.get("tables", {}))
        for table in tables:
            metrics = metrics_by_table.get(table)
            if metrics is None:  # unknown scenario: every metric of the summary
                metrics = list(dict.fromkeys(
                    m for _, r in pairs for g in r["tables"][table].get("groups", [])
                    for m in g["metrics"]))
            print(f"\n{table} (mean ±95% CI half-width, n values; +M?: M missing)")
            print(comparison_table(pairs, table, metrics))
        for i in indexes:
            for plot in runs[i]["plots"]:
                print(f"plot #{i}: {plot}")
        print()
    return 0

