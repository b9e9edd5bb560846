"""End to end, as a new user takes it: `mec image add DIR`, then `mec run handover
--service FILE --strategy both --quick --json` for the two worked examples of
examples/services/ (a TCP echo server; an HTTP server that does not name its instance,
with state). Every per-move number must be filled, proactive must give wrong_replica 0,
and which replica answered must come from the network."""

from __future__ import annotations

import contextlib
import csv
import json
from pathlib import Path

import pytest

from user_cli import added_example, mec

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "services"
#: filled for every move of every service (the per-move numbers of a handover row)
PER_MOVE = ("move_s", "interruption_s", "first_reply_s", "served_by_new_s", "switch_s",
            "time_above_sla_s", "failed", "wrong_replica", "location_s")


@pytest.fixture
def example(tmp_path):
    """add(NAME) -> the example's service file, its image added under a name of this
    test's prefix (removed at the end), as `mec image add` gives it to a user."""
    with contextlib.ExitStack() as stack:
        yield lambda name: stack.enter_context(added_example(EXAMPLES / name, tmp_path))


def handover(service: Path, out: Path) -> tuple[list[dict], dict, Path]:
    proc = mec("run", "handover", "--service", str(service), "--strategy", "both", "--quick",
               "--json", "--out", str(out), timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    (run,) = [p for p in (out / "handover").iterdir() if p.is_dir()]
    rows = list(csv.DictReader(open(run / "handover.csv")))
    return rows, json.loads((run / "summary.json").read_text()), run


def check_rows(rows: list[dict], service: str) -> None:
    assert {r["strategy"] for r in rows} == {"proactive", "reactive"}
    for r in rows:
        assert r["outcome"] == "ok", r
        assert r["service"] == service
        missing = [k for k in PER_MOVE if r[k] == ""]
        assert not missing, (missing, r)
        assert r["new"] == f"{service}-{r['new'].rsplit('-', 1)[1]}" != r["old"]
        assert r["identity"] == "network", r
        assert int(r["unattributed"]) == 0, r
    assert all(int(r["wrong_replica"]) == 0 for r in rows if r["strategy"] == "proactive")


def probe_columns(run: Path) -> None:
    """The probe's log has the source port the network attribution joins on."""
    for csv_path in run.glob("probe-*.csv"):
        rows = list(csv.DictReader(open(csv_path)))
        assert rows and all(r["sport"] for r in rows if r["t_reply"])


def test_a_tcp_echo_server_from_a_dockerfile(example, tmp_path):
    service = example("tcp-echo")
    rows, summary, run = handover(service, tmp_path / "out")
    check_rows(rows, "tcp-echo")
    probe_columns(run)
    assert summary["not_ok"] == 0 and summary["valid"] is True
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["service"]["protocol"] == "tcp" and cfg["service"]["probe"].startswith("TCP")


def test_an_http_service_that_does_not_name_itself_moves_its_state(example, tmp_path):
    service = example("web-files")
    rows, summary, run = handover(service, tmp_path / "out")
    check_rows(rows, "web-files")
    for r in rows:
        # the 256 KB blob of /srv/www/files: copied by the reactive state phase, kept in
        # sync on the proactive replicas
        assert r["state_bytes"] and r["stale_s"], r
        if r["strategy"] == "reactive":
            assert int(r["state_bytes"]) >= 256 * 1024, r
            assert 0 < float(r["state_s"]) < float(r["served_by_new_s"]), r
    assert summary["not_ok"] == 0
