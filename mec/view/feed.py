"""The stream the page is drawn from: time-stamped items, kept bounded, read by sequence number.

An item is a JSON-ready dict with ``type`` and ``t`` (``time.monotonic()``, the clock of
the event log and the probe logs):

* ``testbed``: a testbed (or a run's part) begins: ``label``, ``topology`` (`scene.topology_doc`);
  the page resets what it knows of UEs, roles and containers;
* ``event``: one event of the log: ``kind``, ``wall``, ``fields``;
* ``ues``: where each UE is attached: ``sites`` {ue: site};
* ``steering``: the Network Manager's steering: ``rows`` [{service, ue, replica, ap}];
* ``containers``: the containers of each cloudlet's engine: ``engines`` {cloudlet: [...]};
* ``probe``: requests of one probe log: ``probe`` (its label), ``sla_ms``, ``rows``
  [[t_send, latency_ms or null, status, replica or null], ...].

`Feed` keeps the latest items (probe rows are many: the oldest go first beyond
``max_items``), each with its ``seq``; a reader asks for the items after the last
seq it saw.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any, Optional

#: probe batches kept (one per probe and 0.1 s: 5 minutes of one probe)
MAX_PROBE_ITEMS = 3000
#: other items kept (events, snapshots); testbed items are always kept
MAX_ITEMS = 20000


class Feed:
    """Thread-safe, bounded list of items with increasing sequence numbers.

    Probe batches and the other items are bounded apart, so a long run's many
    probe batches never push out the events the page folds its state from.
    """

    def __init__(self, max_items: int = MAX_ITEMS, max_probe_items: int = MAX_PROBE_ITEMS) -> None:
        self._lock = threading.Lock()
        self._kept: list[dict[str, Any]] = []  # testbed items: never dropped (the page needs them)
        self._lists = {"probe": deque(maxlen=max_probe_items), "other": deque(maxlen=max_items)}
        self._seq = 0

    def add(self, type_: str, t: Optional[float] = None, **fields: Any) -> dict[str, Any]:
        """Append an item of TYPE at T (default now); return it."""
        with self._lock:
            self._seq += 1
            item = {"seq": self._seq, "type": type_,
                    "t": time.monotonic() if t is None else t, **fields}
            if type_ == "testbed":
                self._kept.append(item)
            else:
                self._lists["probe" if type_ == "probe" else "other"].append(item)
            return item

    @property
    def last_seq(self) -> int:
        with self._lock:
            return self._seq

    def since(self, seq: int) -> list[dict[str, Any]]:
        """Items with a sequence number above SEQ, in order."""
        with self._lock:
            items = [i for i in self._kept if i["seq"] > seq]
            for kept in self._lists.values():
                for item in reversed(kept):
                    if item["seq"] <= seq:
                        break
                    items.append(item)
        items.sort(key=lambda i: i["seq"])
        return items
