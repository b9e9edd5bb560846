"""End to end: `scenarios/startup.py --quick` on a real network leaves a complete run folder."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mec.core import config

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.integration
def test_startup_quick_busybox_one_rep(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO), MEC_PREFIX=config.PREFIX)
    proc = subprocess.run(
        [sys.executable, str(REPO / "scenarios" / "startup.py"), "--quick", "--images", "busybox",
         "--reps", "1", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=180, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = [p for p in (tmp_path / "startup").iterdir() if p.is_dir()]
    assert sorted(p.name for p in run.iterdir()) == [
        "config.json", "startup.csv", "startup.png", "summary.json"]
    rows = list(csv.DictReader(open(run / "startup.csv")))
    assert [(r["image"], r["state"]) for r in rows] == [("busybox", "pulled"),
                                                         ("busybox", "cached")]
    pulled, cached = rows
    assert float(pulled["pull_s"]) > 0 and int(pulled["bytes"]) > 500_000  # really downloaded
    assert cached["pull_s"] == "" and 0 < float(cached["launch_s"]) < 30
    assert float(pulled["total_s"]) == pytest.approx(
        float(pulled["pull_s"]) + float(pulled["launch_s"]), abs=1e-5)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["complete"] is True and summary["plots"] == ["startup.png"]
    assert summary["environment"]["ovs_datapath"] == "netdev"
    assert summary["environment"]["controller"] == "os-ken"
    groups = summary["tables"]["startup"]["groups"]
    assert {(g["group"]["image"], g["group"]["state"]) for g in groups} == {
        ("busybox", "pulled"), ("busybox", "cached")}
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["images"] == ["busybox"] and cfg["reps"] == 1
    assert "[rep 1/1] busybox pulled:" in proc.stderr
    assert str(run / "summary.json") in proc.stdout
    # Nothing of the run is left on the machine.
    bridges = subprocess.run(["ovs-vsctl", "list-br"], capture_output=True, text=True).stdout
    assert not [b for b in bridges.split() if b.startswith(config.name("s"))]
