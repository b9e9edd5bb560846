"""`mec run faults --quick --json`: each fault injected, seen, survived or not, recorded (root)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mec.core import config

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


def test_every_fault_is_detected_and_recorded_honestly(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root")
    env = dict(os.environ, PYTHONPATH=str(REPO), MEC_PREFIX=config.PREFIX)
    proc = subprocess.run([sys.executable, "-m", "mec.cli", "run", "faults", "--quick", "--json",
                           "--out", str(tmp_path)], capture_output=True, text=True, env=env,
                          cwd=REPO, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    rows = {r["fault"]: r for r in summary["faults"]}
    assert list(rows) == ["controller", "engine", "delay-line", "registry", "bad-image"]
    assert summary["valid"] is True  # the scenario's own faults are judged per row
    for name, r in rows.items():
        assert r["detected_s"] is not None and 0 <= r["detected_s"] < 1.0, (name, r)

    ctl = rows["controller"]  # restarted, the move under it handled, the user served again
    assert ctl["restarted"] == 1 and 0 < ctl["recovery_s"] < 10 and ctl["valid"] == 1
    assert ctl["outcome"] == "ok" and ctl["interruption_censored"] == 0

    eng = rows["engine"]  # the backup took over; the engine itself stays dead
    assert eng["outcome"] == "ok" and eng["restarted"] == 0 and eng["valid"] == 0
    assert eng["served_again_s"] is not None and eng["interruption_censored"] == 0

    line = rows["delay-line"]  # nothing can bring a dead line back: an open outage
    assert line["outcome"] == "not_served" and line["valid"] == 0
    assert line["interruption_censored"] == 1 and line["interruption_s"] > 1.0

    for name in ("registry", "bad-image"):  # the migration fails, the old instance serves
        r = rows[name]
        assert r["outcome"] == "failed" and "keeps serving" in r["cause"], r
        assert r["interruption_censored"] == 0, r
    assert rows["registry"]["valid"] == 0 and rows["bad-image"]["valid"] == 1
