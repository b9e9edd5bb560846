"""Which replica answered each request of a UE, from the Network Manager's connection ledger.

The ledger (``GET /mec/services/<name>/connections``, see :mod:`controller.plan`)
is the switches' own record: an entry per (UE, UE port, replica) that the UE's
access point learned from the replica's reply opening a connection (TCP: its
SYN-ACK) or a flow (UDP: its reply to a new UE port), with ``learned_at``, when
the switch first learned it. A probe knows each request's source port and
times; :func:`attribute` joins the two. Pure functions, no I/O.

Port reuse over a long run: OVS keeps an entry's first learning time when the
same entry is learned again, so a port used for the same replica twice keeps
one entry (harmless: same replica), and a port that was answered by replica A,
then B, then A again cannot be told apart after the second use. Hence the rule:

1. an entry learned within the request's own window (``t_send - slack_s`` ..
   ``t_reply + slack_s``) names the replica: this request opened it (when
   several, the one nearest to ``t_send`` .. ``t_reply``: a port reused within
   the slack);
2. otherwise, when every entry of the port learned before the reply names the
   same replica, that replica (the port was reused with the same replica);
3. otherwise None: unknown (no entry, no reply, or the port was answered by
   several replicas before and the ledger cannot say which one this time).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Iterable, Sequence

#: Seconds of tolerance around a request's window: the ledger's time is the flow-stats
#: request's send time minus the flow's age (OVS counts it in ms, when the request
#: arrives): early by the request's wait in OVS, measured 2-19 ms.
SLACK_S = 0.1

Request = tuple[int, float, "float | None"]


def _by_port(entries: Iterable[dict[str, Any]],
             ue: str | None) -> dict[int, list[tuple[float, str | None]]]:
    """Port -> [(learned_at, replica)], oldest first."""
    out: dict[int, list[tuple[float, str | None]]] = defaultdict(list)
    for e in entries:
        if ue is not None and e.get("ue") != ue:
            continue
        if e.get("ue_port") is None or e.get("learned_at") is None:
            continue
        out[int(e["ue_port"])].append((float(e["learned_at"]), e.get("replica")))
    for rows in out.values():
        rows.sort(key=lambda r: r[0])
    return out


def _one(rows: Sequence[tuple[float, str | None]], t_send: float, t_reply: float,
         slack_s: float) -> str | None:
    known = [r for r in rows if r[0] <= t_reply + slack_s]  # a port has few entries
    if not known:
        return None
    mine = [r for r in known if r[0] >= t_send - slack_s]
    if mine:  # learned while this request was under way: it opened the entry
        return min(mine, key=lambda r: (max(t_send - r[0], r[0] - t_reply, 0.0), -r[0]))[1]
    replicas = {r for _, r in known}
    return known[-1][1] if len(replicas) == 1 else None


def attribute(entries: Iterable[dict[str, Any]], requests: Iterable[Request],
              slack_s: float = SLACK_S, ue: str | None = None) -> list[str | None]:
    """Per request ``(sport, t_send, t_reply)`` (wall clock seconds; ``t_reply`` None when
    unanswered), the replica host that answered it according to the ledger ``entries``
    (dicts as ``NetworkManagerClient.connections`` returns them; only UE ``ue``'s when
    given), or None when unknown (see the module doc for the rule)."""
    ports = _by_port(entries, ue)
    out: list[str | None] = []
    for sport, t_send, t_reply in requests:
        rows = ports.get(int(sport))
        if t_reply is None or not rows:
            out.append(None)
            continue
        out.append(_one(rows, float(t_send), float(t_reply), slack_s))
    return out
