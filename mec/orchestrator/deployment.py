"""The orchestrator's bookkeeping: one `Deployment` per service, and how its replicas read.

A deployment is one service deployed for one user with one strategy: its
virtual IP, image, replica set (`mec.orchestrator.replicas.ReplicaSet`), Service
Manager, the user's site as the orchestrator last saw it (``site``) and, apart
from it, what really serves the user (``serving``: the primary's cloudlet), and
one `MoveRecord` per location event with how its handling ended (``ok`` or
``failed`` with a cause; ``pending`` while it runs). Every write of these
happens under the deployment's ``lock``, and so does every removal of a replica
from the set together with the removal of its container: a container of the
service exists on an engine only while its replica is in the set, while it is
being started for the set, or (its removal failed) while its cloudlet is in
``leftovers``. The helpers here only read: the
instance name of a replica, the placement the replica set stands for, a
one-replica copy of a spec (reactive migration keeps one).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from typing import Optional

from mec.core import config, servicefile
from mec.core.servicefile import ServiceDef
from mec.orchestrator import scheduler
from mec.orchestrator.replicas import BACKUP, PRIMARY, ReplicaSet
from mec.service.manager import ServiceManager

STRATEGIES = ("proactive", "reactive")
IMAGE_SOURCES = ("cached", "registry", "edge")


class OrchestrationError(RuntimeError):
    """A deployment or migration step failed; the message says which and why."""


#: How the handling of a location event ended (`MoveRecord.outcome`).
PENDING, HANDLED, FAILED = "pending", "ok", "failed"


@dataclass
class MoveRecord:
    """One location event of a deployment's user and how the orchestrator handled it."""

    from_site: str
    site: str
    outcome: str = PENDING  # PENDING, then HANDLED or FAILED
    cause: str = ""  # why it FAILED (the step and its error)
    serving: Optional[str] = None  # the primary's cloudlet once handled


@dataclass
class Deployment:
    """One service deployed for one user with one strategy."""

    spec: scheduler.ServiceSpec
    ue: str
    strategy: str
    vip: str
    image_ref: str
    replicas: ReplicaSet
    manager: ServiceManager
    image_source: str = "registry"
    data: bool = False
    port: int = config.SERVICE_PORT  # TCP port of the virtual IP and of every instance
    site: str = ""  # the user's current site as the orchestrator knows it
    history: list[str] = field(default_factory=list)
    #: one record per location event handled for this deployment, oldest first
    moves: list[MoveRecord] = field(default_factory=list)
    #: cloudlets a decision in progress relies on (a retire must not remove them)
    pinned: set[str] = field(default_factory=set)
    #: cloudlets whose container of this service could not be removed (engine down): it is
    #: removed before anything starts there again, and at undeploy
    leftovers: set[str] = field(default_factory=set)
    #: undeployed: a start still under way removes what it made instead of adding it
    closed: bool = False
    #: the service file it runs (port, protocol, command, health check, state path);
    #: default: the built-in service of the spec's image on ``port``
    service: Optional[ServiceDef] = None
    #: Serialises decisions on this deployment (held briefly: never across a pull or launch).
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    def __post_init__(self) -> None:
        if self.service is None:
            self.service = replace(servicefile.for_image(self.spec.image), port=self.port)

    @property
    def name(self) -> str:
        return self.spec.name

    def instance(self, cloudlet: str) -> str:
        """The container name of this service's replica on CLOUDLET (a cloudlet name
        Docker would refuse, e.g. with a space, is made safe: ``config.docker_safe``)."""
        return f"{self.name}-{config.docker_safe(cloudlet)}"

    @property
    def serving(self) -> Optional[str]:
        """The cloudlet whose replica is primary (serves the user), None if none is."""
        primary = self.replicas.primary
        return primary.cloudlet if primary else None

    def last_move(self) -> Optional[MoveRecord]:
        with self.lock:
            return self.moves[-1] if self.moves else None

    def down(self) -> set[str]:
        """The cloudlets whose replica the Service Manager found not answering."""
        return {r.cloudlet for r in self.replicas.all() if not r.healthy}


def one_replica(spec: scheduler.ServiceSpec) -> scheduler.ServiceSpec:
    """SPEC with a single replica (what reactive migration runs)."""
    return replace(spec, replicas=1)


def placement_of(replicas: ReplicaSet, exclude: set[str]) -> Optional[scheduler.Placement]:
    """The placement the live replicas (not in EXCLUDE) stand for; None if none is live."""
    live = [r for r in replicas.all() if r.cloudlet not in exclude and r.healthy]
    primaries = [r.cloudlet for r in live if r.role == PRIMARY]
    if not live:
        return None
    primary = primaries[0] if primaries else live[0].cloudlet
    backup = next((r.cloudlet for r in live if r.role == BACKUP and r.cloudlet != primary), None)
    rest = tuple(r.cloudlet for r in live if r.cloudlet not in (primary, backup))
    return scheduler.Placement(primary, backup, rest)
