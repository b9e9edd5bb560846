"""The orchestrator's per-move bookkeeping without a network: how a location event's handling
ends (MoveRecord), wait_for_site's contract (return / OrchestrationError / TimeoutError), and a
retire that must not remove a replica a migration has pinned."""

from __future__ import annotations

import queue
import threading
from unittest import mock

import pytest

from mec.core.events import EventLog
from mec.orchestrator import EdgeOrchestrator, OrchestrationError
from mec.orchestrator.deployment import FAILED, HANDLED, PENDING, Deployment, MoveRecord
from mec.orchestrator.replicas import PRIMARY, SECONDARY, ReplicaSet
from mec.orchestrator.scheduler import MarkovPredictor, ServiceSpec


class Bare(EdgeOrchestrator):
    """The orchestrator's logic with nothing behind it (no testbed, no threads)."""

    def __init__(self, *deps: Deployment):
        self.deployments = {d.name: d for d in deps}
        self.events = EventLog()
        self.predictor = MarkovPredictor()
        self.edges = {c: mock.Mock(name=c) for c in ("c1", "c2", "c3")}
        self.idle_waits = 0
        self._mono_minus_wall = 0.0

    def wait_idle(self, timeout: float = 300.0) -> None:
        self.idle_waits += 1


def deployment(strategy="reactive", site="s1", name="svc", ue="u1") -> Deployment:
    replicas = ReplicaSet(name)
    replicas.add("c1", "s1", f"{name}-c1", PRIMARY)
    return Deployment(ServiceSpec(name, "busybox"), ue, strategy, "10.0.0.100", "ref",
                      replicas, manager=None, site=site, history=[site])


def test_wait_for_site_returns_after_a_handled_move():
    dep = deployment(site="s2")
    dep.moves.append(MoveRecord("s1", "s2", HANDLED, serving="c2"))
    orch = Bare(dep)
    orch.wait_for_site("u1", "s2", timeout=0.2)
    assert orch.idle_waits == 1


def test_wait_for_site_raises_the_cause_of_a_failed_move():
    dep = deployment(site="s2")
    dep.moves.append(MoveRecord("s1", "s2", FAILED, cause="image not cached on c2",
                                serving="c1"))
    with pytest.raises(OrchestrationError, match="image not cached on c2"):
        Bare(dep).wait_for_site("u1", "s2", timeout=0.2)


def test_wait_for_site_times_out_without_a_location_event_or_an_end():
    with pytest.raises(TimeoutError, match="no location event"):
        Bare(deployment(site="s1")).wait_for_site("u1", "s2", timeout=0.1)
    dep = deployment(site="s2")
    dep.moves.append(MoveRecord("s1", "s2", PENDING))
    with pytest.raises(TimeoutError, match="still being handled"):
        Bare(dep).wait_for_site("u1", "s2", timeout=0.1)


def test_a_failing_handler_is_recorded_with_its_cause_and_the_truth_about_who_serves():
    dep = deployment()
    orch = Bare(dep)

    def fail(*_args):
        raise OrchestrationError("reactive migration of svc to c2 failed: boom; c1 keeps serving")

    orch._reactive_migration = fail
    orch._on_location("u1", "s2", {"ts_packet_in": 1.0, "install_ms": 3.0})
    assert dep.site == "s2"  # where the user is
    assert dep.serving == "c1"  # ... and who still serves: no lie
    (move,) = dep.moves
    assert (move.outcome, move.serving) == (FAILED, "c1") and "boom" in move.cause
    handled = orch.events.last("location.handled")
    assert handled["outcome"] == "failed" and "boom" in handled["cause"]
    with pytest.raises(OrchestrationError, match="boom"):
        orch.wait_for_site("u1", "s2", timeout=0.2)
    orch._reactive_migration = lambda *_a: None
    orch._on_location("u1", "s1", {"ts_packet_in": 2.0, "install_ms": 3.0})
    assert dep.moves[-1].outcome == HANDLED and dep.history == ["s1", "s2", "s1"]


def test_a_retire_keeps_a_replica_a_migration_has_pinned():
    dep = deployment()
    dep.replicas.add("c2", "s2", "svc-c2", SECONDARY)
    orch = Bare(dep)
    dep.pinned.add("c2")  # a migration back to c2 decided to reuse it
    orch._retire("svc", "c2", 0.0, {"service": "svc"})
    assert "c2" in dep.replicas
    orch.edges["c2"].remove.assert_not_called()
    dep.pinned.clear()
    orch._retire("svc", "c2", 0.0, {"service": "svc"})
    assert "c2" not in dep.replicas
    orch.edges["c2"].remove.assert_called_once_with("svc-c2")


def test_decisions_take_the_deployments_lock():
    dep = deployment()
    orch = Bare(dep)
    orch._reactive_migration = lambda *_a: None
    done = threading.Event()
    with dep.lock:  # another decision on this deployment is under way
        t = threading.Thread(target=lambda: (orch._on_location("u1", "s2", {}), done.set()))
        t.start()
        assert not done.wait(0.2) and dep.site == "s1"
    assert done.wait(2) and dep.site == "s2"
    t.join()


def test_a_retire_waits_for_its_drain_without_holding_the_worker():
    dep = deployment()
    dep.replicas.add("c2", "s2", "svc-c2", SECONDARY)
    orch = Bare(dep)
    orch._stop, orch._timers, orch._timers_lock = threading.Event(), set(), threading.Lock()
    orch._background = queue.Queue()
    orch._retire("svc", "c2", 0.05, {"service": "svc"})  # returns at once: the worker is free
    assert "c2" in dep.replicas and orch.events.last("migration.drain.start")
    assert orch._timers  # wait_idle counts the retire still waiting for its time
    job = orch._background.get(timeout=5)  # queued again once the drain is over
    assert job[:4] == ("retire", "svc", "c2", 0.05) and not orch._timers
    orch._retire(*job[1:])
    assert "c2" not in dep.replicas
    orch.edges["c2"].remove.assert_called_once_with("svc-c2")
    assert orch.events.last("migration.drain.end")["duration_s"] >= 0.05
