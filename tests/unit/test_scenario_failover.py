"""The failover scenario's numbers and figures, from synthetic probe records and events."""

import argparse
import dataclasses
import json

import pytest

from mec.cli import run as run_cmd
from mec.measure.probelog import ProbeRecord, write_csv
from mec.measure.results import ResultDir
from scenarios import failover

T_KILL = 110.0


def records(after_replica="svc-c2", outage=(110.0, 110.7)):
    """200 req/s from t=100 to 113: c1 (2 ms) before the kill, refused in the outage, then AFTER."""
    out = []
    for i in range(2600):
        t = 100.0 + i * 0.005
        if t < outage[0] - 0.003:  # answered by c1 before the kill
            out.append(ProbeRecord(i, t, t + 0.002, "200", 2.0, "svc-c1"))
        elif t < outage[1]:
            out.append(ProbeRecord(i, t, None, "refused"))
        else:
            out.append(ProbeRecord(i, t, t + 0.1, "200", 100.0, after_replica))
    return out


def events(down=110.6, end=110.65):
    return [
        {"t": 101.0, "kind": "replica.down", "cloudlet": "c2", "service": "svc"},  # false alarm
        {"t": 101.2, "kind": "replica.up", "cloudlet": "c2", "service": "svc"},
        {"t": down, "kind": "replica.down", "cloudlet": "c1", "service": "svc"},
        {"t": down + 0.001, "kind": "failover.start", "failed": "c1", "new": "c2"},
        {"t": end, "kind": "failover.end", "failed": "c1", "new": "c2", "reroute_ms": 3.5},
    ]


def test_rep_metrics_from_the_kill():
    m = failover.rep_metrics(records(), events(), T_KILL, killed="c1", backup="c2")
    assert m["detect_s"] == pytest.approx(0.6)
    assert m["failover_s"] == pytest.approx(0.65)
    assert m["reroute_ms"] == 3.5 and m["new"] == "c2"
    # last c1 reply 109.995 + 0.002, first c2 reply 110.7 + 0.1
    assert m["interruption_s"] == pytest.approx(110.8 - 109.997, abs=1e-6)
    assert m["gap_closed"] == 1
    assert m["failed"] == 140  # 0.7 s at 200 req/s
    assert m["requests"] == 2600
    assert m["served_by"] == "svc-c2" and m["backup_serves"] == 1
    assert m["lat_before_ms"] == 2.0 and m["lat_after_ms"] == 100.0
    assert m["false_downs"] == 1
    assert (m["outcome"], m["cause"]) == ("ok", "")
    assert m["interruption_censored"] == 0


def test_a_reply_already_on_its_way_at_the_kill_does_not_end_the_interruption():
    # CI: a c1 reply sent before the kill reached the UE 4 ms after it; the gap "spanning
    # the kill" was then the 5.8 ms between c1's last two replies, not the outage
    recs = records()
    recs[1999] = ProbeRecord(1999, 109.995, T_KILL + 0.004, "200", 9.0, "svc-c1")
    m = failover.rep_metrics(recs, events(), T_KILL, killed="c1", backup="c2")
    assert m["interruption_s"] == pytest.approx(110.8 - (T_KILL + 0.004), abs=1e-6)
    assert m["gap_closed"] == 1


def test_rep_metrics_flag_a_wrong_replica_and_a_missing_failover():
    m = failover.rep_metrics(records(after_replica="svc-c3"), events(), T_KILL, "c1", "c2")
    assert m["served_by"] == "svc-c3" and m["backup_serves"] == 0
    no_fo = [e for e in events() if e["kind"] != "failover.end"]
    m = failover.rep_metrics(records(outage=(110.0, 200.0)), no_fo, T_KILL, "c1", "c2")
    assert m["failover_s"] is None and m["reroute_ms"] is None
    assert m["detect_s"] == pytest.approx(0.6)
    assert m["served_by"] == "" and m["backup_serves"] == 0
    assert m["gap_closed"] == 0  # the user was never served again
    assert m["outcome"] == "no_failover" and "c1" in m["cause"]
    # ... so the outage lasted at least until the end of the log, flagged as censored
    assert m["interruption_s"] == pytest.approx(112.995 - 109.997, abs=1e-6)
    assert m["interruption_censored"] == 1


