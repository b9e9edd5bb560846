"""The handover scenario's ETSI numbers per move (scenarios/_etsi.py): notification delays
from the attach, context-transfer time, and whether the user's counter continued."""

from __future__ import annotations

from mec.core.events import Event
from mec.measure.probelog import ProbeRecord
from scenarios import _etsi

T_ATTACH = 100.0


def ev(t: float, kind: str, **fields) -> Event:
    return Event(seq=0, t=t, wall=t, kind=kind, fields=fields)


def notify(t_acked: float, status: str, ok: bool = True) -> Event:
    return ev(t_acked, "etsi.notify", api="mec021", type="MobilityProcedureNotification",
              status=status, subscription="s1", t_event=t_acked - 0.01, t_sent=t_acked - 0.005,
              t_acked=t_acked if ok else None, attempts=1, ok=ok)


def rec(seq: int, t: float, ok: bool = True) -> ProbeRecord:
    return ProbeRecord(seq=seq, t_send=t, t_reply=t + 0.002 if ok else None,
                       status="ok" if ok else "timeout", ok=ok)


EVENTS = [notify(100.05, _etsi.TRIGGERED), notify(100.30, _etsi.COMPLETED),
          ev(100.31, "etsi.context_transfer", app_instance="app-c1", ue="10.0.0.1",
             t_notified=100.30, t_completed=100.34)]


def test_delays_are_from_the_attach_to_the_acknowledged_notifications():
    out = _etsi.move_numbers(EVENTS, T_ATTACH, [], None, None)
    assert round(out["notify_triggered_s"], 3) == 0.05
    assert round(out["notify_completed_s"], 3) == 0.30
    assert round(out["context_transfer_s"], 3) == 0.04
    assert out["counter_lost"] is None  # not read: missing, not 0


def test_a_notification_never_acknowledged_is_missing():
    out = _etsi.move_numbers([notify(100.05, _etsi.TRIGGERED, ok=False)], T_ATTACH, [],
                             None, None)
    assert out["notify_triggered_s"] is None and out["context_transfer_s"] is None


def test_the_counter_continued_when_it_grew_by_every_request_counted_between_the_reads():
    before = _etsi.CounterRead(10, 99.0, 99.1)
    after = _etsi.CounterRead(14, 103.0, 103.1)
    records = [rec(1, 99.05), rec(2, 100.0), rec(3, 101.0), rec(4, 102.0), rec(5, 102.5),
               rec(6, 102.7, ok=False), rec(7, 103.05)]
    out = _etsi.move_numbers(EVENTS, T_ATTACH, records, before, after)
    # 2..5 were sent after the first read ended and answered before the second began
    assert (out["counter_requests"], out["counter_lost"]) == (4, 0)


def test_a_context_left_behind_is_counted_as_lost():
    before = _etsi.CounterRead(10, 99.0, 99.1)
    after = _etsi.CounterRead(3, 103.0, 103.1)  # the new instance started from 0
    records = [rec(1, 100.0), rec(2, 101.0), rec(3, 102.0)]
    out = _etsi.move_numbers(EVENTS, T_ATTACH, records, before, after)
    assert out["counter_lost"] == 10 and out["counter_after"] == 3  # the 10 stayed behind
