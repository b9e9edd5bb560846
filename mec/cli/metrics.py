"""`mec metrics CSV...`: each probe log's numbers as JSON (mec.measure.metrics)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mec.core.stats import summarize
from mec.measure.metrics import analyze


def register(subparsers) -> None:
    """Add ``mec metrics CSV...``: print each probe log's numbers as JSON."""
    p = subparsers.add_parser("metrics", help="analyse user probe logs (interruption, latency, SLA, replicas)")
    p.add_argument("csv", nargs="+", type=Path, help="probe CSV file(s)")
    p.add_argument("--sla-ms", type=float, default=None, help="SLA latency bound for time_above_sla_s")
    p.add_argument("--event-t", type=float, default=None,
                   help="monotonic time of an event (e.g. a move): gap spanning it, who served after it")
    p.set_defaults(func=_run_cli)


def _run_cli(args: argparse.Namespace) -> int:
    out = {str(path): analyze(path, sla_ms=args.sla_ms, event_t=args.event_t) for path in args.csv}
    if len(args.csv) > 1:
        runs = list(out.values())
        out["summary"] = {m: _summary(runs, m) for m in ("interruption_s", "failed")}
        out["summary"]["interruption_censored"] = sum(
            bool(r["interruption_censored"]) for r in runs)
    print(json.dumps(out, indent=2))
    return 0



def _summary(runs: list[dict], metric: str) -> dict:
    """summarize() of METRIC over RUNS, with how many runs had no value (missing)."""
    values = [r[metric] for r in runs if r.get(metric) is not None]
    return {**summarize(values), "missing": len(runs) - len(values)}
