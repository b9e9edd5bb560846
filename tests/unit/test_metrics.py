"""Unit tests of mec.measure.metrics (and mec.core.stats) on synthetic probe logs whose numbers are known exactly."""

from __future__ import annotations

import math

import pytest

from mec.core import stats
from mec.measure import metrics as m
from mec.measure.probelog import ProbeRecord, read_csv, write_csv

T0, PERIOD = 10.0, 0.01


def rec(i, status="200", latency_ms=2.0, replica="A"):
    t_send = T0 + i * PERIOD
    if not status.isdigit():
        return ProbeRecord(i, t_send, None, status, None, None)
    return ProbeRecord(i, t_send, t_send + latency_ms / 1000, status, latency_ms, replica)


def outage_log():
    """100 requests at 100/s: 0-39 served by A (2 ms); 40-59 time out; 60-69 served by B
    at 60 ms (above a 50 ms SLA), 70-99 by B at 2 ms."""
    out = []
    for i in range(100):
        if i < 40:
            out.append(rec(i, replica="A"))
        elif i < 60:
            out.append(rec(i, status="timeout"))
        elif i < 70:
            out.append(rec(i, latency_ms=60.0, replica="B"))
        else:
            out.append(rec(i, replica="B"))
    return out


def test_interruption_is_the_longest_gap_between_successful_replies():
    log = outage_log()
    # last reply before: #39 at 10.39 + 0.002; first after: #60 at 10.60 + 0.060
    expected = (10.60 + 0.060) - (10.39 + 0.002)
    assert m.interruption_s(log) == pytest.approx(expected)
    gap = m.longest_gap(log)
    assert (gap.start, gap.end, gap.closed) == (pytest.approx(10.392), pytest.approx(10.66), True)
    assert m.interruption_s(log, at=10.5) == pytest.approx(expected)
    assert m.interruption_s(log, at=10.2) == pytest.approx(PERIOD)  # normal spacing
    assert m.interruption_censored(log) is False
    assert m.interruption_s(log, at=9.0) is None  # before the log began: not measured
    assert m.interruption_s([]) is None
    # one reply and nothing after it: no outage, nothing to measure (not 0)
    assert m.interruption_s([rec(0)]) is None


def test_gap_at_an_event_with_no_recovery_is_open():
    log = [rec(i) for i in range(10)] + [rec(i, status="refused") for i in range(10, 20)]
    gap = m.gap_at(log, 10.15)
    assert not gap.closed and gap.censored
    assert gap.start == pytest.approx(10.092) and gap.end == pytest.approx(10.19)
    # an outage that never ends is the longest one, at least until the end of the log
    assert m.interruption_s(log) == pytest.approx(10.19 - 10.092)
    assert m.interruption_censored(log) is True
    # ... or until the end of the window it is measured in
    assert m.interruption_s(log, at=10.15, end=12.0) == pytest.approx(12.0 - 10.092)
    assert m.interruption_censored(log, at=10.15, end=12.0) is True


def test_an_outage_with_fewer_than_two_replies_is_not_zero():
    # never a reply: the whole window is one open outage
    dead = [rec(i, status="timeout") for i in range(50)]
    assert m.interruption_s(dead) == pytest.approx(49 * PERIOD)
    assert m.interruption_censored(dead) is True
    assert m.interruption_s(dead, at=10.2, end=11.0) == pytest.approx(1.0)
    # one reply, then nothing: open from that reply on
    one = [rec(0)] + [rec(i, status="refused") for i in range(1, 30)]
    assert m.interruption_s(one) == pytest.approx(29 * PERIOD - 0.002)
    assert m.interruption_censored(one) is True
    # no reply before the event but one after: the outage began before the window (censored)
    late = [rec(i, status="timeout") for i in range(20)] + [rec(i) for i in range(20, 30)]
    gap = m.gap_at(late, 10.1)
    assert gap.censored and gap.start == pytest.approx(T0)
    assert gap.end == pytest.approx(10.2 + 0.002)
    # requests cancelled when the probe stopped are not an outage
    stopped = [rec(i) for i in range(10)] + [rec(10, status="cancelled")]
    assert m.interruption_s(stopped) == pytest.approx(PERIOD)
    assert m.interruption_censored(stopped) is False


def test_failed_counts_everything_but_2xx_and_cancelled():
    log = outage_log() + [rec(100, status="503"), rec(101, status="refused"), rec(102, status="cancelled")]
    assert m.failed(log) == 22
    assert m.status_counts(log) == {"200": 80, "timeout": 20, "503": 1, "refused": 1, "cancelled": 1}


