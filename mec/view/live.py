"""Follow a running testbed into a `Feed`: its event log, UE sites, steering, engines, probe logs.

What comes from where (and how late it can be):

* events (moves, roles, promotions, migration phases, faults): the testbed's
  `mec.core.events.EventLog`, by subscription: an item as the event is emitted;
* UE sites: the network's ``ue_site`` at once on ``move.attached``, and polled;
* steering: the Network Manager's ``GET /mec/steering``, polled every ``period_s``;
* probe requests: the run folder's ``probe-*.csv`` tailed every ``period_s`` (the
  probe flushes every 0.5 s, so a request reaches the page within about 0.6 s);
* containers of each cloudlet's engine: the Docker SDK, polled every ``engine_period_s``.
An item is added only when what it says changed.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from typing import Any, Optional

from mec.view.feed import Feed
from mec.view.probetail import ProbeTail
from mec.view.scene import topology_doc
from mec.view.server import ViewServer

log = logging.getLogger(__name__)

PERIOD_S = 0.1
ENGINE_PERIOD_S = 1.0


def event_item(event: Any) -> dict[str, Any]:
    """The fields of an `Event` as a feed item wants them (JSON-safe values)."""
    return {"kind": event.kind, "wall": event.wall, "event_seq": event.seq,
            "fields": json.loads(json.dumps(dict(event.fields), default=str))}


def label_of(testbed: Any) -> str:
    """A testbed's label: its event log's file name without ``events-`` (or its topology)."""
    path = getattr(getattr(testbed, "events", None), "path", None)
    if path is not None and Path(path).stem.startswith("events-"):
        return Path(path).stem[len("events-"):]
    return testbed.topology.name


class LiveSource:
    """Feeds FEED from one running testbed until `stop` (the testbed stays the caller's)."""

    def __init__(self, feed: Feed, testbed: Any, run_dir: Optional[Path] = None,
                 sla_ms: Optional[float] = None, period_s: float = PERIOD_S,
                 engine_period_s: float = ENGINE_PERIOD_S) -> None:
        self.feed = feed
        self.tb = testbed
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.sla_ms = sla_ms
        self.period_s = period_s
        self.engine_period_s = engine_period_s
        self._stop = threading.Event()
        self._seen: set[int] = set()
        self._seen_lock = threading.Lock()
        self._last: dict[str, Any] = {}
        self._tails: dict[Path, ProbeTail] = {}
        self._unsubscribe = None
        self._threads: list[threading.Thread] = []
        self.errors: dict[str, str] = {}  # what could not be read, last reason (logged once)

    def start(self) -> "LiveSource":
        self.feed.add("testbed", label=label_of(self.tb), topology=topology_doc(self.tb.topology))
        events = getattr(self.tb, "events", None)
        if events is not None:
            self._unsubscribe = events.subscribe(self._on_event)
            for event in events.events():  # what happened before we listened
                self._on_event(event)
        self._poll_ues()
        for target, name in ((self._fast_loop, "view-poll"), (self._engine_loop, "view-engines")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._unsubscribe is not None:
            self._unsubscribe()
        for thread in self._threads:
            thread.join(timeout=5)
        self._poll_probes()  # the last rows the probe wrote

    # ------------------------------------------------------------------ sources
    def _on_event(self, event: Any) -> None:
        with self._seen_lock:
            if event.seq in self._seen:
                return
            self._seen.add(event.seq)
        self.feed.add("event", t=event.t, **event_item(event))
        if event.kind == "move.attached":
            self._poll_ues()

    def _changed(self, key: str, value: Any) -> bool:
        if self._last.get(key) == value:
            return False
        self._last[key] = value
        return True

    def _poll_ues(self) -> None:
        net = self.tb.network
        if net is None:
            return
        sites = dict(net.ue_site)
        with self._seen_lock:
            if not self._changed("ues", sites):
                return
        self.feed.add("ues", sites=sites)

    def _poll_steering(self) -> None:
        if getattr(self.tb, "controller", None) is None:
            return
        try:
            rows = [{k: r.get(k) for k in ("service", "ue", "replica", "ap")}
                    for r in self.tb.nm.steering()]
        except Exception as exc:  # noqa: BLE001 - a controller restarting: said on the page
            self._error("steering", exc)
            return
        if self._changed("steering", rows):
            self.feed.add("steering", rows=rows)

    def _poll_probes(self) -> None:
        if self.run_dir is None:
            return
        for path in sorted(self.run_dir.glob("probe-*.csv")):
            tail = self._tails.setdefault(path, ProbeTail(path))
            rows = tail.read()
            if rows:
                self.feed.add("probe", t=rows[0][0], probe=tail.label, sla_ms=self.sla_ms,
                              rows=rows)

    def _poll_engines(self) -> None:
        net = self.tb.network
        if net is None:
            return
        engines: dict[str, Any] = {}
        for cloudlet, engine in list(net.engines.items()):
            try:
                engines[cloudlet] = sorted(
                    ({"name": c.name, "image": c.attrs.get("Image"), "status": c.status} for c in engine.client().containers.list(all=True)),
                    key=lambda c: c["name"])
            except Exception as exc:  # noqa: BLE001 - a crashed engine: shown as such
                engines[cloudlet] = None
                self._error(f"engine {cloudlet}", exc)
        if self._changed("containers", engines):
            self.feed.add("containers", engines=engines)

    def _error(self, what: str, exc: Exception) -> None:
        text = f"{type(exc).__name__}: {exc}"
        if self.errors.get(what) != text:
            log.warning("view: cannot read %s: %s", what, text)
        self.errors[what] = text

    # ------------------------------------------------------------------ loops
    def _fast_loop(self) -> None:
        while not self._stop.wait(self.period_s):
            self._poll_ues()
            self._poll_steering()
            self._poll_probes()

    def _engine_loop(self) -> None:
        while True:
            self._poll_engines()
            if self._stop.wait(self.engine_period_s):
                return


class LiveView:
    """The page of running testbeds: one server for a whole run, a `LiveSource` per testbed.

    ``start()`` serves (returns the address); ``attach(tb, run_dir)`` follows a testbed
    (the previous one's source stops: a scenario runs its strategies one after another);
    ``stop()`` ends both.
    """

    def __init__(self, port: int = 0, title: str = "") -> None:
        self.feed = Feed()
        self.server = ViewServer(self.feed, {"mode": "live", "title": title}, port=port)
        self.url = self.server.url
        self.source: Optional[LiveSource] = None

    def start(self) -> str:
        return self.server.start()

    def attach(self, testbed: Any, run_dir: Optional[Path] = None,
               sla_ms: Optional[float] = None) -> None:
        self.detach()
        self.source = LiveSource(self.feed, testbed, run_dir=run_dir, sla_ms=sla_ms).start()

    def detach(self) -> None:
        if self.source is not None:
            self.source.stop()
            self.source = None

    def stop(self) -> None:
        self.detach()
        self.server.stop()
