"""The Edge Orchestrator on paper.yaml: proactive handover, reactive migration, failover."""

import time
from pathlib import Path

import pytest

from mec.measure import metrics
from mec.core.events import EventLog
from mec.edge.manager import container_name
from mec.orchestrator import EdgeOrchestrator, OrchestrationError
from mec.measure.probe import ProbeProcess
from mec.orchestrator.scheduler import ServiceSpec
from mec.testbed import Testbed
from topologies.loader import load

from replica_engines import assert_engines_hold_the_replica_set

pytestmark = pytest.mark.integration
TOPO = Path(__file__).resolve().parents[2] / "topologies" / "paper.yaml"


@pytest.fixture
def testbed():
    events = EventLog()
    tb = Testbed(load(TOPO), controller="os-ken", events=events)
    try:
        tb.start()
        yield tb
    finally:
        tb.stop()


def test_proactive_user_keeps_being_served_through_a_move(testbed, tmp_path):
    with EdgeOrchestrator(testbed, events=testbed.events) as orch:
        dep = orch.deploy(ServiceSpec("svc", "busybox", replicas=2), "u1", "proactive")
        assert dep.replicas.roles() == {"c1": "primary", "c2": "backup"}
        ue = testbed.network.hosts["u1"].node
        with ProbeProcess(ue, f"http://{dep.vip}:8080/", tmp_path / "probe.csv",
                          rate=200) as probe:
            time.sleep(1.0)  # a second of service before the move (a run length, not a measure)
            move = testbed.network.move("u1", "s2")
            orch.wait_for_site("u1", "s2")
            time.sleep(2.0)
            records = probe.stop()
        assert dep.replicas.primary.cloudlet == "c2"
        ok = [r for r in records if r.ok]
        assert len(ok) > 0.9 * len(records), metrics.status_counts(records)
        before = [r.replica for r in ok if r.t_send < move.t_request]
        after = [r for r in ok if r.t_send > move.t_attached + 0.3]
        assert set(before) == {"svc-c1"}
        assert after and {r.replica for r in after} == {"svc-c2"}
        # the user is never left without an answer for long (proactive: no migration)
        print("interruption", metrics.interruption_s(records), metrics.status_counts(records))
        assert metrics.interruption_s(records) < 1.5
        kinds = [e.kind for e in orch.events.events()]
        assert "proactive.promote.end" in kinds
        orch.wait_idle()
        assert_engines_hold_the_replica_set(orch, dep)


@pytest.mark.parametrize("source", ["cached", "registry", "edge"])
def test_reactive_migration_paths_time_every_phase(testbed, source):
    with EdgeOrchestrator(testbed, events=testbed.events) as orch:
        dep = orch.deploy(ServiceSpec("svc", "busybox"), "u1", "reactive", image_source=source)
        testbed.network.move("u1", "s2")
        orch.wait_for_site("u1", "s2")
        assert dep.replicas.roles() == {"c2": "primary"}
        ends = {e.kind: e for e in orch.events.events() if e.kind.endswith(".end")}
        for phase in ("migration.launch.end", "migration.ready.end", "migration.switch.end",
                      "migration.stop_old.end"):
            assert ends[phase]["duration_s"] >= 0, phase
        assert ends["migration.end"]["total_s"] > 0
        if source == "registry":
            pull = ends["migration.pull.end"]
            assert 0 < pull["bytes"] == pull["declared_bytes"] <= pull["wire_bytes"]
        if source == "edge":
            t = ends["migration.transfer_image.end"]
            assert 0 < t["archive_bytes"] <= t["wire_bytes"]  # the archive and the wire's cost
            assert t["export_s"] > 0 and t["transfer_s"] > 0 and t["load_s"] > 0
        body = testbed.network.hosts["u1"].node.cmd(["curl", "-s", "-m", "3",
                                                     f"http://{dep.vip}:8080/"])
        assert body.strip() == "svc-c2"
        assert_engines_hold_the_replica_set(orch, dep)


