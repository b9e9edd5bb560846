"""Which replica answered each probe request, taken from the network.

The probe logs each request's source port (``sport``) and times; the Network
Manager's connection ledger (:mod:`controller.ledger`) says which replica host
answered each (UE, port). :func:`from_network` joins the two and gives every
record the *instance* that answered (``instance_of`` maps a replica host, a
cloudlet, to the service's instance there), so the handover metrics
(``served_by_new_s``, ``wrong_replica``) hold for a service that knows nothing
of the testbed. For a service whose replies name the instance
(``names_instance``), the body's name is compared with the network's and a
disagreement is counted, never hidden.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any, Callable, Optional, Sequence

from controller.ledger import attribute
from mec.measure.probelog import ProbeRecord


@dataclass
class Attribution:
    """Records with the network's identity, and what the join could not say."""

    records: list[ProbeRecord]
    #: the body's instance names were compared with the network's
    body_checked: bool = False
    #: seq of the replies whose body named another instance than the network did
    mismatched: frozenset[int] = frozenset()

    def counts_in(self, t_from: float, t_to: float) -> dict[str, Optional[int]]:
        """For the successful requests sent in [T_FROM, T_TO) (monotonic): how many the
        ledger could not name (missing, never guessed) and how many bodies disagreed."""
        window = [r for r in self.records if r.ok and t_from <= r.t_send < t_to]
        return {"unattributed": sum(1 for r in window if r.replica is None),
                "body_mismatch": (sum(1 for r in window if r.seq in self.mismatched)
                                  if self.body_checked else None)}


def mono_to_wall() -> float:
    """Seconds to add to a ``time.monotonic()`` value to get wall-clock time (now)."""
    return time.time() - time.monotonic()


def from_network(records: Sequence[ProbeRecord], entries: Sequence[dict[str, Any]],
                 instance_of: Callable[[str], Optional[str]], ue: Optional[str] = None,
                 check_body: bool = False, offset: Optional[float] = None) -> Attribution:
    """RECORDS with ``replica`` = the instance the network says answered (None when
    unknown). ENTRIES: the ledger's connections of the service; OFFSET: monotonic ->
    wall clock (default: now). With CHECK_BODY the body's name (the probe's ``replica``)
    must agree."""
    offset = mono_to_wall() if offset is None else offset
    requests = [(r.sport, r.t_send + offset, None if r.t_reply is None else r.t_reply + offset)
                if r.sport is not None else (-1, r.t_send + offset, None) for r in records]
    hosts = attribute(entries, requests, ue=ue)
    out, mismatched = [], set()
    for rec, host in zip(records, hosts):
        named = instance_of(host) if host else None
        if check_body and rec.ok and named is not None and rec.replica not in (None, named):
            mismatched.add(rec.seq)
        out.append(replace(rec, replica=named))
    return Attribution(out, check_body, frozenset(mismatched))
