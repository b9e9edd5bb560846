"""End to end: `scenarios/failover.py` and `scenarios/sync.py` with --quick --reps 1."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mec.core import config

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


def run_scenario(name, tmp_path, *extra):
    env = dict(os.environ, PYTHONPATH=str(REPO), MEC_PREFIX=config.PREFIX)
    proc = subprocess.run([sys.executable, str(REPO / "scenarios" / f"{name}.py"), "--quick",
                           "--reps", "1", "--out", str(tmp_path), *extra],
                          capture_output=True, text=True, timeout=240, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = [p for p in (tmp_path / name).iterdir() if p.is_dir()]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["complete"] is True
    assert str(run / "summary.json") in proc.stdout
    bridges = subprocess.run(["ovs-vsctl", "list-br"], capture_output=True, text=True).stdout
    assert not [b for b in bridges.split() if b.startswith(config.name("s"))]
    return run, summary, proc


def test_failover_quick_one_rep(tmp_path):
    run, summary, proc = run_scenario("failover", tmp_path)
    assert sorted(p.name for p in run.iterdir()) == [
        "config.json", "failover-timeline.png", "failover.csv", "failover.png", "raw",
        "summary.json"]
    assert sorted(p.name for p in (run / "raw").iterdir()) == [
        "rep01-events.jsonl", "rep01-ledger.json", "rep01-probe.csv"]
    (row,) = list(csv.DictReader(open(run / "failover.csv")))
    assert (row["killed"], row["backup"], row["served_by"]) == ("c1", "c2", "svc-c2")
    assert row["backup_serves"] == "1" and row["false_downs"] == "0"
    detect, fo, gap = (float(row[k]) for k in ("detect_s", "failover_s", "interruption_s"))
    # 3 misses of a check every 0.2 s: at least 0.4 s; then the re-steer; the user sees it all
    assert 0.3 < detect < fo < 3.0
    assert detect < gap < fo + 1.0
    assert int(row["failed"]) > 0 and row["gap_closed"] == "1"
    assert float(row["lat_after_ms"]) > 50  # the backup is one 50 ms RTT link away
    assert summary["plots"] == ["failover-timeline.png", "failover.png"]
    assert "[rep 1/1] kill c1 -> svc-c2" in proc.stderr


def test_sync_quick_one_rep(tmp_path):
    run, summary, proc = run_scenario("sync", tmp_path, "--periods", "1,3")
    assert sorted(p.name for p in run.iterdir()) == [
        "config.json", "raw", "rounds.csv", "summary.json", "sync.csv", "sync.png"]
    rows = list(csv.DictReader(open(run / "sync.csv")))
    assert [float(r["period_s"]) for r in rows] == [1.0, 3.0]
    for r in rows:
        assert r["served_by"] == f"store-{r['new_primary']}" != f"store-{r['old_primary']}"
        assert float(r["bytes_per_s"]) > 100 and int(r["rounds"]) >= 1
        assert 0 <= int(r["staleness_seq"]) <= int(r["latest_seq"])
        assert 0 <= float(r["staleness_s"]) < 10
        assert 0 <= int(r["lost_seq"]) <= int(r["staleness_seq"])
    fast, slow = rows
    assert float(fast["bytes_per_s"]) > float(slow["bytes_per_s"])  # fewer rounds, fewer bytes
    rounds = list(csv.DictReader(open(run / "rounds.csv")))
    assert rounds and all(int(r["bytes"]) > 0 and r["ok"] == "1" for r in rounds)
    assert set(summary["tables"]) == {"sync", "rounds"} and summary["plots"] == ["sync.png"]
    assert "[rep 1/2] period 1 s" in proc.stderr
