"""The Service Manager (paper Sec. IV): one per service, watching its replicas.

It health-checks every replica over the emulated network (the service file's
health check: HTTP, TCP or UDP, `mec.core.check`; from the cloud node's
namespace, where the orchestrator sits, through a `NamespaceThread`, so no
process is spawned per check), reports a replica that stops answering (N
failures in a row) and one that comes back, and keeps the data of a
storage-dependent service synchronised from the primary to the other replicas
(`mec.service.datasync.DataSync`), restarting the sync when the primary changes.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Optional, Protocol

from mec.core.check import ask
from mec.core.netns import NamespaceThread
from mec.core.servicefile import Exchange

log = logging.getLogger(__name__)


class WatchedReplica(Protocol):
    """What the Service Manager reads of one replica."""

    cloudlet: str
    instance: str
    healthy: bool


class WatchedReplicas(Protocol):
    """What the Service Manager needs of a service's replica set (the orchestrator's
    `mec.orchestrator.replicas.ReplicaSet` is one): read them, mark one up or down."""

    def __contains__(self, cloudlet: str) -> bool: ...

    def all(self) -> Iterable[WatchedReplica]: ...

    def get(self, cloudlet: str) -> WatchedReplica: ...

    def mark(self, cloudlet: str, healthy: bool) -> Any: ...


@dataclass
class HealthPolicy:
    """How replicas are checked: every ``period_s``, ``timeout_s`` each, down after N misses."""

    period_s: float = 0.2
    timeout_s: float = 0.5
    failures_to_down: int = 3


class ServiceManager:
    """Health and data synchronisation of one service's replicas."""

    def __init__(self, service: str, port: int, replicas: WatchedReplicas,
                 address_of: Callable[[str], str], probe_netns: str,
                 on_down: Callable[[str], None], events: Any = None,
                 policy: HealthPolicy = HealthPolicy(), check: Exchange = Exchange(),
                 names_instance: bool = True):
        self.service = service
        #: what a replica is asked; with NAMES_INSTANCE the answer must also name it
        self.check = check
        self.names_instance = names_instance
        self.port = port
        self.replicas = replicas
        self.address_of = address_of
        self.on_down = on_down
        self.events = events
        self.policy = policy
        self._probe_netns = probe_netns
        self._worker: Optional[NamespaceThread] = None
        self._misses: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self.sync = None  # a running mec.service.datasync.DataSync, if the service has data

    # ------------------------------------------------------------------ health
    def check_once(self) -> dict[str, bool]:
        """Check every replica once; returns cloudlet -> answered correctly."""
        if self._worker is None:
            self._worker = NamespaceThread(self._probe_netns, name=f"sm-{self.service}")
        results = {}
        for r in self.replicas.all():
            answer = self._worker.call(ask, self.address_of(r.cloudlet), self.port, self.check,
                                       self.policy.timeout_s, timeout=self.policy.timeout_s + 5)
            results[r.cloudlet] = answer.ok and (not self.names_instance
                                                 or answer.first_token == r.instance)
        return results

    def _loop(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                for cloudlet, ok in self.check_once().items():
                    self._account(cloudlet, ok)
            except Exception as exc:  # noqa: BLE001 - keep watching; report it
                log.warning("service %s: health round failed: %s", self.service, exc)
            self._stop.wait(max(0.0, self.policy.period_s - (time.monotonic() - started)))

    def _account(self, cloudlet: str, ok: bool) -> None:
        if cloudlet not in self.replicas:
            return
        was_healthy = self.replicas.get(cloudlet).healthy
        if ok:
            self._misses[cloudlet] = 0
            if not was_healthy:
                self.replicas.mark(cloudlet, True)
                self._emit("replica.up", cloudlet=cloudlet)
            return
        self._misses[cloudlet] = self._misses.get(cloudlet, 0) + 1
        if was_healthy and self._misses[cloudlet] >= self.policy.failures_to_down:
            self.replicas.mark(cloudlet, False)
            self._emit("replica.down", cloudlet=cloudlet, misses=self._misses[cloudlet])
            self.on_down(cloudlet)

    def start(self) -> "ServiceManager":
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name=f"sm-{self.service}",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        if self._worker is not None:
            self._worker.close()
            self._worker = None
        self.stop_sync()

    # ------------------------------------------------------------------ data
    def start_sync(self, make_sync: Callable[[], Any]) -> None:
        """(Re)start data synchronisation with a DataSync built by MAKE_SYNC (new roles)."""
        self.stop_sync()
        self.sync = make_sync()
        if self.sync is not None:
            self.sync.start()

    def stop_sync(self) -> None:
        if self.sync is not None:
            self.sync.stop()
            self.sync = None

    def _emit(self, kind: str, **fields: Any) -> None:
        log.info("service %s: %s %s", self.service, kind, fields)
        if self.events is not None:
            self.events.emit(kind, service=self.service, **fields)