def test_rep_outcomes_of_each_failure_shape():
    other = failover.rep_metrics(records(after_replica="svc-c3"), events(), T_KILL, "c1", "c2")
    assert other["outcome"] == "not_served" and "svc-c2" in other["cause"]
    mixed = [dataclasses.replace(r, replica="svc-c3") if r.replica == "svc-c2" and r.seq % 7 == 0 else r
             for r in records()]
    wrong = failover.rep_metrics(mixed, events(), T_KILL, "c1", "c2")
    assert wrong["outcome"] == "wrong_replica" and "svc-c2" in wrong["cause"]
    # the failover ended but the promoted backup never answered: the outage never ends
    never = failover.rep_metrics(records(outage=(110.0, 200.0)), events(), T_KILL, "c1", "c2")
    assert never["outcome"] == "not_served" and never["interruption_censored"] == 1
    assert never["interruption_s"] >= 112.99 - 109.997
    impossible = [e for e in events() if e["kind"] != "failover.end"] + [
        {"t": 110.61, "kind": "failover.impossible", "failed": "c1",
         "reason": "no healthy replica left"}]
    m = failover.rep_metrics(records(outage=(110.0, 200.0)), impossible, T_KILL, "c1", "c2")
    assert m["outcome"] == "failed" and "no healthy replica left" in m["cause"]
    raised = [e for e in events() if e["kind"] != "failover.end"] + [
        {"t": 110.62, "kind": "error", "job": "down", "error": "RuntimeError: REST 500"}]
    m = failover.rep_metrics(records(outage=(110.0, 200.0)), raised, T_KILL, "c1", "c2")
    assert m["outcome"] == "failed" and "REST 500" in m["cause"]
    # no reply at all in the log: one outage over it, not 0
    silent = [r for r in records(outage=(0.0, 200.0))]
    m = failover.rep_metrics(silent, events(), T_KILL, "c1", "c2")
    assert m["interruption_s"] == pytest.approx(112.995 - 100.0)
    assert m["interruption_censored"] == 1 and m["outcome"] == "not_served"


def test_timeline_marks_merge_close_labels():
    marks = failover.timeline_marks(events(), T_KILL, "c1")
    assert [m["kind"] for m in marks] == ["kill", "replica.down", "failover.end"]
    assert marks[0]["label"] == "c1 killed" and marks[2]["label"] == "down, -> c2"
    far = failover.timeline_marks(events(down=110.3, end=111.0), T_KILL, "c1")
    assert [m["label"] for m in far] == ["c1 killed", "down", "-> c2"]


def test_make_plots_from_a_run_folder(tmp_path):
    rd = ResultDir("failover", base=tmp_path)
    table = rd.table("failover", failover.COLUMNS)
    (rd.path / failover.RAW).mkdir()
    for rep, shift in ((1, 0.0), (2, 0.2), (3, 0.1)):
        recs = records(outage=(110.0, 110.7 + shift))
        evs = events(down=110.6 + shift, end=110.65 + shift)
        write_csv(rd.path / failover.probe_file(rep), recs)
        with open(rd.path / failover.events_file(rep), "w") as fh:
            for seq, e in enumerate(evs, 1):
                fh.write(json.dumps({"seq": seq, "wall": 0.0, **e}) + "\n")
        m = failover.rep_metrics(recs, evs, T_KILL, "c1", "c2")
        table.append({**{k: v for k, v in m.items() if k in failover.COLUMNS}, "rep": rep,
                      "replicas": 2, "killed": "c1", "backup": "c2", "detect_period_s": 0.2,
                      "detect_misses": 3, "t_kill": T_KILL, "kill_ms": 15.0})
    summary = rd.write_summary([failover.SPEC], complete=True)
    rd.close()
    groups = {t: s["groups"] for t, s in summary["tables"].items()}
    (g,) = groups["failover"]
    assert g["metrics"]["detect_s"]["mean"] == pytest.approx(0.7)
    assert g["metrics"]["backup_serves"]["mean"] == 1.0
    paths = failover.make_plots(rd.path, groups)
    assert [p.name for p in paths] == ["failover-timeline.png", "failover.png"]
    assert all(p.stat().st_size > 10_000 for p in paths)


def test_mec_run_failover_options():
    parser = argparse.ArgumentParser(prog="mec")
    run_cmd.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["run", "failover", "--quick", "--detect-period", "0.1",
                              "--detect-misses", "2", "--replicas", "3"])
    assert args.func is failover.run
    assert (args.detect_period, args.detect_misses, args.replicas) == (0.1, 2, 3)
    assert args.policy == "neighbours" and args.image is None and args.service is None and args.rate == 200