def test_killing_the_primarys_cloudlet_promotes_the_backup(testbed):
    with EdgeOrchestrator(testbed, events=testbed.events) as orch:
        dep = orch.deploy(ServiceSpec("svc", "busybox", replicas=2), "u1", "proactive")
        assert dep.replicas.backup.cloudlet == "c2"
        testbed.network.fail_cloudlet("c1")
        failover = orch.events.wait_for("failover.end", timeout=15)
        assert failover["failed"] == "c1" and failover["new"] == "c2"
        assert dep.replicas.primary.cloudlet == "c2"
        assert "c1" not in dep.replicas
        body = testbed.network.hosts["u1"].node.cmd(["curl", "-s", "-m", "3",
                                                     f"http://{dep.vip}:8080/"])
        assert body.strip() == "svc-c2"
        assert any(e.kind == "failover.end" for e in orch.events.events())
        # c1's engine is dead: its container could not be removed, and that is said
        left = orch.events.wait_for("replica.leftover", timeout=5)
        assert (left["cloudlet"], left["action"]) == ("c1", "kept") and left["error"]
        assert dep.leftovers == {"c1"}
        orch.wait_idle()
        assert_engines_hold_the_replica_set(orch, dep, skip=frozenset({"c1"}))


def test_a_replica_dropped_as_down_is_removed_and_started_again_afresh(testbed):
    """What a real run met: a replica stops answering while its container still exists
    (here: paused), the failover drops it, and the relocation that follows places a
    replica on that cloudlet again. The old container must go with the replica (before:
    the start failed with 409 Conflict on its name and the old one stayed, outside the set,
    holding the cloudlet's capacity and the service's port)."""
    with EdgeOrchestrator(testbed, events=testbed.events) as orch:
        dep = orch.deploy(ServiceSpec("svc", "busybox", replicas=2), "u1", "proactive")
        assert dep.replicas.roles() == {"c1": "primary", "c2": "backup"}
        hung = orch.edges["c2"].client.containers.get(container_name("svc-c2"))
        hung.pause()  # exists, answers nothing: the Service Manager reports it down
        removed = orch.events.wait_for("replica.removed", timeout=15)
        assert removed["cloudlet"] == "c2"
        relocated = orch.events.wait_for("proactive.relocate.end", timeout=60,
                                         after_seq=removed.seq)
        assert "error" not in relocated.fields, relocated["error"]
        assert relocated["start"] == ["c2"]
        orch.wait_idle()
        assert dep.replicas.roles() == {"c1": "primary", "c2": "backup"}
        fresh = orch.edges["c2"].client.containers.get(container_name("svc-c2"))
        assert fresh.id != hung.id and fresh.status == "running"
        assert not [e for e in orch.events.events("replica.leftover")]  # none was met
        assert_engines_hold_the_replica_set(orch, dep)


def test_a_failing_reactive_migration_leaves_the_old_primary_serving(testbed):
    with EdgeOrchestrator(testbed, events=testbed.events) as orch:
        dep = orch.deploy(ServiceSpec("svc", "busybox"), "u1", "reactive", image_source="cached")
        orch.edges["c2"].remove_image(dep.image_ref)  # the promised cache entry is gone
        testbed.network.move("u1", "s2")
        with pytest.raises(OrchestrationError, match="not cached on c2.*c1 keeps serving"):
            orch.wait_for_site("u1", "s2", timeout=30)  # a failed move never looks handled
        failed = orch.events.wait_for("migration.failed", timeout=30)
        assert "not cached on c2" in failed["error"] and "c1 keeps serving" in failed["note"]
        orch.wait_idle()
        assert dep.replicas.roles() == {"c1": "primary"}
        # what the orchestrator believes: the user is at s2, c1 serves, the move failed
        assert (dep.site, dep.serving, dep.moves[-1].outcome) == ("s2", "c1", "failed")
        assert orch.edges["c2"].instances() == []  # nothing half-made
        assert_engines_hold_the_replica_set(orch, dep)
        body = testbed.network.hosts["u1"].node.cmd(["curl", "-s", "-m", "3",
                                                     f"http://{dep.vip}:8080/"])
        assert body.strip() == "svc-c1"
