"""What the experiments report, computed from a user probe's request log.

Per run (input: a list of :class:`~mec.measure.probelog.ProbeRecord` or a probe CSV):

* :func:`interruption_s`: the service interruption the user saw, i.e. the
  longest gap between consecutive successful replies, measured on reply
  times, or (``at=t``) the gap that spans an event time ``t`` such as a move.
  Its resolution is the probe's request period (5 ms at 200 req/s): with no
  outage at all the gap is about one period. An outage still open at the end
  of the window (no reply after it, or no reply at all) is reported as at least
  that long and flagged by :func:`interruption_censored`; it never reads as 0.
* :func:`failed`: requests without a successful (HTTP 2xx) reply.
* :func:`latency_percentiles`: p50/p95/p99/max of successful replies' latency.
* :func:`time_above_sla_s`: how long successful replies exceeded the SLA
  latency bound: each request stands for the time from its send to the next
  request's send; the periods of successful requests slower than the bound
  are summed (failed requests count as interruption, not here; the last
  request has no next send and adds nothing).
* :func:`replica_changes`: when the answering replica changed, from what to what.
* :func:`served_by_after`: which replicas answered requests sent (or answered)
  after a time, e.g. to check that no request after a switch reached the old
  primary.

Across runs: :func:`summarize` gives mean, Student-t 95% confidence interval,
median, 5th/95th percentiles, min, max and standard deviation of a sample.
All percentiles use linear interpolation between order statistics (the
"type 7" definition, numpy's default).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence, Union

from mec.core.stats import percentile
from mec.measure.probelog import CANCELLED, ProbeRecord, read_csv

Records = Union[str, Path, Iterable[ProbeRecord]]


def load(records: Records) -> list[ProbeRecord]:
    """Records from a CSV path or an iterable, sorted by seq."""
    if isinstance(records, (str, Path)):
        return read_csv(records)
    return sorted(records, key=lambda r: r.seq)


def _successes(records: Records) -> list[ProbeRecord]:
    """Successful records, in reply-time order."""
    return sorted((r for r in load(records) if r.ok and r.t_reply is not None), key=lambda r: r.t_reply)


# --------------------------------------------------------------------------
# Interruption
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class Gap:
    """A time without successful replies: from one reply to the next.

    ``closed`` is False when the outage was still open at an edge of the window
    it was measured in (no successful reply after ``start`` up to the window's
    end, or none before the event that it spans): the outage lasted at least
    ``duration_s``; it is *censored* (:attr:`censored`).
    """

    start: float
    end: float
    closed: bool = True

    @property
    def duration_s(self) -> float:
        return self.end - self.start

    @property
    def censored(self) -> bool:
        return not self.closed


def gaps(records: Records, end: float | None = None) -> list[Gap]:
    """Gaps without a successful reply, in time order: between consecutive replies, plus
    an open (censored) one from the last reply, or from the first send if nothing was
    answered, to the end of the window (END, or the last send of the log)."""
    recs = load(records)
    if not recs:
        return []
    ok = _successes(recs)
    out = [Gap(a.t_reply, b.t_reply) for a, b in zip(ok, ok[1:])]
    stop = max(r.t_send for r in recs) if end is None else end
    start = ok[-1].t_reply if ok else min(r.t_send for r in recs)
    tail = [r for r in recs if r.t_send > start and r.t_send <= stop]
    if not ok or any(r.failed for r in tail):  # requests went unanswered after the last reply
        out.append(Gap(start, max(stop, start), closed=False))
    return out


def longest_gap(records: Records, end: float | None = None) -> Gap | None:
    """Longest gap without a successful reply, an open one at the end included
    (None for an empty log)."""
    all_gaps = gaps(records, end)
    return max(all_gaps, key=lambda g: g.duration_s) if all_gaps else None


def gap_at(records: Records, t: float, end: float | None = None) -> Gap | None:
    """The gap spanning time ``t``: from the last successful reply at or before ``t``
    to the first one after it (up to END when given).

    Open (``closed=False``, censored) when no reply came after ``t`` (then it ends at
    END, or at the last send of the log) or none came before ``t`` (then it starts
    at the first send). None when the log has no request at or before ``t``."""
    recs = load(records)
    if not recs or min(r.t_send for r in recs) > t:
        return None
    ok = _successes(recs)
    before = [r for r in ok if r.t_reply <= t]
    start = before[-1].t_reply if before else min(r.t_send for r in recs)
    after = [r for r in ok if r.t_reply > t and (end is None or r.t_reply <= end)]
    if after:
        return Gap(start, after[0].t_reply, closed=bool(before))
    stop = max(r.t_send for r in recs) if end is None else end
    return Gap(start, max(stop, start, t), closed=False)


def interruption(records: Records, at: float | None = None,
                 end: float | None = None) -> Gap | None:
    """The longest gap (or, with ``at``, the gap spanning it), censored ones included."""
    return longest_gap(records, end) if at is None else gap_at(records, at, end)


def interruption_s(records: Records, at: float | None = None,
                   end: float | None = None) -> float | None:
    """Duration (s) of :func:`interruption`: the longest time without a successful reply,
    or the one spanning ``at``. An outage still open at the end of the window counts
    (at least) until that end (:func:`interruption_censored` says so); a log without
    any reply is one outage over the whole window. None when nothing was measured
    (an empty log, or ``at`` before its first request).
    """
    gap = interruption(records, at, end)
    return gap.duration_s if gap is not None else None


def interruption_censored(records: Records, at: float | None = None,
                          end: float | None = None) -> bool | None:
    """True when :func:`interruption_s` is a lower bound (the outage was still open)."""
    gap = interruption(records, at, end)
    return gap.censored if gap is not None else None


# --------------------------------------------------------------------------
# Counts, latency, SLA
# --------------------------------------------------------------------------
def failed(records: Records) -> int:
    """Requests without a successful reply (timeouts, refusals, resets, non-2xx)."""
    return sum(r.failed for r in load(records))


def status_counts(records: Records) -> dict[str, int]:
    return dict(Counter(r.status for r in load(records)))


def latency_percentiles(records: Records, ps: Sequence[float] = (50, 95, 99)) -> dict[str, float | None]:
    """``{"n", "p50", "p95", "p99", "max"}`` of successful replies' latency (ms).

    Values are None when there is no successful reply.
    """
    lat = [r.latency_ms for r in load(records) if r.ok and r.latency_ms is not None]
    out: dict[str, float | None] = {"n": len(lat)}
    for p in ps:
        out[f"p{p:g}"] = percentile(lat, p) if lat else None
    out["max"] = max(lat) if lat else None
    return out


def time_above_sla_s(records: Records, bound_ms: float) -> float:
    """Total time (s) during which successful replies exceeded ``bound_ms``.

    Requests are taken in send order; request *i* stands for the interval
    from its send to the send of request *i+1*, counted when *i* succeeded
    with a latency above the bound.
    """
    recs = sorted((r for r in load(records) if r.status != CANCELLED), key=lambda r: (r.t_send, r.seq))
    total = 0.0
    for cur, nxt in zip(recs, recs[1:]):
        if cur.ok and cur.latency_ms is not None and cur.latency_ms > bound_ms:
            total += nxt.t_send - cur.t_send
    return total


# --------------------------------------------------------------------------
# Replicas
# --------------------------------------------------------------------------
def replica_changes(records: Records) -> list[tuple[float, str, str]]:
    """``(t_reply, from, to)`` each time the replica answering successfully changed."""
    out = []
    prev: str | None = None
    for r in _successes(records):
        if r.replica is None:
            continue
        if prev is not None and r.replica != prev:
            out.append((r.t_reply, prev, r.replica))
        prev = r.replica
    return out


def served_by_after(records: Records, t: float, by: str = "send") -> dict[str, int]:
    """How many successful replies each replica gave for requests after ``t``.

    ``by="send"`` (default) counts requests sent at or after ``t`` (a request
    already in flight at a switch may rightly be answered by the old replica);
    ``by="reply"`` counts replies that arrived at or after ``t``. Replies
    without a replica name count under ``"?"``.
    """
    if by not in ("send", "reply"):
        raise ValueError("by must be 'send' or 'reply'")
    counts: Counter[str] = Counter()
    for r in load(records):
        if not r.ok:
            continue
        when = r.t_send if by == "send" else r.t_reply
        if when is not None and when >= t:
            counts[r.replica or "?"] += 1
    return dict(counts)


def send_rate(records: Records) -> float:
    """Requests per second actually sent: (n - 1) / (last send - first send)."""
    sends = sorted(r.t_send for r in load(records))
    if len(sends) < 2 or sends[-1] <= sends[0]:
        return 0.0
    return (len(sends) - 1) / (sends[-1] - sends[0])


def analyze(records: Records, sla_ms: float | None = None, event_t: float | None = None) -> dict:
    """One run's numbers in a dict (for result files)."""
    recs = load(records)
    out = {
        "requests": len(recs),
        "ok": sum(r.ok for r in recs),
        "failed": failed(recs),
        "statuses": status_counts(recs),
        "send_rate": send_rate(recs),
        "interruption_s": interruption_s(recs),
        "interruption_censored": interruption_censored(recs),
        "latency_ms": latency_percentiles(recs),
        "replica_changes": [list(c) for c in replica_changes(recs)],
    }
    if sla_ms is not None:
        out["time_above_sla_s"] = time_above_sla_s(recs, sla_ms)
    if event_t is not None:
        gap = gap_at(recs, event_t)
        out["interruption_at_event_s"] = gap.duration_s if gap else None
        out["interruption_at_event_censored"] = gap.censored if gap else None
        out["served_by_after_event"] = served_by_after(recs, event_t)
    return out
