"""Every service container on an engine is in its replica set (or being removed right now).

The real Edge Managers run here over a fake Docker engine that behaves as Docker does where
it matters: a container name stays taken until its removal has ended (a create meanwhile is
a 409 Conflict), a second removal while one is under way is a 409 "already in progress",
and a force remove returns when the container is gone. The sequences are the ones seen in a
real run (`mec run handover --strategy proactive`): the Service Manager reports a replica
down, the failover drops it, the relocation that follows places a replica on that same
cloudlet again; and their races, made deterministic with gates inside the fake engine.
"""

from __future__ import annotations

import dataclasses
import itertools
import queue
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

import docker.errors
import pytest
import requests

from mec.core import config
from mec.core.events import EventLog
from mec.edge.manager import LABEL_SERVICE, EdgeManager, ReadyResult, container_name
from mec.orchestrator import EdgeOrchestrator
from mec.orchestrator.deployment import Deployment
from mec.orchestrator.replicas import BACKUP, PRIMARY, ReplicaSet
from mec.orchestrator.scheduler import MarkovPredictor, ServiceSpec, SiteGraph
from topologies.loader import load

TOPO = Path(__file__).resolve().parents[2] / "topologies" / "paper.yaml"
_ids = itertools.count(1)


def api_error(status: int, message: str) -> docker.errors.APIError:
    return docker.errors.APIError(message, response=SimpleNamespace(status_code=status,
                                                                    reason="", url=""),
                                  explanation=message)


class FakeContainer:
    """One container of the fake engine (the SDK's Container calls the orchestrator uses)."""

    def __init__(self, engine: "FakeEngine", name: str, image: str, labels: dict, env: dict):
        self.engine, self.name, self.id = engine, name, f"{next(_ids):064x}"
        self.image, self.labels, self.env = image, labels, env
        self.state = "created"

    @property
    def attrs(self) -> dict:
        return {"Id": self.id, "Name": "/" + self.name,
                "Config": {"Labels": self.labels, "Image": self.image,
                           "Env": [f"{k}={v}" for k, v in self.env.items()]},
                "HostConfig": {}, "State": {"Status": self.state}}

    def start(self) -> None:
        self.state = "running"

    def reload(self) -> None:
        pass

    def remove(self, force: bool = False) -> None:
        self.engine.remove(self)


class FakeEngine:
    """The containers API of one Docker engine, with Docker's naming and removal rules.

    ``gate``: when set to an Event, a removal marks the container ``removing`` and waits
    for it (the engine still removing it); ``removing`` is set once a removal is under way,
    ``second_remove`` when a removal was asked for a container already being removed.
    ``fail_removes``: that many removals fail with a 500 (an engine in trouble).
    ``fail_after_create``: create registers the container, then the call fails as a
    client timeout would (the engine made it; the caller never heard).
    """

    def __init__(self, name: str):
        self.name = name
        self.by_name: dict[str, FakeContainer] = {}
        self.lock = threading.Lock()
        self.gate: threading.Event | None = None
        self.removing, self.second_remove = threading.Event(), threading.Event()
        self.fail_removes = 0
        self.fail_after_create = False
        self.creates = 0
        self.containers = self  # client.containers.* and client.images.* land here
        self.images = SimpleNamespace(get=lambda ref: object(), list=lambda: [])

    def ping(self) -> bool:
        return True

    def create(self, image: str, name: str, labels: dict, environment: dict, **_kw):
        with self.lock:
            if name in self.by_name:
                raise api_error(409, f'Conflict. The container name "/{name}" is already in '
                                     f'use by container "{self.by_name[name].id}"')
            c = self.by_name[name] = FakeContainer(self, name, image, labels, environment)
            self.creates += 1
        if self.fail_after_create:
            raise requests.exceptions.ReadTimeout("read timed out (600 s)")
        return c

    def get(self, name: str) -> FakeContainer:
        with self.lock:
            if name not in self.by_name:
                raise docker.errors.NotFound(f"No such container: {name}")
            return self.by_name[name]

    def list(self, all: bool = False, filters: dict | None = None) -> list[FakeContainer]:
        key, _, value = (filters or {}).get("label", "").partition("=")
        with self.lock:
            return [c for c in self.by_name.values()
                    if key in c.labels and (not value or c.labels[key] == value)]

    def remove(self, c: FakeContainer) -> None:
        with self.lock:
            if self.by_name.get(c.name) is not c:
                raise docker.errors.NotFound(f"No such container: {c.id}")
            if c.state == "removing":
                self.second_remove.set()
                raise api_error(409, f"removal of container {c.id} is already in progress")
            if self.fail_removes:
                self.fail_removes -= 1
                raise api_error(500, f"could not kill {c.id}: engine busy")
            c.state = "removing"
        self.removing.set()
        if self.gate is not None:
            self.gate.wait(10)
        with self.lock:
            del self.by_name[c.name]

    def service_containers(self, service: str) -> set[str]:
        return {c.labels["mec.instance"] for c in self.list(filters={"label":
                                                                     f"{LABEL_SERVICE}={service}"})}


