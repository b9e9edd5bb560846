"""The outcome of one measured move (or repetition): its names and how rows count them.

Every per-move row of a scenario (a handover move, a failover repetition) carries
``outcome``, one of the names below, and ``cause``, a short text saying why when it
is not ``ok``. The numbers of a row that is not ``ok`` are kept in the raw CSV
(what was measured stays measured) but a run with such rows says so at the end
and in ``summary.json`` (``outcomes``, ``not_ok``); see docs/scenarios.md.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Iterable, Mapping

#: the move was handled and the new primary served the user within the window
OK = "ok"
#: an orchestrator step failed (e.g. the new instance could not start); cause: its error
FAILED = "failed"
#: handled, but no reply from the new primary within the row's window
NOT_SERVED = "not_served"
#: no location event: the orchestrator never saw the user at the new site
NO_LOCATION = "no_location"
#: the location event came but its handling had not ended within the wait
TIMEOUT = "timeout"
#: requests sent after the switch were answered by another instance than the new primary
WRONG_REPLICA = "wrong_replica"
#: failover scenario: the primary was killed and no failover ended within the wait
NO_FAILOVER = "no_failover"

OUTCOMES = (OK, FAILED, NOT_SERVED, NO_LOCATION, TIMEOUT, WRONG_REPLICA, NO_FAILOVER)


def count(rows: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """How many ROWS have each outcome (rows without the column are not counted)."""
    return dict(Counter(str(r["outcome"]) for r in rows if r.get("outcome")))


def not_ok(counts: Mapping[str, int]) -> int:
    """How many of COUNTS (from :func:`count`) are not ``ok``."""
    return sum(n for outcome, n in counts.items() if outcome != OK)


def describe(counts: Mapping[str, int]) -> str:
    """``"2 of 6 not ok (failed 1, not_served 1)"``, or ``""`` when all are ok."""
    bad = not_ok(counts)
    if not bad:
        return ""
    detail = ", ".join(f"{o} {n}" for o, n in sorted(counts.items()) if o != OK)
    return f"{bad} of {sum(counts.values())} not ok ({detail})"
