"""Comparing scenario runs (`mec report`): one table per scenario, a column per run.

Runs are found by their summary.json; a table shows every metric per group as
``mean ±half-width of the 95% CI n=N`` with one column per run (``n=N+M?``: M
rows of the group had no value, e.g. moves that failed). :func:`regroup`
recomputes a run's summaries from its raw CSV rows (so an edited or merged CSV
is honoured) for a caller that redraws the figures.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from mec.measure.results import Metric, SummarySpec, find_runs, load_run, read_rows, summarize_rows

log = logging.getLogger(__name__)


def _cell(stats: Mapping[str, Any] | None, factor: float) -> str:
    """``mean ±half-width n=N`` (``n=N+M?`` when M rows had no value); ``-`` if none."""
    if not stats or not (stats.get("n") or stats.get("missing")):
        return "-"
    n = f"n={stats['n']}" + (f"+{stats['missing']}?" if stats.get("missing") else "")
    if not stats.get("n"):
        return f"none {n}"
    mean = stats["mean"] * factor
    if stats.get("ci95_high") is None:
        return f"{mean:.3f} {n}"
    half = (stats["ci95_high"] - stats["mean"]) * factor
    return f"{mean:.3f} ±{half:.3f} {n}"


def outcomes_line(run: Mapping[str, Any]) -> str:
    """``outcomes: ok 4, failed 1`` of a run (empty for runs without outcomes)."""
    counts = run.get("outcomes") or {}
    return ("outcomes: " + ", ".join(f"{o} {n}" for o, n in sorted(counts.items()))
            if counts else "")


def run_line(i: int, path: Path, run: Mapping[str, Any]) -> str:
    env = run.get("environment", {})
    cfg = run.get("config", {})
    rows = sum(t.get("rows", 0) for t in run.get("tables", {}).values())
    state = "complete" if run.get("complete") else f"INCOMPLETE: {run.get('reason', '')}"
    if run.get("not_ok"):
        state += f"; {run['not_ok']} rows NOT OK ({outcomes_line(run)})"
    if run.get("valid") is False:
        state += "; INVALID: " + ", ".join(f"{d['name']} died" for d in run.get("deaths", [])
                                           if not d.get("recovered"))
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
    width = 26
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


def regroup(path: Path, specs: Sequence[SummarySpec]) -> dict[str, list]:
    """The groups of each table of the run in PATH, recomputed from its raw CSV files."""
    groups = {}
    for spec in specs:
        csv_path = path / f"{spec.table}.csv"
        rows = read_rows(csv_path) if csv_path.exists() else []
        groups[spec.table] = summarize_rows(rows, spec.group_by, spec.metrics)
    return groups


#: Redraws the figures of one run: (run folder, scenario name) -> the files written.
Replot = Callable[[Path, str], list[Path]]


def report(paths: Sequence[Path | str], replot: Replot | None = None) -> dict[str, Any]:
    """Runs found under PATHS grouped by scenario, with the figures redrawn by REPLOT if given."""
    out: dict[str, Any] = {"runs": [], "scenarios": {}}
    for i, path in enumerate(find_runs(paths), start=1):
        run = load_run(path)
        entry = {"index": i, "path": str(path), "scenario": run.get("scenario"), "run": run,
                 "plots": []}
        if replot is not None:
            try:
                entry["plots"] = [str(p) for p in replot(path, run["scenario"])]
            except Exception as exc:  # noqa: BLE001 - report the others anyway
                log.error("%s: could not redraw the figures: %s", path, exc)
                entry["plot_error"] = str(exc)
        out["runs"].append(entry)
        out["scenarios"].setdefault(run.get("scenario"), []).append(i)
    return out