def test_latency_percentiles_interpolate_between_order_statistics():
    p = m.latency_percentiles(outage_log(), ps=(50, 88, 99))
    # 80 successes: 70 at 2 ms and 10 at 60 ms; p88 sits at rank 69.52 -> 2 + 0.52 * 58
    assert p == {"n": 80, "p50": 2.0, "p88": pytest.approx(32.16), "p99": 60.0, "max": 60.0}
    assert m.latency_percentiles([rec(0, status="timeout")]) == {"n": 0, "p50": None, "p95": None,
                                                                 "p99": None, "max": None}


def test_time_above_sla_integrates_over_send_times():
    log = outage_log()
    assert m.time_above_sla_s(log, bound_ms=50) == pytest.approx(10 * PERIOD)
    assert m.time_above_sla_s(log, bound_ms=60) == 0.0  # strictly above
    assert m.time_above_sla_s(log, bound_ms=1) == pytest.approx(79 * PERIOD + 0.0)  # last one adds nothing
    # an above-SLA reply followed by failures counts only until the next send
    log2 = [rec(0, latency_ms=80), rec(1, status="timeout"), rec(2, status="timeout"), rec(3)]
    assert m.time_above_sla_s(log2, 50) == pytest.approx(PERIOD)


def test_replica_changes_and_who_served_after_a_switch():
    log = outage_log()
    changes = m.replica_changes(log)
    assert len(changes) == 1
    t, old, new = changes[0]
    assert (old, new) == ("A", "B") and t == pytest.approx(10.66)
    assert m.served_by_after(log, 10.5) == {"B": 40}
    assert m.served_by_after(log, 10.3) == {"A": 10, "B": 40}
    assert m.served_by_after(log, 10.3915, by="reply") == {"A": 1, "B": 40}
    flip = [rec(0, replica="A"), rec(1, replica=None), rec(2, replica="B"), rec(3, replica="A")]
    assert [(a, b) for _, a, b in m.replica_changes(flip)] == [("A", "B"), ("B", "A")]
    assert m.served_by_after(flip, 0) == {"A": 2, "?": 1, "B": 1}


def test_csv_round_trip_and_analysis_from_a_path(tmp_path):
    path = tmp_path / "probe.csv"
    write_csv(path, reversed(outage_log()))
    loaded = read_csv(path)
    assert [r.seq for r in loaded] == list(range(100))
    assert loaded[45].status == "timeout" and loaded[45].t_reply is None and loaded[45].replica is None
    assert loaded[65].latency_ms == 60.0 and loaded[65].replica == "B"
    res = m.analyze(path, sla_ms=50, event_t=10.5)
    assert res["requests"] == 100 and res["ok"] == 80 and res["failed"] == 20
    assert res["send_rate"] == pytest.approx(100.0)
    assert res["interruption_s"] == pytest.approx(0.268, abs=2e-6)
    assert res["interruption_at_event_s"] == pytest.approx(0.268, abs=2e-6)
    assert res["time_above_sla_s"] == pytest.approx(0.1, abs=1e-5)
    assert res["served_by_after_event"] == {"B": 40}


def test_summarize_uses_student_t_interval():
    s = stats.summarize([1, 2, 3, 4, 5])
    half = 2.776 * math.sqrt(2.5) / math.sqrt(5)
    assert s["n"] == 5 and s["mean"] == 3 and s["median"] == 3
    assert s["std"] == pytest.approx(math.sqrt(2.5))
    assert (s["ci95_low"], s["ci95_high"]) == (pytest.approx(3 - half), pytest.approx(3 + half))
    assert (s["p5"], s["p95"], s["min"], s["max"]) == (pytest.approx(1.2), pytest.approx(4.8), 1, 5)


def test_summarize_small_and_large_samples():
    assert stats.summarize([]) == {"n": 0, "mean": None, "ci95_low": None, "ci95_high": None, "median": None,
                               "p5": None, "p95": None, "min": None, "max": None, "std": None}
    one = stats.summarize([4.2])
    assert one["mean"] == 4.2 and one["std"] is None and one["ci95_low"] is None
    assert stats.t_critical_95(29) == 2.045  # 30 repetitions, as in the paper
    assert stats.t_critical_95(31) == 1.96
    xs = [0.0, 2.0] * 20  # n = 40: normal approximation
    s = stats.summarize(xs)
    assert s["ci95_high"] - s["mean"] == pytest.approx(1.96 * s["std"] / math.sqrt(40))
    with pytest.raises(ValueError):
        stats.summarize([1.0, float("nan")])
