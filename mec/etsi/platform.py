"""`MecPlatform`: the ETSI MEC APIs of a running testbed, served where applications reach them.

::

    with Testbed(load("topologies/paper.yaml")) as tb, \\
            EdgeOrchestrator(tb, events=tb.events) as orch, \\
            MecPlatform(tb, orch) as mec:
        mec.host_url      # http://127.0.0.1:PORT      (the host's namespace)
        mec.emulated_url  # http://CLOUD_IP:8282       (the emulated cloud node's namespace)

Both listeners serve the same APIs: ``/location/v2`` (GS MEC 013) and ``/amsi/v1``
(GS MEC 021). The second one is a socket made inside the cloud node's network namespace,
so service instances in the cloudlets reach the platform over the emulated network;
callbacks to emulated addresses leave from there too (`mec.etsi.notify`).

What feeds it:

* the Network Manager's location events, read by a watcher thread of its own (every
  ``poll_s``): the Location API's users and its notifications, with the time the network
  saw the move (the event's ``ts_packet_in``). The platform reads them itself rather
  than waiting for the orchestrator's ``location`` event, which comes only for users
  with a deployment and only once the orchestrator's worker is free (behind a migration);
* the orchestrator's event log (``migration.*``, ``proactive.promote.*``, ``roles``,
  ``location``): the AMS's notifications and adjacent instances, from its deployments.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from typing import Any, Optional

from mec.core.events import Event, EventLog
from mec.core.netns import NamespaceThread
from mec.etsi.location import LocationService, User
from mec.etsi.mobility import (COMPLETED, FAILED, TRIGGERED, AppInstance, AppMobilityService,
                               Procedure)
from mec.etsi.server import EtsiServer, listener
from mec.etsi.subscriptions import SubscriptionStore

log = logging.getLogger(__name__)

#: the emulated listener's port on the cloud node
EMULATED_PORT = 8282
#: orchestrator event -> the mobility status it reports
STATUS_OF = {"migration.start": TRIGGERED, "proactive.promote.start": TRIGGERED,
             "migration.end": COMPLETED, "proactive.promote.end": COMPLETED,
             "migration.failed": FAILED}
WATCHED = ("location", "roles", *STATUS_OF)


class MecPlatform:
    """The ETSI MEC platform of TESTBED (a started `mec.testbed.Testbed`) and ORCHESTRATOR."""

    def __init__(self, testbed: Any, orchestrator: Any = None,
                 events: Optional[EventLog] = None, port: int = EMULATED_PORT,
                 host_port: int = 0, attempts: int = 3, timeout_s: float = 1.0,
                 poll_s: float = 0.02, hold_s: float = 10.0) -> None:
        self.testbed = testbed
        self.orchestrator = orchestrator
        self.events = events or (orchestrator.events if orchestrator is not None else None) \
            or testbed.events or EventLog()
        self.topology = testbed.topology
        self.nm = testbed.nm
        self.port, self.host_port = port, host_port
        self.attempts, self.timeout_s, self.poll_s = attempts, timeout_s, poll_s
        #: longest the orchestrator keeps an instance for its application's context transfer
        self.hold_s = hold_s
        self.store = SubscriptionStore()
        self._switch_up: dict[str, bool] = {}
        self._moves: dict[str, float] = {}  # ue -> monotonic time of its last network move
        self._mono_minus_wall = time.monotonic() - time.time()
        self._stop = threading.Event()
        self._ns: Optional[NamespaceThread] = None
        self._watcher: Optional[threading.Thread] = None
        self._unsubscribe = None
        self.server: Optional[EtsiServer] = None
        self.host_url = self.emulated_url = ""

    # ------------------------------------------------------------------ views
    def _users(self) -> list[User]:
        known = {u.name: u.ip for u in self.topology.ues}
        out = []
        for row in self.nm.locations():
            if row.get("kind") == "ue" and row["name"] in known:
                out.append(User(row["name"], known[row["name"]], row["switch"],
                                row.get("since") or time.time()))
        return out

    def _ap_status(self, site: str) -> str:
        up = self._switch_up.get(site)
        return "Unknown" if up is None else "Serviceable" if up else "Unserviceable"

    def instances(self) -> list[AppInstance]:
        """Every instance of every deployment of the orchestrator (none without one)."""
        orch = self.orchestrator
        if orch is None:
            return []
        out = []
        for dep in list(orch.deployments.values()):
            ue_ip = self.topology.ue(dep.ue).ip
            for r in dep.replicas.all():
                out.append(AppInstance(dep.name, r.instance, r.cloudlet, r.site,
                                       orch.edges[r.cloudlet].ip, dep.port, r.role, dep.ue,
                                       ue_ip))
        return out

    # ------------------------------------------------------------------ events in
    def _watch(self) -> None:
        """Follow the Network Manager's event log: location events of UEs, switch states."""
        seq = max([e["seq"] for e in self.nm.events()] or [0])
        generation = getattr(self.testbed, "controller_restarts", 0)
        next_switches = 0.0
        while not self._stop.wait(self.poll_s):
            try:
                now_gen = getattr(self.testbed, "controller_restarts", 0)
                if now_gen != generation:  # a restarted Network Manager counts from 1 again
                    generation, seq = now_gen, 0
                for ev in self.nm.events(since=seq):
                    seq = max(seq, ev["seq"])
                    if ev.get("type") == "location" and ev.get("kind") == "ue":
                        wall = ev.get("ts_packet_in") or ev.get("ts") or time.time()
                        t = wall + self._mono_minus_wall
                        self._moves[ev["host"]] = t
                        self.server.move(ev["host"], ev["new"]["switch"], wall, t)
                if time.monotonic() >= next_switches:
                    self._switch_up = {s["name"]: bool(s["connected"])
                                       for s in self.nm.switches()}
                    next_switches = time.monotonic() + 1.0
            except Exception as exc:  # noqa: BLE001 - the controller may be restarting
                log.debug("ETSI platform: event poll failed: %s", exc)

    def _on_event(self, event: Event) -> None:
        """The orchestrator's events (its thread: hand over at once, never wait)."""
        if event.kind == "location":
            t = event.get("t_packet_in")
            if t is not None and t > self._moves.get(event["ue"], float("-inf")):
                self._moves[event["ue"]] = t
            return
        if event.kind == "roles":
            self.server.replicas_changed(event["service"], event.t)
            return
        proc = self._procedure(event)
        if proc is not None:
            self.server.procedure(proc)

    def _procedure(self, event: Event) -> Optional[Procedure]:
        orch = self.orchestrator
        dep = orch.deployments.get(event.get("service")) if orch is not None else None
        if dep is None or event.get("ue") is None:
            return None
        status = STATUS_OF[event.kind]
        if event.kind == "proactive.promote.end" and event.get("error"):
            status = FAILED
        new = event["new"]
        return Procedure(status, dep.name, dep.strategy, dep.ue, self.topology.ue(dep.ue).ip,
                         dep.instance(event["old"]), dep.instance(new),
                         orch.edges[new].ip if new in orch.edges else None, dep.port,
                         event.t, self._moves.get(dep.ue))

    # ------------------------------------------------------------------ lifetime
    def start(self) -> "MecPlatform":
        cloud = self.topology.cloud
        try:
            self._ns = NamespaceThread(self.testbed.network.host(cloud.name).netns_path,
                                       name="etsi")
            emulated = self._ns.call(listener, cloud.ip, self.port)
            host = listener("127.0.0.1", self.host_port)
            ns = self._ns
            location = LocationService(self.topology, self._users(), self.store,
                                       ap_status=self._ap_status)
            mobility = AppMobilityService(self.instances, self.store)
            self.server = EtsiServer(
                location, mobility, self.store, self.events, [host, emulated],
                emulated_socket=lambda f, k, p: ns.call(socket.socket, f, k, p, timeout=5),
                attempts=self.attempts, timeout_s=self.timeout_s).start()
            self.host_url = f"http://127.0.0.1:{host.getsockname()[1]}"
            self.emulated_url = f"http://{cloud.ip}:{self.port}"
            if self.orchestrator is not None:
                self.orchestrator.release_guard = self.hold_for_context
            self._unsubscribe = self.events.subscribe(self._on_event, WATCHED)
            self._watcher = threading.Thread(target=self._watch, name="etsi-watch", daemon=True)
            self._watcher.start()
        except BaseException:
            self.stop()
            raise
        log.info("ETSI MEC platform at %s and %s", self.host_url, self.emulated_url)
        return self

    def stop(self) -> None:
        self._stop.set()
        if self.orchestrator is not None and \
                getattr(self.orchestrator, "release_guard", None) == self.hold_for_context:
            self.orchestrator.release_guard = None
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._watcher is not None:
            self._watcher.join(timeout=5)
            self._watcher = None
        if self.server is not None:
            self.server.stop()
            self.server = None
        if self._ns is not None:
            self._ns.close()
            self._ns = None

    def hold_for_context(self, instance: str) -> None:
        """The orchestrator's release guard: keep INSTANCE until the application reported
        its context transfer (USER_CONTEXT_TRANSFER_COMPLETED), at most ``hold_s``;
        ``etsi.release`` says how long it waited and why it let go."""
        server = self.server
        if server is None:
            return
        t0 = time.monotonic()
        why = "nothing to move"
        while server.call(server.mobility.holds, instance):
            why = "context transferred"
            if time.monotonic() - t0 >= self.hold_s:
                why = "timeout"
                log.warning("ETSI platform: %s did not report its context transfer within "
                            "%g s: released anyway", instance, self.hold_s)
                break
            time.sleep(self.poll_s)
        self.events.emit("etsi.release", instance=instance, waited_s=time.monotonic() - t0,
                         why=why)

    def __enter__(self) -> "MecPlatform":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
