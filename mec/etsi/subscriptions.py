"""The subscriptions of both APIs: one store, identifiers unique across them.

Only the platform's event loop thread touches a store (HTTP handlers, the event
adapters, the notifier dropping a dead subscriber): no lock.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import Any, Iterator, Optional


@dataclass
class Subscription:
    """One subscription: its API and kind, where it notifies, the document it is."""

    id: str
    api: str  # mec013 | mec021
    kind: str  # userTracking, zonalTraffic, zoneStatus | MobilityProcedureSubscription, ...
    callback: str  # the URL notifications are POSTed to
    doc: dict[str, Any]  # the subscription as the API shows it (resource URL included)
    created: float = field(default_factory=time.monotonic)


class SubscriptionStore:
    def __init__(self) -> None:
        self._subs: dict[str, Subscription] = {}
        self._ids = itertools.count(1)
        #: id -> why it was dropped (a subscriber that did not answer)
        self.dropped: dict[str, str] = {}

    def new_id(self) -> str:
        return f"sub{next(self._ids)}"

    def add(self, sub: Subscription) -> Subscription:
        self._subs[sub.id] = sub
        return sub

    def get(self, sub_id: str, api: str, kind: Optional[str] = None) -> Optional[Subscription]:
        sub = self._subs.get(sub_id)
        if sub is None or sub.api != api or (kind is not None and sub.kind != kind):
            return None
        return sub

    def remove(self, sub_id: str) -> Optional[Subscription]:
        return self._subs.pop(sub_id, None)

    def drop(self, sub_id: str, reason: str) -> Optional[Subscription]:
        """Remove a subscription whose subscriber does not answer, keeping why."""
        self.dropped[sub_id] = reason
        return self.remove(sub_id)

    def of(self, api: str, kind: Optional[str] = None) -> Iterator[Subscription]:
        for sub in list(self._subs.values()):
            if sub.api == api and (kind is None or sub.kind == kind):
                yield sub


@dataclass
class Outgoing:
    """A notification to send: to SUB, the document PAYLOAD (a TYPE_NAME of SUB's API).

    ``label``: what it says in a word (``Entering``, ``INTERHOST_MOVEOUT_COMPLETED``...);
    ``t_event``: monotonic time of what it reports (the network's move, the orchestrator's
    event); ``fields``: more for the event log (ue, service, t_move...).
    """

    sub: Subscription
    type_name: str
    label: str
    payload: dict[str, Any]
    t_event: Optional[float]
    fields: dict[str, Any] = field(default_factory=dict)