class FakeEdge(EdgeManager):
    """The real Edge Manager; readiness is read from the engine (no HTTP here)."""

    def wait_ready(self, instance: str, timeout: float = 20.0, **_kw) -> ReadyResult:
        inst = self.get(instance)
        if inst is None or inst.state != "running":
            raise TimeoutError(f"instance {instance} on {self.name} did not answer")
        return ReadyResult(0.0, instance)


class Bare(EdgeOrchestrator):
    """The orchestrator's logic over fake engines (no network, no worker threads)."""

    def __init__(self, extra_env: dict | None = None):
        self.extra_env = dict(extra_env or {})
        self.topology = load(TOPO)
        self.graph = SiteGraph(self.topology.graph())
        self.policy, self.policy_hook = "neighbours", True
        self.nm = mock.Mock(name="nm")
        self.events = EventLog()
        self.predictor = MarkovPredictor()
        self.engines = {c.name: FakeEngine(c.name) for c in self.topology.cloudlets}
        self.edges = {n: FakeEdge(n, e, ip="10.0.0.1") for n, e in self.engines.items()}
        self.deployments: dict[str, Deployment] = {}
        self._background: queue.Queue = queue.Queue()
        self._urgent: queue.Queue = queue.Queue()

    def deploy_two(self) -> Deployment:
        """svc for u1 at s1: c1 primary, c2 backup, both running (as deploy leaves them)."""
        spec = ServiceSpec("svc", "busybox", replicas=2)
        dep = Deployment(spec, "u1", "proactive", "10.0.0.100", "reg/busybox", ReplicaSet("svc"),
                         manager=mock.Mock(name="service-manager"), site="s1", history=["s1"])
        for cloudlet, role in (("c1", PRIMARY), ("c2", BACKUP)):
            self.edges[cloudlet].deploy(dep.instance(cloudlet), dep.image_ref, service="svc")
            dep.replicas.add(cloudlet, self.site_of(cloudlet), dep.instance(cloudlet), role)
        self.deployments["svc"] = dep
        return dep

    def strays(self, dep: Deployment) -> dict[str, set[str]]:
        """Per engine, its containers of DEP's service that the replica set does not hold."""
        held = {r.cloudlet: {r.instance} for r in dep.replicas.all()}
        return {c: e.service_containers(dep.name) - held.get(c, set())
                for c, e in self.engines.items()
                if e.service_containers(dep.name) - held.get(c, set())}

    def missing(self, dep: Deployment) -> list[str]:
        """Replicas whose container the engine does not hold."""
        return [r.instance for r in dep.replicas.all()
                if r.instance not in self.engines[r.cloudlet].service_containers(dep.name)]


def relocate_errors(orch: Bare) -> list[str]:
    return [e["error"] for e in orch.events.events("proactive.relocate.end") if e.get("error")]


def test_the_orchestrators_extra_env_reaches_every_instance_over_the_service_files():
    """EdgeOrchestrator(extra_env=...): e.g. MEC_PLATFORM, where the ETSI platform answers."""
    orch = Bare(extra_env={"MEC_PLATFORM": "http://10.0.3.1:8282", "A": "run"})
    dep = orch.deploy_two()
    dep.service = dataclasses.replace(dep.service, env={"A": "file", "B": "file"})
    orch._run(dep, "c3", None, None)
    env = orch.engines["c3"].by_name[container_name(dep.instance("c3"))].env
    assert env["MEC_PLATFORM"] == "http://10.0.3.1:8282"
    assert (env["A"], env["B"], env["MEC_INSTANCE"]) == ("run", "file", dep.instance("c3"))


def test_a_replica_dropped_as_down_is_removed_and_the_relocation_starts_it_afresh():
    """The real run: c2 reported down (it still runs), dropped, then placed on c2 again."""
    orch = Bare()
    dep = orch.deploy_two()
    orch._on_down("svc", "c2")
    assert "c2" not in dep.replicas
    assert orch.strays(dep) == {}  # dropped from the set: its container is gone too
    assert orch._background.get_nowait() == ("relocate", "svc", "s1")
    orch._relocate("svc", "s1")
    assert relocate_errors(orch) == []  # no 409 Conflict on svc-c2
    assert dep.replicas.roles() == {"c1": "primary", "c2": "backup"}
    assert orch.strays(dep) == {} and orch.missing(dep) == []


