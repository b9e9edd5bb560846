"""The user probe's request log: one record per request, stored as CSV.

Shared by :mod:`mec.measure.probe` (writes it on the UE) and :mod:`mec.measure.metrics`
(analyses it). Columns::

    seq,t_send,t_reply,status,latency_ms,replica,sport,ok

* ``seq``: request number, 0-based, in schedule order;
* ``t_send``: ``time.monotonic()`` when the request's connection was opened;
* ``t_reply``: ``time.monotonic()`` when the full reply had arrived (empty if
  none did);
* ``status``: the HTTP status code (http targets); ``ok`` or ``mismatch``
  (tcp and udp targets: a reply that counts, or one that does not, see
  :mod:`mec.measure.target`); or ``timeout``, ``refused``, ``reset`` (closed
  before any reply), ``error`` (any other failure), ``cancelled`` (still in
  flight when the probe was stopped hard; neither a success nor a failure);
* ``latency_ms``: ``(t_reply - t_send) * 1000`` when a reply arrived, whether
  it counts or not (empty if none did);
* ``replica``: the instance that answered, parsed from the reply (empty if
  unknown or not asked for);
* ``sport``: the local (source) port of the request's TCP connection or UDP
  socket (a persistent connection's port for ``--keepalive``), known even
  when the request failed; it joins a request with the Network Manager's
  record of where that connection or flow was steered (empty in logs written
  before this column existed, or if no socket was made);
* ``ok``: 1 if the reply counts as a success (http: the expected status; tcp
  and udp: status ``ok``), else 0. Logs without this column (older ones)
  count an HTTP 2xx status or ``ok`` as a success.

``time.monotonic()`` is CLOCK_MONOTONIC, the same clock in every network
namespace of the machine, so probe logs line up with :mod:`mec.core.events`.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

COLUMNS = ("seq", "t_send", "t_reply", "status", "latency_ms", "replica", "sport", "ok")

#: Status of a request abandoned when the probe was stopped hard.
CANCELLED = "cancelled"
#: Outcomes of a request that got no reply at all.
FAILURE_STATUSES = ("timeout", "refused", "reset", "error")


def counts_by_status(status: str) -> bool:
    """Success as a log without an ``ok`` column tells it: an HTTP 2xx status or ``ok``."""
    return status == "ok" or (status.isdigit() and 200 <= int(status) < 300)


@dataclass(frozen=True)
class ProbeRecord:
    """Outcome of one probe request (see the module docstring for the fields)."""

    seq: int
    t_send: float
    t_reply: float | None
    status: str
    latency_ms: float | None = None
    replica: str | None = None
    sport: int | None = None
    #: A successful reply; None (not given) derives it from the status (:func:`counts_by_status`).
    ok: bool | None = None

    def __post_init__(self) -> None:
        if self.ok is None:
            object.__setattr__(self, "ok", self.status != CANCELLED and counts_by_status(self.status))

    @property
    def failed(self) -> bool:
        """Not a success, and not merely cancelled by a hard stop."""
        return not self.ok and self.status != CANCELLED

    def to_row(self) -> list[str]:
        return [
            str(self.seq),
            f"{self.t_send:.6f}",
            "" if self.t_reply is None else f"{self.t_reply:.6f}",
            self.status,
            "" if self.latency_ms is None else f"{self.latency_ms:.3f}",
            self.replica or "",
            "" if self.sport is None else str(self.sport),
            "1" if self.ok else "0",
        ]

    @classmethod
    def from_row(cls, row: dict[str, str]) -> "ProbeRecord":
        return cls(
            seq=int(row["seq"]),
            t_send=float(row["t_send"]),
            t_reply=float(row["t_reply"]) if row.get("t_reply") else None,
            status=row["status"],
            latency_ms=float(row["latency_ms"]) if row.get("latency_ms") else None,
            replica=row.get("replica") or None,
            sport=int(row["sport"]) if row.get("sport") else None,
            ok={"1": True, "0": False}.get(row.get("ok") or ""),
        )


def write_csv(path: str | Path, records: Iterable[ProbeRecord]) -> None:
    """Write ``records`` sorted by seq, atomically (temporary file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(COLUMNS)
        for r in sorted(records, key=lambda r: r.seq):
            w.writerow(r.to_row())
    os.replace(tmp, path)


def read_csv(path: str | Path) -> list[ProbeRecord]:
    """Load a probe log, sorted by seq (an incomplete last row is skipped)."""
    out = []
    with open(path, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            try:
                out.append(ProbeRecord.from_row(row))
            except (KeyError, TypeError, ValueError):
                continue  # a row cut short by a killed writer
    return sorted(out, key=lambda r: r.seq)


class StreamingWriter:
    """Appends records to a CSV as they complete (so a killed probe leaves data).

    Rows arrive in completion order; :meth:`finish` rewrites the file sorted
    by seq.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "w", newline="", encoding="utf-8")
        self._w = csv.writer(self._fh)
        self._w.writerow(COLUMNS)
        self._fh.flush()

    def write(self, record: ProbeRecord) -> None:
        self._w.writerow(record.to_row())

    def flush(self) -> None:
        if not self._fh.closed:
            self._fh.flush()

    def finish(self, records: Iterable[ProbeRecord]) -> None:
        if not self._fh.closed:
            self._fh.close()
        write_csv(self.path, records)
