"""Notification delays and context-transfer times out of a run's event log.

``etsi.notify`` events carry ``delay_s``: from the move as the network saw it (the
Network Manager's packet-in / port-status time; for MEC 021 the move that started the
procedure) to the subscriber's acknowledgement. `notification_delays` groups them per
API, strategy (MEC 021: the deployment's; MEC 013: none, the network's) and status;
`context_transfers` the ``etsi.context_transfer`` times. Unacknowledged notifications are
counted (``failed``), never averaged in.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Iterable

from mec.core.events import Event
from mec.core.stats import summarize


def notification_delays(events: Iterable[Event]) -> list[dict[str, Any]]:
    """One row per (api, strategy, status, reach): n acknowledged, failed, median/max
    delay (s); ``reach``: the subscriber on the host or in the emulated network."""
    groups: dict[tuple[str, str, str, str], list[Event]] = defaultdict(list)
    for e in events:
        if e.kind == "etsi.notify" and e.get("status") != "test":
            key = (e["api"], e.get("strategy") or "-", e["status"], e.get("reach") or "-")
            groups[key].append(e)
    rows = []
    for (api, strategy, status, reach), evs in sorted(groups.items()):
        delays = [e["delay_s"] for e in evs if e.get("ok") and e.get("delay_s") is not None]
        st = summarize(delays)
        rows.append({"api": api, "strategy": strategy, "status": status, "reach": reach,
                     "n": len(delays),
                     "failed": sum(1 for e in evs if not e.get("ok")),
                     "median_s": st["median"], "max_s": st["max"]})
    return rows


def context_transfers(events: Iterable[Event]) -> list[dict[str, Any]]:
    """One row per strategy: n, median/max of notification acknowledged -> the source
    instance's USER_CONTEXT_TRANSFER_COMPLETED (s)."""
    groups: dict[str, list[float]] = defaultdict(list)
    for e in events:
        if e.kind == "etsi.context_transfer" and e.get("transfer_s") is not None:
            groups[e.get("strategy") or "-"].append(e["transfer_s"])
    return [{"api": "mec021", "strategy": strategy, "status": "context transfer", "reach": "-",
             "n": len(xs), "median_s": summarize(xs)["median"], "max_s": summarize(xs)["max"]}
            for strategy, xs in sorted(groups.items())]


def table(rows: list[dict[str, Any]]) -> str:
    """ROWS as aligned text (milliseconds)."""
    lines = []
    for r in rows:
        med = "-" if r["median_s"] is None else f"{r['median_s'] * 1e3:8.1f} ms"
        top = "-" if r["max_s"] is None else f"{r['max_s'] * 1e3:8.1f} ms"
        label = " ".join(str(r[k]) for k in ("api", "strategy", "status", "reach"))
        lines.append(f"{label:<48} n={r['n']:<3} failed={r.get('failed', 0):<2} "
                     f"median {med}  max {top}")
    return "\n".join(lines)
