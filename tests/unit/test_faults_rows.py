"""The fault scenario's per-fault row on synthetic probe logs, events and deaths."""

from __future__ import annotations

import pytest

from mec.core.events import Event
from mec.core.watchdog import Death
from mec.measure import outcomes
from mec.measure.probelog import ProbeRecord
from scenarios import faults

T_FAULT, PERIOD = 100.0, 0.01


def log(ok_until: float, ok_again: float | None, end: float = 103.0, t0: float = 99.0):
    """Requests every 10 ms from T0 to END: answered before OK_UNTIL and from OK_AGAIN."""
    out, i, t = [], 0, t0
    while t < end:
        ok = t < ok_until or (ok_again is not None and t >= ok_again)
        out.append(ProbeRecord(i, t, t + 0.002, "200", 2.0, "svc-c1") if ok
                   else ProbeRecord(i, t, None, "timeout", None, None))
        i, t = i + 1, round(t + PERIOD, 6)
    return out


def ev(seq: int, t: float, kind: str, **fields) -> Event:
    return Event(seq, t, 0.0, kind, fields)


def test_a_restarted_controller_row_times_detection_recovery_and_the_outage():
    hit = faults.Fault("network-manager", T_FAULT)
    death = Death("network-manager", "controller", T_FAULT + 0.15, "pid 7 exited with -9",
                  recovered=True, recovery_s=1.1)
    row = faults.fault_row("controller", faults.PLANS["controller"], hit,
                           log(ok_until=100.5, ok_again=101.8), [], [death], end=103.0,
                           move_outcome=(outcomes.OK, ""))
    assert row["detected_s"] == pytest.approx(0.15) and row["restarted"] == 1
    assert row["recovery_s"] == 1.1 and row["valid"] == 1
    # the longest outage after the fault (at the move), not the instant of the kill
    assert row["interruption_s"] == pytest.approx(1.302, abs=0.011)
    assert row["interruption_censored"] == 0 and row["failed"] == 130
    assert row["served_again_s"] == pytest.approx(0.002, abs=1e-6)
    assert (row["outcome"], row["cause"]) == (outcomes.OK, "")


def test_a_dead_delay_line_leaves_an_open_outage_and_an_invalid_run():
    hit = faults.Fault("delay line mec-l0 a->b (queue 1)", T_FAULT)
    death = Death(hit.target, "delay-line", T_FAULT + 0.2, "pid 9 exited with -9")
    row = faults.fault_row("delay-line", faults.PLANS["delay-line"], hit,
                           log(ok_until=100.0, ok_again=None), [], [death], end=103.0,
                           move_outcome=(outcomes.NOT_SERVED, "no reply from svc-c1"))
    assert row["interruption_censored"] == 1
    assert row["interruption_s"] == pytest.approx(3.0, abs=0.011)  # at least the window
    assert row["served_again_s"] is None and row["restarted"] == 0 and row["recovery_s"] is None
    assert row["valid"] == 0 and row["outcome"] == outcomes.NOT_SERVED


def test_an_engine_crash_without_failover_is_no_failover():
    hit = faults.Fault("engine c1", T_FAULT)
    death = Death("engine c1", "engine", T_FAULT + 0.1)
    records = log(ok_until=100.0, ok_again=None)
    row = faults.fault_row("engine", faults.PLANS["engine"], hit, records, [], [death],
                           end=103.0, move_outcome=None)
    assert row["outcome"] == outcomes.NO_FAILOVER and "no failover.end" in row["cause"]
    done = faults.fault_row("engine", faults.PLANS["engine"], hit, records,
                            [ev(1, 100.9, "failover.end", new="c2")], [death], end=103.0,
                            move_outcome=None)
    assert done["outcome"] == outcomes.OK


def test_a_bad_image_is_detected_by_the_failed_migration_and_the_run_stays_valid():
    hit = faults.Fault("instance svc-c2", T_FAULT)
    events = [ev(1, 99.5, "migration.failed", error="earlier, not ours"),
              ev(2, 100.12, "migration.failed", error="No command specified")]
    row = faults.fault_row("bad-image", faults.PLANS["bad-image"], hit,
                           log(ok_until=100.05, ok_again=100.2), events, [], end=103.0,
                           move_outcome=(outcomes.FAILED, "OrchestrationError: ..."))
    assert row["detected_s"] == pytest.approx(0.12) and row["restarted"] is None
    assert row["valid"] == 1 and row["outcome"] == outcomes.FAILED


def test_nothing_noticed_is_missing_not_zero():
    hit = faults.Fault("registry", T_FAULT)
    row = faults.fault_row("registry", faults.PLANS["registry"], hit,
                           log(ok_until=103.0, ok_again=None), [], [], end=103.0,
                           move_outcome=(outcomes.OK, ""))
    assert row["detected_s"] is None and row["restarted"] is None


def test_the_fault_table_names_each_fault_and_its_fate():
    rows = [{"fault": "controller", "detected_s": 0.05, "restarted": 1, "recovery_s": 1.08,
             "served_again_s": 0.02, "interruption_s": 1.04, "interruption_censored": 0,
             "failed": 105, "outcome": "ok", "cause": "", "valid": 1},
            {"fault": "delay-line", "detected_s": 0.2, "restarted": 0, "recovery_s": None,
             "served_again_s": None, "interruption_s": 2.2, "interruption_censored": 1,
             "failed": 223, "outcome": "not_served", "cause": "no reply", "valid": 0}]
    text = faults.fault_table(rows)
    assert "controller     0.05 s     1.08 s        0.02 s         1.04 s     105  ok (valid)" in text
    assert "delay-line     0.20 s         no             -        2.20 s+     223  not_served " \
           "(INVALID): no reply" in text


def test_unknown_faults_are_refused_with_the_known_ones():
    assert faults.parse_faults("engine, controller") == ["engine", "controller"]
    with pytest.raises(SystemExit, match="unknown nope; known: controller,"):
        faults.parse_faults("engine,nope")
