"""The Edge Orchestrator (paper Sec. IV, Fig. 3) with its Migration and Replica Controller.

It ties together the Scheduler (`mec.scheduler`), the Network Manager (the SDN
controller, through its REST client), one Edge Manager per cloudlet
(`mec.edge_manager`) and one Service Manager per service
(`mec.service_manager`), and carries out the two strategies the paper compares:

* **proactive** replication: replicas run at the user's site and where the
  user may go next (scheduler policy); the Network Manager is given a
  site -> replica policy so it re-steers the user's flows the moment it sees
  the user at a new access point; the orchestrator then promotes that replica
  to primary, picks a new backup and relocates the remaining replicas;
* **reactive** migration: one instance; when the user moves, a new instance is
  created at the new site (image already cached, pulled from the cloud
  registry, or transferred from the previous edge), launched, checked, the
  flows are switched to it and the old instance is removed; every phase is
  timed (`EventLog.span`).

Location events come from the Network Manager's event log (polled); failures
from the Service Manager's health checks. Both are handled one at a time by a
single worker, under each deployment's replica lock, so racing events cannot
break the one-primary invariant. A failing step is reported with its cause,
the previous primary keeps serving and the half-made instance is removed.

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from mec import config, scheduler
from mec.datasync import (DataSync, Replica as SyncReplica, data_dir, data_volume,
                          service_data_dir)
from mec.edge_manager import EdgeManager, transfer_image
from mec.events import EventLog
from mec.images import registry_ref
from mec.replicas import BACKUP, PRIMARY, SECONDARY, ReplicaSet
from mec.service_manager import HealthPolicy, ServiceManager

log = logging.getLogger(__name__)

STRATEGIES = ("proactive", "reactive")
IMAGE_SOURCES = ("cached", "registry", "edge")


class OrchestrationError(RuntimeError):
    """A deployment or migration step failed; the message says which and why."""


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
    site: str = ""  # the user's current site as the orchestrator knows it
    history: list[str] = field(default_factory=list)
    #: Serialises decisions on this deployment (held briefly: never across a pull or launch).
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    @property
    def name(self) -> str:
        return self.spec.name


class EdgeOrchestrator:
    """Runs services on a `mec.testbed.Testbed` with the proactive or reactive strategy."""

    def __init__(self, testbed: Any, events: Optional[EventLog] = None,
                 policy: str = "neighbours", policy_hook: bool = True,
                 health: HealthPolicy = HealthPolicy(), sync_period_s: float = 1.0,
                 work_dir: Optional[Path] = None, poll_s: float = 0.02,
                 compress_level: int = 1):
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
        self._mono_minus_wall = time.monotonic() - time.time()
        self._nm_seq = max([e["seq"] for e in self.nm.events()] or [0])
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
               image_source: str = "registry", data: bool = False) -> Deployment:
        """Deploy SPEC for UE with STRATEGY; returns once the user is steered to the primary.

        Proactive: replicas per the scheduler's placement, images pulled in
        advance, the Network Manager given the site -> replica policy.
        Reactive: one instance at the user's site; IMAGE_SOURCE says how the
        next instance will get its image: ``cached`` (pulled on every cloudlet
        now), ``registry`` (removed from the other cloudlets now, pulled on a
        move) or ``edge`` (removed now, transferred from the old edge on a move).
        """
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {strategy!r} (use {' or '.join(STRATEGIES)})")
        if image_source not in IMAGE_SOURCES:
            raise ValueError(f"unknown image source {image_source!r} "
                             f"(use one of {', '.join(IMAGE_SOURCES)})")
        if spec.name in self.deployments:
            raise ValueError(f"service {spec.name} is already deployed")
        self.topology.ue(ue)
        site = self.net.ue_site[ue]
        ref = registry_ref(spec.image, self.net.registry_addr)
        self._vips += 1  # never reuse a virtual IP, even after an undeploy
        vip = self.topology.vip(self._vips)
        replicas = ReplicaSet(spec.name)
        manager = ServiceManager(
            spec.name, config.SERVICE_PORT, replicas, address_of=lambda c: self.edges[c].ip,
            probe_netns=self.net.host(self.topology.cloud.name).netns_path,
            on_down=lambda c, s=spec.name: self._urgent.put(("down", s, c)),
            events=self.events, policy=self.health)
        dep = Deployment(spec, ue, strategy, vip, ref, replicas, manager, image_source, data,
                         site=site, history=[site])
        wanted = spec if strategy == "proactive" else _one_replica(spec)
        with self.events.span("deploy", service=spec.name, ue=ue, strategy=strategy,
                              site=site, image=spec.image) as extra:
            placement = scheduler.place(self.policy, self.graph, self.statuses(), wanted, site,
                                        dep.history, predictor=self.predictor)
            extra["placement"] = list(placement.replicas)
            created: list[str] = []
            try:
                self._start_replicas(dep, placement.replicas, created)
                for cloudlet in placement.replicas:
                    replicas.add(cloudlet, self.site_of(cloudlet), self._instance(dep, cloudlet),
                                 placement.role_of(cloudlet) or SECONDARY)
                replicas.check()
                if strategy == "reactive":
                    self._prepare_image_source(dep, placement.primary)
                self.nm.add_service(spec.name, vip, config.SERVICE_PORT)
                self.nm.set_primary(spec.name, placement.primary, ue=ue)
                if strategy == "proactive" and self.policy_hook:
                    self.nm.set_policy(spec.name, self._policy_map(dep))
            except BaseException:
                for cloudlet in created:
                    self.edges[cloudlet].remove(self._instance(dep, cloudlet))
                if spec.name in {s["name"] for s in self.nm.services()}:
                    self.nm.remove_service(spec.name)
                raise
        self.deployments[spec.name] = dep
        if data:
            manager.start_sync(lambda: self._make_sync(dep))
        manager.start()
        self.events.emit("roles", service=spec.name, roles=replicas.roles())
        return dep

    def _instance(self, dep: Deployment, cloudlet: str) -> str:
        return f"{dep.name}-{cloudlet}"

    def _start_replicas(self, dep: Deployment, cloudlets: tuple[str, ...] | list[str],
                        created: list[str]) -> None:
        """Pull (if needed), launch and wait for instances on CLOUDLETS, in parallel."""
        def one(cloudlet: str) -> None:
            em = self.edges[cloudlet]
            if not em.has_image(dep.image_ref):
                with self.events.span("replica.pull", service=dep.name, cloudlet=cloudlet) as x:
                    x["bytes"] = em.pull(dep.image_ref).bytes
            volumes, env = self._data_volume(dep, cloudlet)
            instance = self._instance(dep, cloudlet)
            with self.events.span("replica.launch", service=dep.name, cloudlet=cloudlet):
                em.deploy(instance, dep.image_ref, cpus=dep.spec.cpus or None,
                          memory_mb=dep.spec.memory_mb or None, env=env, volumes=volumes,
                          service=dep.name)
                created.append(cloudlet)
                em.wait_ready(instance, timeout=60)

        with ThreadPoolExecutor(max_workers=max(1, len(cloudlets))) as pool:
            for future in [pool.submit(one, c) for c in cloudlets]:
                future.result()

    def _data_volume(self, dep: Deployment, cloudlet: str) -> tuple[Optional[dict], Optional[dict]]:
        if not dep.data:
            return None, None
        directory = data_dir(dep.name, cloudlet)
        directory.mkdir(parents=True, exist_ok=True)
        return data_volume(directory)

    def _make_sync(self, dep: Deployment) -> Optional[DataSync]:
        primary = dep.replicas.primary
        others = [r for r in dep.replicas.all() if r.role != PRIMARY and r.healthy]
        if primary is None or not others:
            return None
        as_sync = lambda c: SyncReplica(c, self.net.host(c).netns_path, self.edges[c].ip,
                                        data_dir(dep.name, c))
        return DataSync(dep.name, as_sync(primary.cloudlet), [as_sync(r.cloudlet) for r in others],
                        period_s=self.sync_period_s, events=self.events)

    def _prepare_image_source(self, dep: Deployment, primary: str) -> None:
        """Make the reactive image source a real state on every other cloudlet."""
        for name, em in self.edges.items():
            if name == primary:
                continue
            if dep.image_source == "cached":
                if not em.has_image(dep.image_ref):
                    em.pull(dep.image_ref)
            elif em.has_image(dep.image_ref):
                em.remove_image(dep.image_ref)

    def _policy_map(self, dep: Deployment, exclude: set[str] = frozenset()) -> dict[str, str]:
        """site -> the replica the Network Manager should steer to when the user is there."""
        placement = _placement_of(dep.replicas, exclude)
        if placement is None:
            return {}
        sites = {r.cloudlet: r.site for r in dep.replicas.all()}
        return {s: scheduler.choose_promotion(placement, s, self.graph, sites)
                for s in self.topology.site_names}

    # ================================================================== events in
    def _watch(self) -> None:
        """Poll the Network Manager's event log; queue location events of our users."""
        while not self._stop.wait(self._poll_s):
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

    def wait_idle(self, timeout: float = 300.0) -> None:
        """Wait until every queued event was handled (polls once more first)."""
        time.sleep(self._poll_s * 3)  # let the watcher fetch what is pending
        deadline = time.monotonic() + timeout
        while (self._jobs.unfinished_tasks or self._urgent.unfinished_tasks
               or self._background.unfinished_tasks):
            if time.monotonic() > deadline:
                raise TimeoutError(f"orchestrator still busy after {timeout:g} s")
            time.sleep(0.02)

    def wait_for_site(self, ue: str, site: str, timeout: float = 30.0) -> None:
        """Wait until the orchestrator has handled UE's arrival at SITE (then until idle)."""
        deadline = time.monotonic() + timeout
        while any(d.site != site for d in self.deployments.values() if d.ue == ue):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no location event for {ue} at {site} within {timeout:g} s "
                                   "(does the UE send traffic after its move?)")
            time.sleep(0.01)
        self.wait_idle(max(1.0, deadline - time.monotonic()))

    def _wall_to_mono(self, wall: Optional[float]) -> Optional[float]:
        return None if wall is None else wall + self._mono_minus_wall

    # ================================================================== moves
    def _on_location(self, ue: str, site: str, nm_event: dict) -> None:
        for dep in [d for d in self.deployments.values() if d.ue == ue]:
            if site == dep.site:
                continue
            old_site, dep.site = dep.site, site
            self.predictor.observe(old_site, site)
            dep.history.append(site)
            t_seen = self._wall_to_mono(nm_event.get("ts_packet_in"))
            self.events.emit("location", service=dep.name, ue=ue, from_site=old_site,
                             to_site=site, t_packet_in=t_seen,
                             resteered=nm_event.get("resteered", {}).get(dep.name),
                             install_ms=nm_event.get("install_ms"))
            if dep.strategy == "proactive":
                self._proactive_handover(dep, site, nm_event)
            else:
                self._reactive_migration(dep, site, t_seen)

    def _proactive_handover(self, dep: Deployment, site: str, nm_event: dict) -> None:
        with dep.lock:
            self._promote_for(dep, site, nm_event)
        self._background.put(("relocate", dep.name, site))

    def _promote_for(self, dep: Deployment, site: str, nm_event: dict) -> None:
        current = dep.replicas.primary
        target = self._policy_map(dep).get(site) if current else None
        if target is None or target == current.cloudlet:
            self.events.emit("proactive.keep", service=dep.name, primary=current and current.cloudlet)
        else:
            with self.events.span("proactive.promote", service=dep.name, ue=dep.ue,
                                  old=current.cloudlet, new=target) as extra:
                if nm_event.get("resteered", {}).get(dep.name) == target:
                    extra["steered_by"] = "network-manager-policy"
                    extra["reroute_ms"] = nm_event.get("install_ms")
                else:
                    extra["steered_by"] = "orchestrator"
                    extra["reroute_ms"] = self.nm.set_primary(dep.name, target, ue=dep.ue)["reroute_ms"]
                others = [r.cloudlet for r in dep.replicas.all() if r.cloudlet != target]
                dep.replicas.promote(target, self._order_from(target, others))
            self.events.emit("roles", service=dep.name, roles=dep.replicas.roles())
            if dep.data:
                dep.manager.start_sync(lambda: self._make_sync(dep))

    def _down(self, dep: Deployment) -> set[str]:
        return {r.cloudlet for r in dep.replicas.all() if not r.healthy}

    def _relocate(self, service: str, site: str) -> None:
        """Bring the replica set in line with the scheduler's placement for the user at SITE.

        Decided under the deployment's lock; the new instances are pulled and
        launched without it (a failover must not wait behind a pull), then
        added and the surplus ones removed under the lock again.
        """
        dep = self.deployments.get(service)
        if dep is None:
            return
        site = dep.site  # the user may have moved on since this relocation was queued
        with self.events.span("proactive.relocate", service=dep.name, site=site) as extra:
            with dep.lock:
                exclude = self._down(dep)
                try:
                    placement = scheduler.place(self.policy, self.graph, self.statuses(exclude),
                                                dep.spec, site, dep.history,
                                                predictor=self.predictor)
                except scheduler.SchedulingError as exc:
                    extra["error"] = str(exc)
                    return
                primary = dep.replicas.primary
                desired = list(dict.fromkeys(
                    ([primary.cloudlet] if primary else []) + list(placement.replicas)))
                desired = desired[:max(dep.spec.replicas, 1)]
                to_start = [c for c in desired if c not in dep.replicas]
                to_stop = [r.cloudlet for r in dep.replicas.all()
                           if r.cloudlet not in desired and r.role != PRIMARY]
                extra.update(start=to_start, stop=to_stop)
            created: list[str] = []
            try:
                self._start_replicas(dep, to_start, created)
            except Exception as exc:  # noqa: BLE001 - keep what runs; report the failure
                extra["error"] = f"{type(exc).__name__}: {exc}"
                for c in created:
                    self.edges[c].remove(self._instance(dep, c))
                to_start = []
            with dep.lock:
                for c in to_start:
                    if c not in dep.replicas:
                        dep.replicas.add(c, self.site_of(c), self._instance(dep, c), SECONDARY)
                for c in to_stop:
                    if c in dep.replicas and dep.replicas.get(c).role != PRIMARY:
                        dep.replicas.remove(c)
                        self.edges[c].remove(self._instance(dep, c))
                if dep.replicas.primary:
                    p = dep.replicas.primary.cloudlet
                    others = [r.cloudlet for r in dep.replicas.all() if r.role != PRIMARY]
                    dep.replicas.promote(p, self._order_from(p, others))
                if self.policy_hook and dep.strategy == "proactive":
                    self.nm.set_policy(dep.name, self._policy_map(dep, self._down(dep)))
                if dep.data and (to_start or to_stop):
                    dep.manager.start_sync(lambda: self._make_sync(dep))
                self.events.emit("roles", service=dep.name, roles=dep.replicas.roles())

    def _reactive_migration(self, dep: Deployment, site: str, t_seen: Optional[float]) -> None:
        old = dep.replicas.primary
        one = _one_replica(dep.spec)
        statuses = self.statuses()
        target = scheduler.place("neighbours", self.graph, statuses, one, site).primary
        if old is None or target == old.cloudlet:
            self.events.emit("migration.skip", service=dep.name, reason="already nearest")
            return
        src, dst = self.edges[old.cloudlet], self.edges[target]
        instance = self._instance(dep, target)
        t0 = time.perf_counter()
        fields = dict(service=dep.name, ue=dep.ue, source=dep.image_source, image=dep.spec.image,
                      old=old.cloudlet, new=target)
        self.events.emit("migration.start", **fields)
        if target in dep.replicas:
            # the user came back before the instance there was retired: switch back to it
            with self.events.span("migration.switch", **fields, reused=True) as x:
                answer = self.nm.set_primary(dep.name, target, ue=dep.ue)
                x["reroute_ms"] = answer["reroute_ms"]
            with dep.lock:
                dep.replicas.promote(target)
            self.events.emit("migration.end", **fields, total_s=time.perf_counter() - t0,
                             reused=True)
            self._background.put(("retire", dep.name, old.cloudlet,
                                  float(answer.get("drain_s") or 0.0), fields))
            return
        created = False
        try:
            if dep.image_source == "cached":
                if not dst.has_image(dep.image_ref):
                    raise OrchestrationError(f"image {dep.image_ref} is not cached on {target}")
            elif dep.image_source == "registry":
                with self.events.span("migration.pull", **fields) as x:
                    x["bytes"] = dst.pull(dep.image_ref).bytes
            else:
                with self.events.span("migration.transfer_image", **fields) as x:
                    result = transfer_image(dep.image_ref, src, dst, self.work_dir,
                                            compresslevel=self.compress_level)
                    x.update(archive_bytes=result.archive_bytes, wire_bytes=result.wire_bytes,
                             export_s=result.export_s, transfer_s=result.transfer_s,
                             load_s=result.load_s)
            volumes, env = self._data_volume(dep, target)
            with self.events.span("migration.launch", **fields):
                dst.deploy(instance, dep.image_ref, cpus=dep.spec.cpus or None,
                           memory_mb=dep.spec.memory_mb or None, env=env, volumes=volumes,
                           service=dep.name)
                created = True
            with self.events.span("migration.ready", **fields):
                dst.wait_ready(instance, timeout=60)
            with self.events.span("migration.switch", **fields) as x:
                answer = self.nm.set_primary(dep.name, target, ue=dep.ue)
                x["reroute_ms"] = answer["reroute_ms"]
                drain_s = float(answer.get("drain_s") or 0.0)
        except Exception as exc:
            if created:
                dst.remove(instance)
            self.events.emit("migration.failed", **fields, error=f"{type(exc).__name__}: {exc}",
                             note=f"{old.cloudlet} keeps serving")
            raise OrchestrationError(f"reactive migration of {dep.name} to {target} failed: "
                                     f"{exc}; {old.cloudlet} keeps serving") from exc
        with dep.lock:
            dep.replicas.add(target, self.site_of(target), instance, SECONDARY)
            dep.replicas.promote(target)
        # The user is served by the new instance from here: that is the migration time.
        self.events.emit("migration.end", **fields, total_s=time.perf_counter() - t0,
                         since_packet_in_s=(time.monotonic() - t_seen) if t_seen else None)
        self._background.put(("retire", dep.name, old.cloudlet, drain_s, fields))
        self.events.emit("roles", service=dep.name, roles=dep.replicas.roles())

    def _retire(self, service: str, cloudlet: str, drain_s: float, fields: dict) -> None:
        """Stop a reactive migration's old instance once its connections drained."""
        dep = self.deployments.get(service)
        if dep is None or cloudlet not in dep.replicas:
            return
        if drain_s > 0:
            # the Network Manager keeps established connections on the old instance
            # for drain_s (new ones already reach the new one): let them finish
            with self.events.span("migration.drain", **fields, drain_s=drain_s):
                time.sleep(drain_s)
        with self.events.span("migration.stop_old", **fields):
            with dep.lock:
                old = dep.replicas.get(cloudlet)
                if old.role == PRIMARY:
                    return  # the user came back meanwhile: it serves again
                dep.replicas.remove(cloudlet)
            self.edges[cloudlet].remove(old.instance)
        self.events.emit("roles", service=service, roles=dep.replicas.roles())

    # ================================================================== failures
    def _on_down(self, service: str, cloudlet: str) -> None:
        dep = self.deployments.get(service)
        if dep is None or cloudlet not in dep.replicas:
            return
        with dep.lock:
            failed = dep.replicas.get(cloudlet)
            if failed.role != PRIMARY:
                dep.replicas.remove(cloudlet)
                self.events.emit("replica.removed", service=service, cloudlet=cloudlet)
                if dep.strategy == "proactive":
                    if self.policy_hook:
                        self.nm.set_policy(service, self._policy_map(dep))
                    self._background.put(("relocate", service, dep.site))
                return
            candidates = [r.cloudlet for r in dep.replicas.all()
                          if r.cloudlet != cloudlet and r.healthy]
            backup = dep.replicas.backup
            new = backup.cloudlet if backup and backup.healthy else (
                self._order_from(cloudlet, candidates)[0] if candidates else None)
            if new is None:
                self.events.emit("failover.impossible", service=service, failed=cloudlet,
                                 reason="no healthy replica left")
                return
            with self.events.span("failover", service=service, failed=cloudlet, new=new) as x:
                if self.policy_hook and dep.strategy == "proactive":
                    self.nm.set_policy(service, self._policy_map(dep, exclude={cloudlet}))
                x["reroute_ms"] = self.nm.set_primary(service, new, ue=dep.ue)["reroute_ms"]
                dep.replicas.promote(new, self._order_from(new, [c for c in candidates
                                                                  if c != new]))
                dep.replicas.remove(cloudlet)
            self.events.emit("roles", service=service, roles=dep.replicas.roles())
            if dep.data:
                dep.manager.start_sync(lambda: self._make_sync(dep))
            if dep.strategy == "proactive":
                self._background.put(("relocate", service, dep.site))

    # ================================================================== lifecycle
    def undeploy(self, service: str) -> None:
        dep = self.deployments.pop(service)
        dep.manager.stop()
        for r in dep.replicas.all():
            try:
                self.edges[r.cloudlet].remove(r.instance)
            except Exception as exc:  # noqa: BLE001 - the cloudlet may be dead
                log.debug("remove %s: %s", r.instance, exc)
        try:
            self.nm.remove_service(service)
        except Exception as exc:  # noqa: BLE001 - the controller may be gone already
            log.debug("remove service %s: %s", service, exc)
        if dep.data:
            shutil.rmtree(service_data_dir(service), ignore_errors=True)

    def stop(self) -> None:
        self._stop.set()
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


def _one_replica(spec: scheduler.ServiceSpec) -> scheduler.ServiceSpec:
    from dataclasses import replace
    return replace(spec, replicas=1)


def _placement_of(replicas: ReplicaSet, exclude: set[str]) -> Optional[scheduler.Placement]:
    live = [r for r in replicas.all() if r.cloudlet not in exclude and r.healthy]
    primaries = [r.cloudlet for r in live if r.role == PRIMARY]
    if not live:
        return None
    primary = primaries[0] if primaries else live[0].cloudlet
    backup = next((r.cloudlet for r in live if r.role == BACKUP and r.cloudlet != primary), None)
    rest = tuple(r.cloudlet for r in live if r.cloudlet not in (primary, backup))
    return scheduler.Placement(primary, backup, rest)
