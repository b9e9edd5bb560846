"""End to end, as a new user takes it: `mec image add examples/mec-app`, then `mec run
handover --service FILE --etsi --strategy both --quick --json`. The example MEC
application registers with the testbed's MEC 021 service, is notified of each move, moves
the user's counter (its user context) to the new instance itself across a proactive
promotion and a reactive migration, reports USER_CONTEXT_TRANSFER_COMPLETED, and asks the
MEC 013 Location API where its user is. Every move must keep the user's count."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from user_cli import added_example, mec

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "mec-app"
ETSI = ("notify_triggered_s", "notify_completed_s", "context_transfer_s", "counter_before",
        "counter_after", "counter_requests", "counter_lost")


@pytest.fixture
def service(tmp_path):
    with added_example(EXAMPLE, tmp_path) as path:
        yield path


def test_the_example_app_moves_its_users_counter_across_both_strategies(service, tmp_path):
    out = tmp_path / "out"
    proc = mec("run", "handover", "--service", str(service), "--etsi", "--strategy", "both",
               "--quick", "--json", "--out", str(out), timeout=1200)
    assert proc.returncode == 0, proc.stderr[-4000:]
    run_dir = next((out / "handover").iterdir())
    with open(run_dir / "handover.csv") as f:
        rows = list(csv.DictReader(f))
    assert {r["strategy"] for r in rows} == {"proactive", "reactive"}
    for row in rows:
        move = f"{row['strategy']} {row['from_site']}->{row['to_site']}"
        assert row["outcome"] == "ok", (move, row["cause"])
        assert all(row[k] not in ("", None) for k in ETSI), (move, {k: row[k] for k in ETSI})
        assert 0 < float(row["notify_triggered_s"]) <= float(row["notify_completed_s"]), move
        assert float(row["context_transfer_s"]) > 0, move
        assert int(row["counter_requests"]) > 0, move
        assert int(row["counter_lost"]) == 0, (move, row["counter_before"],
                                               row["counter_after"], row["counter_requests"])
        assert int(row["counter_after"]) > int(row["counter_before"]) > 0, move
    for label in ("proactive", "reactive-registry"):
        state = json.loads((run_dir / f"app-state-{label}.json").read_text())
        assert state["registration"]["serviceConsumerId"]["appInstanceId"] == state["instance"]
        assert state["received"], label  # the serving instance got the user's context
        found = [loc["found"] for loc in state["locations"] if loc["found"]]
        assert found and found[-1]["zoneId"], (label, state["locations"])
