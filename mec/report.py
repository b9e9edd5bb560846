"""`mec report DIR...`: compare scenario runs and redraw their figures from the raw data.

Each DIR is a run folder (holding summary.json) or a folder above run folders
(e.g. ``results/startup``: every run below it). For each scenario, a table
shows every metric per group as ``mean ±half-width of the 95% CI`` with one
column per run; the figures of every run are redrawn from its raw CSV files
(summaries recomputed from the rows, so an edited or merged CSV is honoured).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

from mec.results import Metric, find_runs, load_run, read_rows, summarize_rows

log = logging.getLogger(__name__)


def _cell(stats: Mapping[str, Any] | None, factor: float) -> str:
    if not stats or not stats.get("n"):
        return "-"
    mean = stats["mean"] * factor
    if stats.get("ci95_high") is None:
        return f"{mean:.3f} (n={stats['n']})"
    half = (stats["ci95_high"] - stats["mean"]) * factor
    return f"{mean:.3f} ±{half:.3f}"


def _run_line(i: int, path: Path, run: Mapping[str, Any]) -> str:
    env = run.get("environment", {})
    cfg = run.get("config", {})
    rows = sum(t.get("rows", 0) for t in run.get("tables", {}).values())
    state = "complete" if run.get("complete") else f"INCOMPLETE: {run.get('reason', '')}"
    return (f"#{i} {path}  [{state}; {rows} rows; reps {cfg.get('reps', '?')}; controller "
            f"{env.get('controller', '?')}; delay {env.get('delay_mechanism', '?')}; "
            f"kernel {env.get('kernel', '?')}]")


def comparison_table(runs: Sequence[tuple[int, Mapping[str, Any]]], table: str,
                     metrics: Sequence[Metric]) -> str:
    """One line per (group, metric), one column per run: mean ±CI half-width."""
    keys: list[tuple] = []
    group_names: list[str] = []
    by_run: dict[int, dict[tuple, Mapping]] = {}
    for i, run in runs:
        t = run.get("tables", {}).get(table, {})
        group_names = group_names or list(t.get("group_by", []))
        idx = {}
        for g in t.get("groups", []):
            key = tuple(str(v) for v in g["group"].values())
            idx[key] = g
            if key not in keys:
                keys.append(key)
        by_run[i] = idx
    width = 18
    head = "".join(f"{n:<10}" for n in group_names) + f"{'metric':<14}" + "".join(
        f"{'#' + str(i):>{width}}" for i, _ in runs)
    lines = [head]
    for key in keys:
        for m in metrics:
            col, label, factor = (m, m, 1.0) if isinstance(m, str) else m
            cells = [_cell(by_run[i].get(key, {}).get("metrics", {}).get(col), factor)
                     for i, _ in runs]
            if all(c == "-" for c in cells):
                continue
            lines.append("".join(f"{k:<10}" for k in key) + f"{label:<14}" +
                         "".join(f"{c:>{width}}" for c in cells))
    return "\n".join(lines)


def replot(path: Path, scenario: str) -> list[Path]:
    """Redraw the figures of the run in PATH from its raw CSV files."""
    from mec.run_cmd import scenario_module

    mod = scenario_module(scenario)
    specs = getattr(mod, "SPECS", None) or [mod.SPEC]
    groups = {}
    for spec in specs:
        csv_path = path / f"{spec.table}.csv"
        rows = read_rows(csv_path) if csv_path.exists() else []
        groups[spec.table] = summarize_rows(rows, spec.group_by, spec.metrics)
    if not any(groups.values()):
        return []
    return list(mod.make_plots(path, groups))


def report(paths: Sequence[Path | str], plots: bool = True) -> dict[str, Any]:
    """Runs found under PATHS grouped by scenario, with the figures redrawn (if PLOTS)."""
    out: dict[str, Any] = {"runs": [], "scenarios": {}}
    for i, path in enumerate(find_runs(paths), start=1):
        run = load_run(path)
        entry = {"index": i, "path": str(path), "scenario": run.get("scenario"), "run": run,
                 "plots": []}
        if plots:
            try:
                entry["plots"] = [str(p) for p in replot(path, run["scenario"])]
            except Exception as exc:  # noqa: BLE001 - report the others anyway
                log.error("%s: could not redraw the figures: %s", path, exc)
                entry["plot_error"] = str(exc)
        out["runs"].append(entry)
        out["scenarios"].setdefault(run.get("scenario"), []).append(i)
    return out


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
    from mec.run_cmd import SCENARIOS, scenario_module

    try:
        rep = report(args.dirs, plots=not args.no_plots)
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
            print(_run_line(i, Path(runs[i]["path"]), runs[i]["run"]))
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
            print(f"\n{table} (mean ±95% CI half-width)")
            print(comparison_table(pairs, table, metrics))
        for i in indexes:
            for plot in runs[i]["plots"]:
                print(f"plot #{i}: {plot}")
        print()
    return 0