def test_a_failover_removal_racing_the_relocation_is_waited_for():
    """The failover is still removing c2's container when the relocation wants c2 again:
    the relocation waits until it is gone, then starts a new one; nothing is left over."""
    orch = Bare()
    dep = orch.deploy_two()
    engine = orch.engines["c2"]
    engine.gate = threading.Event()
    failover = threading.Thread(target=orch._on_down, args=("svc", "c2"))
    failover.start()
    try:
        assert engine.removing.wait(2), "the failover never removed the dropped replica"
        relocation = threading.Thread(target=orch._relocate, args=("svc", "s1"))
        relocation.start()
        time.sleep(0.2)  # give the relocation every chance to create while c2 is removing
        assert engine.creates == 1  # only deploy's: nothing started over a removing container
    finally:
        engine.gate.set()
    failover.join(5)
    relocation.join(5)
    assert relocate_errors(orch) == []
    assert dep.replicas.roles() == {"c1": "primary", "c2": "backup"}
    assert orch.strays(dep) == {} and orch.missing(dep) == []


def test_a_leftover_whose_removal_failed_is_removed_before_a_start_and_recorded():
    orch = Bare()
    dep = orch.deploy_two()
    orch.engines["c2"].fail_removes = 1  # the failover's removal fails (engine busy)
    orch._on_down("svc", "c2")
    left = orch.events.last("replica.leftover")
    assert left["cloudlet"] == "c2" and "engine busy" in left["error"]
    assert dep.leftovers == {"c2"}  # known: cleared at the next start there or at undeploy
    orch._relocate("svc", "s1")
    assert relocate_errors(orch) == []
    end = orch.events.last("proactive.relocate.end")
    assert end["leftovers"] == {"c2": "removed"}
    removed = orch.events.last("replica.leftover")
    assert (removed["cloudlet"], removed["action"]) == ("c2", "removed")
    assert dep.leftovers == set()
    assert orch.strays(dep) == {} and orch.missing(dep) == []


def test_a_relocation_whose_start_failed_half_way_leaves_no_container():
    """The engine created svc-c3 but the call failed (a client timeout): the relocation
    fails, reports why, and svc-c3 does not stay on c3 outside the replica set."""
    orch = Bare()
    dep = orch.deploy_two()
    orch.engines["c3"].fail_after_create = True
    dep.site = "s3"
    dep.history.append("s3")
    orch._relocate("svc", "s3")  # c3 wanted: it fails half-way
    (error,) = relocate_errors(orch)
    assert "ReadTimeout" in error
    assert "c3" not in dep.replicas
    assert orch.strays(dep) == {} and orch.missing(dep) == []


def test_an_undeploy_during_a_relocation_leaves_no_container():
    orch = Bare()
    dep = orch.deploy_two()
    dep.site = "s3"
    dep.history.append("s3")
    started, release = threading.Event(), threading.Event()
    real_deploy = orch.edges["c3"].deploy

    def slow_deploy(*args, **kw):
        started.set()
        release.wait(5)
        return real_deploy(*args, **kw)

    orch.edges["c3"].deploy = slow_deploy
    relocation = threading.Thread(target=orch._relocate, args=("svc", "s3"))
    relocation.start()
    assert started.wait(2)
    orch.undeploy("svc")
    release.set()
    relocation.join(5)
    assert all(not e.service_containers("svc") for e in orch.engines.values()), \
        {c: e.service_containers("svc") for c, e in orch.engines.items()}


def test_edge_manager_remove_returns_only_once_the_container_is_gone():
    engine = FakeEngine("c1")
    em = FakeEdge("c1", engine, ip="10.0.0.1")
    em.deploy("svc-c1", "reg/busybox", service="svc")
    engine.gate = threading.Event()
    first = threading.Thread(target=em.remove, args=("svc-c1",))
    first.start()
    assert engine.removing.wait(2)
    done = threading.Event()
    second = threading.Thread(target=lambda: (em.remove("svc-c1"), done.set()))
    second.start()
    assert engine.second_remove.wait(2)  # Docker: 409 "removal already in progress"
    assert not done.wait(0.2)  # ... so the second call waits: the name is still taken
    engine.gate.set()
    assert done.wait(5)
    first.join(5)
    assert em.get("svc-c1") is None
    em.remove("svc-c1")  # gone: no error
    with pytest.raises(docker.errors.NotFound):
        engine.get(container_name("svc-c1"))
