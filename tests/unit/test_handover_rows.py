"""The handover scenario's per-move row (scenarios/handover.py move_row) on synthetic probe
logs and event lists: the happy path and each failure shape (failed migration, never served,
outage open at the end of the window, no location event, missing install time)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pytest

from mec.core.events import Event
from mec.measure import outcomes
from mec.measure.probelog import ProbeRecord
from scenarios import handover

PERIOD = 0.005  # 200 requests/s
T_REQ, T_ATT, END = 10.0, 10.03, 12.0  # move requested, UE attached, next move
OLD, NEW = "svc-c1", "svc-c2"


@dataclass
class Move:
    t_request: float
    t_attached: float
    from_site: str = "s1"
    to_site: str = "s2"


def log(answer, t0=9.0, t1=12.5):
    """Requests every PERIOD from T0 to T1; ANSWER(t_send) -> (status, latency_ms, replica)."""
    out, i, t = [], 0, t0
    while t < t1:
        status, lat, rep = answer(t)
        if status == "200":
            out.append(ProbeRecord(i, t, t + lat / 1000, status, lat, rep))
        else:
            out.append(ProbeRecord(i, t, None, status))
        i, t = i + 1, t0 + (i + 1) * PERIOD
    return out


def served(switch_at: float, outage=(10.0, 10.05), new=NEW):
    """OLD answers (2 ms) until the outage, nothing in it, then NEW from SWITCH_AT."""
    def answer(t):
        if outage[0] <= t < outage[1]:
            return "timeout", None, None
        return "200", 2.0, (new if t >= switch_at else OLD)
    return answer


def ev(seq, t, kind, **fields):
    return Event(seq, t, 0.0, kind, fields)


def proactive_events(install_ms: Optional[float] = 4.0, installed_later: Optional[float] = None):
    evs = [ev(1, 10.04, "location", service="svc", t_packet_in=10.035, install_ms=install_ms,
              resteered="c2", from_site="s1", to_site="s2"),
           ev(2, 10.05, "proactive.promote.end", steered_by="network-manager-policy")]
    if installed_later is not None:
        evs.append(ev(3, 10.06, "location.installed", to_site="s2", install_ms=installed_later))
    return evs


def row(records, events, new=NEW, strategy="proactive", **kw):
    return handover.move_row(records, events, Move(T_REQ, T_ATT), END, new, 30.0, strategy,
                             **kw)


def test_a_good_proactive_move():
    r = row(log(served(10.05)), proactive_events())
    assert r["outcome"] == outcomes.OK and r["cause"] == ""
    assert r["switch_s"] == pytest.approx(10.035 + 0.004 - T_ATT)
    # last OLD reply: request 9.995 + 2 ms; first after the outage: 10.05 + 2 ms
    assert r["interruption_s"] == pytest.approx(10.052 - 9.997)
    assert r["interruption_censored"] == 0
    assert r["served_by_new_s"] == pytest.approx(10.052 - T_ATT)
    assert r["wrong_replica"] == 0


def test_a_failed_migration_is_failed_and_never_served_by_new():
    # the migration failed: OLD keeps serving, the row has no new primary
    r = row(log(served(99.0)), [ev(1, 10.5, "migration.failed", error="no image")],
            new=None, strategy="reactive", handled=outcomes.FAILED,
            cause="reactive migration of svc to c2 failed: no image; c1 keeps serving")
    assert r["outcome"] == outcomes.FAILED and "c1 keeps serving" in r["cause"]
    assert r["served_by_new_s"] is None  # never the first reply of the OLD edge
    assert r["first_reply_s"] is not None  # the user was served (by the old edge)
    assert r["switch_s"] is None and r["wrong_replica"] is None


def test_a_handled_move_whose_new_primary_never_answers_is_not_served():
    r = row(log(served(99.0)), proactive_events())
    assert r["outcome"] == outcomes.NOT_SERVED and NEW in r["cause"]
    assert r["served_by_new_s"] is None


def test_an_outage_still_open_at_the_end_of_the_window_is_censored():
    dead = log(served(10.05, outage=(10.0, 99.0)))
    r = row(dead, proactive_events())
    assert r["interruption_s"] == pytest.approx(END - 9.997)  # at least until the next move
    assert r["interruption_censored"] == 1
    assert r["outcome"] == outcomes.NOT_SERVED
    assert r["first_reply_s"] is None and r["served_by_new_s"] is None


def test_no_location_event():
    r = row(log(served(99.0)), [], new=None, handled=outcomes.NO_LOCATION,
            cause="no location event for u1 at s2 within 30 s")
    assert r["outcome"] == outcomes.NO_LOCATION and "no location event" in r["cause"]
    assert r["served_by_new_s"] is None and r["switch_s"] is None


def test_a_missing_install_time_is_missing_not_the_packet_in_time():
    r = row(log(served(10.05)), proactive_events(install_ms=None))
    assert r["switch_s"] is None  # not t_packet_in + 0
    assert r["outcome"] == outcomes.OK  # the move itself went fine
    later = row(log(served(10.05)), proactive_events(install_ms=None, installed_later=6.0))
    assert later["switch_s"] == pytest.approx(10.035 + 0.006 - T_ATT)


def test_replies_from_another_instance_after_the_switch_are_a_wrong_replica():
    def answer(t):  # NEW from 10.05, but one in ten requests still reaches OLD
        if 10.0 <= t < 10.05:
            return "timeout", None, None
        rep = NEW if t >= 10.05 and int(round(t / PERIOD)) % 10 else OLD
        return "200", 2.0, rep
    r = row(log(answer), proactive_events())
    assert r["outcome"] == outcomes.WRONG_REPLICA and r["wrong_replica"] > 0
    # reactive: the old instance may answer what reached it while draining: counted only
    reactive = row(log(answer), [ev(1, 10.04, "migration.switch.end")], strategy="reactive")
    assert reactive["outcome"] == outcomes.OK and reactive["wrong_replica"] > 0


def test_ratio_report_prints_n_and_missing_next_to_the_means():
    stats = lambda mean, n, missing: {"mean": mean, "n": n, "missing": missing}
    summary = {"tables": {"handover": {"groups": [
        {"group": {"strategy": "proactive", "source": "-"},
         "metrics": {"served_by_new_s": stats(0.03, 4, 0)}},
        {"group": {"strategy": "reactive", "source": "registry"},
         "metrics": {"served_by_new_s": stats(3.0, 3, 1)}}]}}}
    text = handover.ratio_report(summary)
    assert "(n=4)" in text and "(n=3, 1 missing)" in text and "100.0x" in text


@dataclass
class RadioMove(Move):
    radio_ms: Optional[float] = None
    emulator_ms: Optional[float] = None


def test_a_row_carries_the_radio_and_the_emulator_apart_and_the_location_delay():
    move = RadioMove(T_REQ, T_ATT, radio_ms=27.6, emulator_ms=1.2)
    r = handover.move_row(log(served(10.05)), proactive_events(), move, END, NEW, 30.0,
                          "proactive")
    assert r["radio_s"] == pytest.approx(0.0276) and r["emulator_s"] == pytest.approx(0.0012)
    assert r["location_s"] == pytest.approx(10.035 - T_ATT)  # location event minus attach
    assert set(handover.COLUMNS) >= set(r)
    # a move that did not measure them leaves them missing, never 0
    r = row(log(served(10.05)), [])
    assert r["radio_s"] is None and r["emulator_s"] is None and r["location_s"] is None


# ---------------------------------------------------------------------- state columns
def state_event(t, kind, **fields):
    return Event(0, t, 0.0, kind, fields)


def test_reactive_state_is_the_migrations_state_phase():
    evs = [state_event(10.5, "migration.state.end", bytes_sent=262383, duration_s=1.5)]
    got = handover.state_numbers(evs, "reactive", switch_t=11.2)
    assert got["state_bytes"] == 262383 and got["state_s"] == 1.5
    assert got["stale_s"] == pytest.approx(11.2 - 9.0)  # the snapshot started at 9.0


def test_proactive_state_is_the_sync_rounds_and_the_last_round_before_the_switch():
    before = [state_event(5.0, "sync_round", ok=True, bytes=1000, seconds=0.5)]
    window = [state_event(10.2, "sync_round", ok=False, bytes=10, seconds=0.2),
              state_event(12.0, "sync_round", ok=True, bytes=300, seconds=0.3)]
    got = handover.state_numbers(window, "proactive", switch_t=10.5, before=before + window)
    assert got["state_bytes"] == 310 and got["state_s"] == pytest.approx(0.5)
    # the failed round and the one after the switch do not count: 4.5 s old at the switch
    assert got["stale_s"] == pytest.approx(10.5 - 4.5)


def test_a_service_without_state_leaves_the_state_columns_missing():
    for strategy in ("reactive", "proactive"):
        assert handover.state_numbers([], strategy, 11.0) == \
            {"state_bytes": None, "state_s": None, "stale_s": None}
    failed = [state_event(10.5, "migration.state.end", error="OrchestrationError: x", duration_s=1)]
    assert handover.state_numbers(failed, "reactive", 11.0)["state_bytes"] is None
