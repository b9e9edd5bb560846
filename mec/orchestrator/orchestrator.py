"""The Edge Orchestrator (paper Sec. IV, Fig. 3) with its Migration and Replica Controller.

It ties together the Scheduler (`mec.orchestrator.scheduler`), the Network Manager (the SDN
controller, through its REST client), one Edge Manager per cloudlet
(`mec.edge.manager`) and one Service Manager per service
(`mec.service.manager`), and carries out the two strategies the paper compares:

* **proactive** replication (`mec.orchestrator.proactive`): replicas run at the
  user's site and where the user may go next (scheduler policy); the Network
  Manager is given a site -> replica policy so it re-steers the user's flows
  the moment it sees the user at a new access point; the orchestrator then
  promotes that replica to primary, picks a new backup and relocates the
  remaining replicas;
* **reactive** migration (`mec.orchestrator.reactive`): one instance; when the
  user moves, a new instance is created at the new site (image already cached,
  pulled from the cloud registry, or transferred from the previous edge),
  launched, checked, the flows are switched to it and the old instance is
  removed; every phase is timed (`EventLog.span`);
* **failover** (`mec.orchestrator.failover`) when a replica stops answering.

The class is made of the three handlers (mixins) and this module holds what
they share: the Edge Managers (``edges``), the Network Manager client
(``nm``), the event log (``events``), the scheduler state (``policy``,
``graph``, ``predictor``, ``statuses()``), deploying and undeploying
(`mec.orchestrator.deployment` is the bookkeeping), the Edge Managers'
status, and the events coming in. Location events come from the Network
Manager's event log, polled by a watcher thread; failures from the Service
Manager's health checks. Three worker threads handle them, each one job at a
time, so that nothing urgent waits behind an image pull: one for location events
(promotion, migration), one for failures, one for background work (relocating
secondaries, retiring a migrated-from instance); with the watcher that makes
four threads. Every decision on a deployment (its user's site and history,
which replica to reuse or retire, role changes) is taken under that
deployment's lock, and a replica a decision relies on is pinned until it is
done, so racing events can neither break the one-primary invariant nor retire
the replica a migration switches to. Each location event gets a
`mec.orchestrator.deployment.MoveRecord` saying how its handling ended (``ok``,
or ``failed`` with its cause); `EdgeOrchestrator.wait_for_site` raises
`OrchestrationError` for a failed one. A failing step is reported with its
cause, the previous primary keeps serving and the half-made instance is removed.

A scenario uses it in a few lines::

    with Testbed(load("topologies/paper.yaml")) as tb, EdgeOrchestrator(tb) as orch:
        orch.deploy(ServiceSpec("svc", "busybox", replicas=3), ue="u1", strategy="proactive")
        tb.network.move("u1", "s2")
        orch.wait_idle()
"""

from __future__ import annotations

import logging
import queue
import shutil
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Optional

from mec.core import config, servicefile
from mec.core.events import EventLog
from mec.core.servicefile import ServiceDef
from mec.edge.images import registry_ref
from mec.edge.manager import DATA_MOUNT, EdgeManager
from mec.orchestrator import scheduler
from mec.orchestrator.deployment import (FAILED, HANDLED, IMAGE_SOURCES, PENDING, STRATEGIES,
                                         Deployment, MoveRecord, OrchestrationError,
                                         one_replica)
from mec.orchestrator.failover import FailoverHandling
from mec.orchestrator.proactive import ProactiveHandling
from mec.orchestrator.reactive import ReactiveHandling
from mec.orchestrator.replicas import PRIMARY, SECONDARY, ReplicaSet
from mec.service.datasync import (DataSync, Replica as SyncReplica, data_dir, data_volume,
                                  service_data_dir)
from mec.service.manager import HealthPolicy, ServiceManager

log = logging.getLogger(__name__)

