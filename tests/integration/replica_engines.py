"""What the cloudlets' engines really hold of a service, against the orchestrator's replica set.

Read through each cloudlet engine's own Docker SDK client by the service label the Edge
Manager puts on every container it starts (`mec.edge.manager.LABEL_SERVICE`), in any
state: a container outside the replica set is a leak (it holds the cloudlet's capacity,
the service's port and the instance's name), a replica without its container is a lie.
"""

from __future__ import annotations

from mec.edge.manager import LABEL_INSTANCE, LABEL_SERVICE


def service_containers(orch, service: str, skip: frozenset = frozenset()) -> dict[str, set]:
    """Per cloudlet (but SKIP: e.g. a crashed one), the instance names of SERVICE's
    containers its engine holds."""
    out = {}
    for cloudlet, em in orch.edges.items():
        if cloudlet in skip:
            continue
        found = em.client.containers.list(all=True,
                                          filters={"label": f"{LABEL_SERVICE}={service}"})
        out[cloudlet] = {c.labels[LABEL_INSTANCE] for c in found}
    return out


def replica_set_on_engines(orch, dep, skip: frozenset = frozenset()) -> dict[str, set]:
    """Per cloudlet (but SKIP), the instance names DEP's replica set says run there."""
    wanted: dict[str, set] = {c: set() for c in orch.edges if c not in skip}
    for r in dep.replicas.all():
        if r.cloudlet not in skip:
            wanted[r.cloudlet].add(r.instance)
    return wanted


def assert_engines_hold_the_replica_set(orch, dep, skip: frozenset = frozenset()) -> None:
    """Every engine's containers of DEP's service are exactly its replicas there."""
    with dep.lock:  # no decision moves the set while it is compared
        held = service_containers(orch, dep.name, skip)
        wanted = replica_set_on_engines(orch, dep, skip)
    assert held == wanted, f"{dep.name}: engines hold {held}, replica set {wanted}"