class EdgeOrchestrator(ProactiveHandling, ReactiveHandling, FailoverHandling):
    """Runs services on a `mec.testbed.Testbed` with the proactive or reactive strategy."""

    #: Called with an instance's name before an instance that served the user is removed
    #: (reactive retire, proactive relocation); it blocks until the instance may go,
    #: bounded by itself (the ETSI MEC platform waits there for the application's own
    #: context transfer). None: remove at once.
    release_guard: Optional[Callable[[str], None]] = None

    def __init__(self, testbed: Any, events: Optional[EventLog] = None,
                 policy: str = "neighbours", policy_hook: bool = True,
                 health: HealthPolicy = HealthPolicy(), sync_period_s: float = 1.0,
                 work_dir: Optional[Path] = None, poll_s: float = 0.02,
                 compress_level: int = 1, extra_env: Optional[dict[str, str]] = None):
        if policy not in scheduler.POLICIES:
            raise ValueError(f"unknown placement policy {policy!r} (known: "
                             f"{', '.join(sorted(scheduler.POLICIES))})")
        self.testbed = testbed
        self.net = testbed.network
        self.nm = testbed.nm
        self.topology = testbed.topology
        self.events = events or EventLog()
        self.policy = policy
        self.policy_hook = policy_hook
        self.health = health
        self.sync_period_s = sync_period_s
        #: gzip level of image archives sent edge to edge (1: fastest end to end, measured)
        self.compress_level = compress_level
        #: added to every instance's environment (e.g. MEC_PLATFORM: where the ETSI MEC
        #: platform answers): over the service file's env, under the state path's
        self.extra_env: dict[str, str] = dict(extra_env or {})
        self.graph = scheduler.SiteGraph(self.topology.graph())
        self.predictor = scheduler.MarkovPredictor()
        self.edges: dict[str, EdgeManager] = {
            c.name: EdgeManager.for_cloudlet(c, self.net.engine(c.name))
            for c in self.topology.cloudlets}
        self.deployments: dict[str, Deployment] = {}
        self._vips = 0
        self._tmp = tempfile.TemporaryDirectory(prefix="mec-orch-", dir=work_dir)
        self.work_dir = Path(self._tmp.name)
        # Three workers, so that nothing urgent waits behind an image pull:
        self._jobs: queue.Queue = queue.Queue()  # location events (promotion, migration)
        self._urgent: queue.Queue = queue.Queue()  # failures
        self._background: queue.Queue = queue.Queue()  # relocation of secondaries
        self._stop = threading.Event()
        #: jobs waiting for their time (`_after`): a drain holds no worker
        self._timers: set[threading.Timer] = set()
        self._timers_lock = threading.Lock()
        self._mono_minus_wall = time.monotonic() - time.time()
        self._nm_seq = max([e["seq"] for e in self.nm.events()] or [0])
        #: a restarted Network Manager numbers its events from 1 again (see _watch)
        self._nm_generation = getattr(testbed, "controller_restarts", 0)
        self._poll_s = poll_s
        self._threads = [
            threading.Thread(target=self._work, args=(self._jobs,), name="orch-worker", daemon=True),
            threading.Thread(target=self._work, args=(self._urgent,), name="orch-failover",
                             daemon=True),
            threading.Thread(target=self._work, args=(self._background,), name="orch-relocate",
                             daemon=True),
            threading.Thread(target=self._watch, name="orch-watch", daemon=True)]
        for t in self._threads:
            t.start()

    # ================================================================== status
    def statuses(self, exclude: set[str] = frozenset()) -> list[scheduler.CloudletStatus]:
        """What every Edge Manager reports, in the scheduler's terms."""
        out = []
        for name, em in self.edges.items():
            st = em.status()
            out.append(scheduler.CloudletStatus(
                name=name, site=self.topology.site_of_cloudlet(name),
                free_cpus=st.cpus_free, free_memory_mb=st.memory_free_mb,
                cached_images=frozenset(st.images), up=st.up and name not in exclude))
        return out

    def site_of(self, cloudlet: str) -> str:
        return self.topology.site_of_cloudlet(cloudlet)

    def _order_from(self, cloudlet: str, among: list[str]) -> list[str]:
        """AMONG sorted by path delay from CLOUDLET's site (nearest first, then by name)."""
        site = self.site_of(cloudlet)
        return sorted(among, key=lambda c: (self.graph.delay_ms(site, self.site_of(c)), c))

    # ================================================================== deploy
    def deploy(self, spec: scheduler.ServiceSpec, ue: str, strategy: str = "proactive",
               image_source: str = "registry", data: bool = False,
               port: int = config.SERVICE_PORT,
               service: Optional[ServiceDef] = None) -> Deployment:
        """Deploy SPEC for UE with STRATEGY; returns once the user is steered to the primary.

        Proactive: replicas per the scheduler's placement, images pulled in
        advance, the Network Manager given the site -> replica policy.
        Reactive: one instance at the user's site; IMAGE_SOURCE says how the
        next instance will get its image: ``cached`` (pulled on every cloudlet
        now), ``registry`` (removed from the other cloudlets now, pulled on a
        move) or ``edge`` (removed now, transferred from the old edge on a move).
        PORT: the TCP port of the service (its virtual IP's and its instances'; the
        instances use the cloudlet's network, so two services sharing a cloudlet
        need two ports).
        SERVICE: the service file (`mec.core.servicefile.ServiceDef`: port, protocol,
        command, environment, health check, state path); default: the built-in
        service of SPEC's image on PORT. A service with ``data`` keeps its state in
        a volume (as DATA does for the built-in images).
        """
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {strategy!r} (use {' or '.join(STRATEGIES)})")
        if image_source not in IMAGE_SOURCES:
            raise ValueError(f"unknown image source {image_source!r} "
                             f"(use one of {', '.join(IMAGE_SOURCES)})")
        if spec.name in self.deployments:
            raise ValueError(f"service {spec.name} is already deployed")
        svc = service or replace(servicefile.for_image(spec.image), port=port)
        port, data = svc.port, data or svc.data is not None
        self.topology.ue(ue)
        site = self.net.ue_site[ue]
        ref = registry_ref(spec.image, self.net.registry_addr)
        self._vips += 1  # never reuse a virtual IP, even after an undeploy
        vip = self.topology.vip(self._vips)
        replicas = ReplicaSet(spec.name)
        manager = ServiceManager(
            spec.name, port, replicas, address_of=lambda c: self.edges[c].ip,
            probe_netns=self.net.host(self.topology.cloud.name).netns_path,
            on_down=lambda c, s=spec.name: self._urgent.put(("down", s, c)),
            events=self.events, policy=self.health, check=svc.health,
            names_instance=svc.names_instance)
        dep = Deployment(spec, ue, strategy, vip, ref, replicas, manager, image_source, data,
                         site=site, history=[site], port=port, service=svc)
        wanted = spec if strategy == "proactive" else one_replica(spec)
        with self.events.span("deploy", service=spec.name, ue=ue, strategy=strategy,
                              site=site, image=spec.image) as extra:
            placement = scheduler.place(self.policy, self.graph, self.statuses(), wanted, site,
                                        dep.history, predictor=self.predictor)
            extra["placement"] = list(placement.replicas)
            leftovers: dict[str, str] = {}
            try:
                self._start_replicas(dep, placement.replicas, leftovers)
                for cloudlet in placement.replicas:
                    replicas.add(cloudlet, self.site_of(cloudlet), dep.instance(cloudlet),
                                 placement.role_of(cloudlet) or SECONDARY)
                replicas.check()
                if strategy == "reactive":
                    self._prepare_image_source(dep, placement.primary)
                self.nm.add_service(spec.name, vip, port, protocol=svc.transport)
                self.nm.set_primary(spec.name, placement.primary, ue=ue)
                if strategy == "proactive" and self.policy_hook:
                    self.nm.set_policy(spec.name, self._policy_map(dep))
            except BaseException:
                for cloudlet in placement.replicas:
                    self._remove_instance(dep, cloudlet, "deploy failed")
                if spec.name in {s["name"] for s in self.nm.services()}:
                    self.nm.remove_service(spec.name)
                raise
        self.deployments[spec.name] = dep
        if data:
            manager.start_sync(lambda: self._make_sync(dep))
        manager.start()
        self.events.emit("roles", service=spec.name, roles=replicas.roles())
        return dep

    def _start_replicas(self, dep: Deployment, cloudlets: tuple[str, ...] | list[str],
                        leftovers: dict[str, str]) -> None:
        """Pull (if needed), launch and wait for instances on CLOUDLETS, in parallel.

        CLOUDLETS hold no replica of DEP (decided under its lock). A container
        still holding an instance's name is removed first (`_clear_leftover`,
        noted in LEFTOVERS). If any start fails, every instance of CLOUDLETS is
        removed (a create may have made a container even when the call failed)
        and the error raised: a failed start leaves no container behind.
        """
        def one(cloudlet: str) -> None:
            em = self.edges[cloudlet]
            if not em.has_image(dep.image_ref):
                with self.events.span("replica.pull", service=dep.name, cloudlet=cloudlet) as x:
                    pull = em.pull(dep.image_ref)
                    x.update(bytes=pull.declared_bytes, declared_bytes=pull.declared_bytes,
                             wire_bytes=pull.wire_bytes)
            volumes, env = self._data_volume(dep, cloudlet)
            instance = dep.instance(cloudlet)
            if self._clear_leftover(dep, cloudlet):
                leftovers[cloudlet] = "removed"
            with self.events.span("replica.launch", service=dep.name, cloudlet=cloudlet):
                self._run(dep, cloudlet, env, volumes)
                self._ready(dep, cloudlet)

        try:
            with ThreadPoolExecutor(max_workers=max(1, len(cloudlets))) as pool:
                for future in [pool.submit(one, c) for c in cloudlets]:
                    future.result()
        except BaseException:  # every start has ended (the pool waits): undo them all
            for cloudlet in cloudlets:
                self._remove_instance(dep, cloudlet, "start failed")
            raise

    # ================================================================== containers
    def _release(self, dep: Deployment, cloudlet: str) -> None:
        """Let the release guard hold DEP's instance on CLOUDLET before it is removed
        (outside the deployment's lock: the guard may wait), timed as ``release.wait``."""
        if self.release_guard is None:
            return
        with self.events.span("release.wait", service=dep.name, cloudlet=cloudlet,
                              instance=dep.instance(cloudlet)):
            self.release_guard(dep.instance(cloudlet))

    def _remove_instance(self, dep: Deployment, cloudlet: str, reason: str) -> bool:
        """Remove DEP's container on CLOUDLET; True once the engine no longer has it.

        Called under DEP's lock together with the replica's removal from the set
        (or for an instance that never joined it). Never raises: a removal that
        fails (the engine is down or in trouble) is a ``replica.leftover`` event
        with its error, and the cloudlet stays in ``dep.leftovers`` until the
        next start there (`_clear_leftover`) or the undeploy removes it.
        """
        instance = dep.instance(cloudlet)
        try:
            self.edges[cloudlet].remove(instance)
        except Exception as exc:  # noqa: BLE001 - a leftover is recorded, never hidden
            with dep.lock:
                dep.leftovers.add(cloudlet)
            log.warning("%s: container %s on %s not removed (%s): %s", dep.name, instance,
                        cloudlet, reason, exc)
            self.events.emit("replica.leftover", service=dep.name, cloudlet=cloudlet,
                             instance=instance, reason=reason, action="kept",
                             error=f"{type(exc).__name__}: {exc}")
            return False
        with dep.lock:
            dep.leftovers.discard(cloudlet)
        return True

    def _clear_leftover(self, dep: Deployment, cloudlet: str) -> bool:
        """Before DEP's instance starts on CLOUDLET: remove a container still holding its name.

        Such a container is in no replica set (a removal that failed, a start that
        failed half-way, a run that crashed): it is never reused (it was dropped as
        not answering, or never measured ready) but removed, waiting until it is
        gone, and recorded (``replica.leftover`` with ``action="removed"``).
        Returns whether there was one; raises when it cannot be removed (the start
        would fail on its name).
        """
        em, instance = self.edges[cloudlet], dep.instance(cloudlet)
        found = em.get(instance)
        if found is not None:
            em.remove(instance)
            self.events.emit("replica.leftover", service=dep.name, cloudlet=cloudlet,
                             instance=instance, state=found.state, action="removed")
        with dep.lock:
            dep.leftovers.discard(cloudlet)
        return found is not None

    def _run(self, dep: Deployment, cloudlet: str, env: Optional[dict],
             volumes: Optional[dict]) -> None:
        """Start DEP's instance on CLOUDLET as its service file says (command, environment,
        state volume), with the spec's resources and the orchestrator's ``extra_env``."""
        self.edges[cloudlet].deploy_service(
            dep.instance(cloudlet), dep.image_ref, replace(dep.service, name=dep.name,
                                                           port=dep.port),
            env={**self.extra_env, **(env or {})}, volumes=volumes, cpus=dep.spec.cpus or None,
            memory_mb=dep.spec.memory_mb or None)

    def _ready(self, dep: Deployment, cloudlet: str) -> None:
        """Wait until DEP's instance on CLOUDLET answers the service's health check."""
        self.edges[cloudlet].wait_service(dep.instance(cloudlet), dep.service, timeout=60)

    def _data_volume(self, dep: Deployment, cloudlet: str) -> tuple[Optional[dict], Optional[dict]]:
        if not dep.data:
            return None, None
        directory = data_dir(dep.name, cloudlet)
        directory.mkdir(parents=True, exist_ok=True)
        return data_volume(directory, dep.service.data or DATA_MOUNT)

    def _make_sync(self, dep: Deployment) -> Optional[DataSync]:
        primary = dep.replicas.primary
        others = [r for r in dep.replicas.all() if r.role != PRIMARY and r.healthy]
        if primary is None or not others:
            return None
        return DataSync(dep.name, self._sync_replica(dep, primary.cloudlet),
                        [self._sync_replica(dep, r.cloudlet) for r in others],
                        period_s=self.sync_period_s, events=self.events)

    def _sync_replica(self, dep: Deployment, cloudlet: str) -> SyncReplica:
        """Where DEP's state lives on CLOUDLET (namespace, address, host directory)."""
        return SyncReplica(cloudlet, self.net.host(cloudlet).netns_path, self.edges[cloudlet].ip,
                           data_dir(dep.name, cloudlet))


    # ================================================================== events in
    def _watch(self) -> None:
        """Poll the Network Manager's event log; queue location events of our users."""
        while not self._stop.wait(self._poll_s):
            generation = getattr(self.testbed, "controller_restarts", 0)
            if generation != self._nm_generation:  # a new controller: read its log from 1
                self._nm_generation, self._nm_seq = generation, 0
            try:
                for ev in self.nm.events(since=self._nm_seq):
                    self._nm_seq = max(self._nm_seq, ev["seq"])
                    if ev.get("type") == "location" and ev.get("kind") == "ue":
                        self._jobs.put(("location", ev["host"], ev["new"]["switch"], ev))
            except Exception as exc:  # noqa: BLE001 - the controller may be restarting
                log.debug("event poll failed: %s", exc)

    def _work(self, jobs: queue.Queue) -> None:
        while True:
            job = jobs.get()
            try:
                if job is None:
                    return
                kind, *args = job
                if kind == "location":
                    self._on_location(*args)
                elif kind == "down":
                    self._on_down(*args)
                elif kind == "relocate":
                    self._relocate(*args)
                elif kind == "retire":
                    self._retire(*args)
            except Exception as exc:  # noqa: BLE001 - reported; the worker goes on
                log.exception("handling %s failed", job[0] if job else job)
                self.events.emit("error", job=str(job[0]), error=f"{type(exc).__name__}: {exc}")
            finally:
                jobs.task_done()

    def _after(self, delay_s: float, jobs: queue.Queue, job: tuple) -> None:
        """Queue JOB on JOBS in DELAY_S seconds, holding no worker meanwhile (a retire
        waiting for its connections to drain); `wait_idle` waits for it too."""
        def due() -> None:
            if not self._stop.is_set():
                jobs.put(job)  # queued before it stops counting as waiting: never idle between
            with self._timers_lock:
                self._timers.discard(timer)

        timer = threading.Timer(delay_s, due)
        timer.daemon = True
        with self._timers_lock:
            self._timers.add(timer)
        timer.start()

    def wait_idle(self, timeout: float = 300.0) -> None:
        """Wait until every queued event was handled (polls once more first)."""
        time.sleep(self._poll_s * 3)  # let the watcher fetch what is pending
        deadline = time.monotonic() + timeout
        while (self._jobs.unfinished_tasks or self._urgent.unfinished_tasks
               or self._background.unfinished_tasks or self._timers):
            if time.monotonic() > deadline:
                raise TimeoutError(f"orchestrator still busy after {timeout:g} s")
            time.sleep(0.02)

    def wait_for_site(self, ue: str, site: str, timeout: float = 30.0) -> None:
        """Wait until the orchestrator has handled UE's arrival at SITE (then until idle).

        Returns when every deployment of UE handled the move to SITE; raises
        `OrchestrationError` (naming the cause) when the handling of any failed,
        and `TimeoutError` when no location event for SITE came within TIMEOUT
        (or its handling had not ended by then: the message says which).
        """
        deadline = time.monotonic() + timeout
        while True:
            states = [self._arrival(d, site) for d in list(self.deployments.values())
                      if d.ue == ue]
            if all(s != PENDING and s is not None for s, _ in states):
                break
            if time.monotonic() > deadline:
                if any(s is None for s, _ in states):
                    raise TimeoutError(f"no location event for {ue} at {site} within "
                                       f"{timeout:g} s (does the UE send traffic after its "
                                       "move?)")
                raise TimeoutError(f"the move of {ue} to {site} was still being handled "
                                   f"after {timeout:g} s")
            time.sleep(0.01)
        causes = [cause for s, cause in states if s == FAILED]
        if causes:
            raise OrchestrationError("; ".join(causes))
        self.wait_idle(max(1.0, deadline - time.monotonic()))

    @staticmethod
    def _arrival(dep: Deployment, site: str) -> tuple[Optional[str], str]:
        """(outcome, cause) of DEP's handling of its user at SITE; None: not seen there."""
        with dep.lock:
            if dep.site != site:
                return None, ""
            last = dep.moves[-1] if dep.moves else None
            if last is None or last.site != site:
                return HANDLED, ""  # deployed there, no move since
            return last.outcome, last.cause

    def _wall_to_mono(self, wall: Optional[float]) -> Optional[float]:
        return None if wall is None else wall + self._mono_minus_wall

    # ================================================================== moves
    def _on_location(self, ue: str, site: str, nm_event: dict) -> None:
        for dep in [d for d in list(self.deployments.values()) if d.ue == ue]:
            with dep.lock:
                if site == dep.site:
                    continue
                old_site, dep.site = dep.site, site
                dep.history.append(site)
                move = MoveRecord(old_site, site)
                dep.moves.append(move)
            self.predictor.observe(old_site, site)
            t_seen = self._wall_to_mono(nm_event.get("ts_packet_in"))
            self.events.emit("location", service=dep.name, ue=ue, from_site=old_site,
                             to_site=site, t_packet_in=t_seen,
                             resteered=nm_event.get("resteered", {}).get(dep.name),
                             install_ms=nm_event.get("install_ms"))
            try:
                if dep.strategy == "proactive":
                    self._proactive_handover(dep, site, nm_event)
                else:
                    self._reactive_migration(dep, site, t_seen)
            except Exception as exc:  # noqa: BLE001 - recorded with its cause, reported
                log.warning("move of %s to %s (%s): %s", ue, site, dep.name, exc)
                self._end_move(dep, move, FAILED, f"{type(exc).__name__}: {exc}")
            else:
                self._end_move(dep, move, HANDLED)
        if nm_event.get("install_ms") is None:
            self._installed_later(ue, site, nm_event)

    def _end_move(self, dep: Deployment, move: MoveRecord, outcome: str, cause: str = "") -> None:
        with dep.lock:
            move.outcome, move.cause, move.serving = outcome, cause, dep.serving
        self.events.emit("location.handled", service=dep.name, ue=dep.ue,
                         from_site=move.from_site, to_site=move.site, outcome=outcome,
                         cause=cause, serving=move.serving)

    def _installed_later(self, ue: str, site: str, nm_event: dict, wait_s: float = 0.5) -> None:
        """The Network Manager's rule install time of a location event whose Barrier had not
        come back when it was read: fetched again (up to WAIT_S), emitted as
        ``location.installed``; never a placeholder (missing if it does not come)."""
        seq = nm_event.get("seq")
        if seq is None:
            return
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            try:
                again = next((e for e in self.nm.events(since=seq - 1) if e["seq"] == seq), None)
            except Exception as exc:  # noqa: BLE001 - the controller may be restarting
                log.debug("event re-read failed: %s", exc)
                return
            if again is None:
                return
            if again.get("install_ms") is not None:
                self.events.emit("location.installed", ue=ue, to_site=site,
                                 install_ms=again["install_ms"],
                                 t_installed=self._wall_to_mono(again.get("ts_installed")))
                return
            time.sleep(0.02)


    # ================================================================== lifecycle
    def undeploy(self, service: str) -> None:
        dep = self.deployments.pop(service)
        with dep.lock:  # a start still under way sees it and removes what it made
            dep.closed = True
            cloudlets = sorted({r.cloudlet for r in dep.replicas.all()} | dep.leftovers)
        dep.manager.stop()
        for cloudlet in cloudlets:  # a dead cloudlet's is reported as a leftover
            self._remove_instance(dep, cloudlet, "undeploy")
        try:
            self.nm.remove_service(service)
        except Exception as exc:  # noqa: BLE001 - the controller may be gone already
            log.debug("remove service %s: %s", service, exc)
        if dep.data:
            shutil.rmtree(service_data_dir(service), ignore_errors=True)

    def stop(self) -> None:
        self._stop.set()
        with self._timers_lock:  # what still waits for its time is undeployed below
            for timer in self._timers:
                timer.cancel()
            self._timers.clear()
        for jobs in (self._jobs, self._urgent, self._background):
            jobs.put(None)
        for t in self._threads:
            t.join(timeout=10)
        for name in list(self.deployments):
            self.undeploy(name)
        self._tmp.cleanup()

    def __enter__(self) -> "EdgeOrchestrator":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
