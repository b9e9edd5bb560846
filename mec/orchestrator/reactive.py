"""Reactive migration: a new instance at the user's new site, then the switch.

The image reaches the new cloudlet as the deployment says (already cached,
pulled from the cloud registry, or transferred from the previous edge); the
instance is launched, checked, the user's flows are switched to it, and the old
instance is retired in the background once its connections drained. Every
phase is a timed event. A failing step removes the half-made instance and
leaves the old primary serving.

One of the handlers `EdgeOrchestrator` is made of (`mec.orchestrator.orchestrator`
says what they share).
"""

from __future__ import annotations

import time
from typing import Optional

from mec.edge.manager import transfer_image
from mec.orchestrator import scheduler
from mec.orchestrator.deployment import Deployment, OrchestrationError, one_replica
from mec.orchestrator.replicas import PRIMARY, SECONDARY
from mec.service.datasync import copy_state


class ReactiveHandling:
    """The reactive strategy's handlers of `EdgeOrchestrator`."""

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

    def _reactive_migration(self, dep: Deployment, site: str, t_seen: Optional[float]) -> None:
        with dep.lock:  # decide and reserve: a retire must not remove what this move uses
            old = dep.replicas.primary
            if old is None:
                raise OrchestrationError(f"{dep.name} has no primary to migrate from")
            target = scheduler.place("neighbours", self.graph, self.statuses(),
                                     one_replica(dep.spec), site).primary
            if target == old.cloudlet:
                self.events.emit("migration.skip", service=dep.name, reason="already nearest")
                return
            reuse = target in dep.replicas
            dep.pinned.add(target)
        try:
            self._migrate(dep, old.cloudlet, target, reuse, t_seen)
        finally:
            with dep.lock:
                dep.pinned.discard(target)
                stranded = (reuse and target in dep.replicas
                            and dep.replicas.get(target).role != PRIMARY)
            if stranded:  # the switch back failed: retire it as its earlier retire would have
                self._background.put(("retire", dep.name, target, 0.0,
                                      dict(service=dep.name, old=target)))

    def _migrate(self, dep: Deployment, old_cloudlet: str, target: str, reuse: bool,
                 t_seen: Optional[float]) -> None:
        """Move DEP's primary from OLD_CLOUDLET to TARGET (pinned by the caller)."""
        src, dst = self.edges[old_cloudlet], self.edges[target]
        instance = dep.instance(target)
        t0 = time.perf_counter()
        fields = dict(service=dep.name, ue=dep.ue, source=dep.image_source, image=dep.spec.image,
                      old=old_cloudlet, new=target)
        self.events.emit("migration.start", **fields)
        if reuse:
            # the user came back before the instance there was retired: switch back to it
            with self.events.span("migration.switch", **fields, reused=True) as x:
                answer = self.nm.set_primary(dep.name, target, ue=dep.ue)
                x["reroute_ms"] = answer["reroute_ms"]
            with dep.lock:
                dep.replicas.promote(target)
            self.events.emit("migration.end", **fields, total_s=time.perf_counter() - t0,
                             reused=True)
            self._background.put(("retire", dep.name, old_cloudlet,
                                  float(answer.get("drain_s") or 0.0), fields))
            self.events.emit("roles", service=dep.name, roles=dep.replicas.roles())
            return
        try:
            if dep.image_source == "cached":
                if not dst.has_image(dep.image_ref):
                    raise OrchestrationError(f"image {dep.image_ref} is not cached on {target}")
            elif dep.image_source == "registry":
                with self.events.span("migration.pull", **fields) as x:
                    pull = dst.pull(dep.image_ref)
                    x.update(bytes=pull.declared_bytes, declared_bytes=pull.declared_bytes,
                             wire_bytes=pull.wire_bytes)
            else:
                with self.events.span("migration.transfer_image", **fields) as x:
                    result = transfer_image(dep.image_ref, src, dst, self.work_dir,
                                            compresslevel=self.compress_level)
                    x.update(archive_bytes=result.archive_bytes, wire_bytes=result.wire_bytes,
                             export_s=result.export_s, transfer_s=result.transfer_s,
                             load_s=result.load_s)
            volumes, env = self._data_volume(dep, target)
            if dep.data:
                self._move_state(dep, old_cloudlet, target, fields)
            with self.events.span("migration.launch", **fields) as x:
                if self._clear_leftover(dep, target):
                    x["leftover"] = "removed"
                self._run(dep, target, env, volumes)
            with self.events.span("migration.ready", **fields):
                self._ready(dep, target)
            with self.events.span("migration.switch", **fields) as x:
                answer = self.nm.set_primary(dep.name, target, ue=dep.ue)
                x["reroute_ms"] = answer["reroute_ms"]
                drain_s = float(answer.get("drain_s") or 0.0)
        except Exception as exc:
            self._remove_instance(dep, target, "migration failed")  # made or half-made
            self.events.emit("migration.failed", **fields, error=f"{type(exc).__name__}: {exc}",
                             note=f"{old_cloudlet} keeps serving")
            raise OrchestrationError(f"reactive migration of {dep.name} to {target} failed: "
                                     f"{exc}; {old_cloudlet} keeps serving") from exc
        with dep.lock:
            if dep.closed:  # undeployed meanwhile: nobody would remove it
                self._remove_instance(dep, target, "undeployed")
                raise OrchestrationError(f"{dep.name} was undeployed during its migration "
                                         f"to {target}")
            dep.replicas.add(target, self.site_of(target), instance, SECONDARY)
            dep.replicas.promote(target)
        # The user is served by the new instance from here: that is the migration time.
        self.events.emit("migration.end", **fields, total_s=time.perf_counter() - t0,
                         since_packet_in_s=(time.monotonic() - t_seen) if t_seen else None)
        self._background.put(("retire", dep.name, old_cloudlet, drain_s, fields))
        self.events.emit("roles", service=dep.name, roles=dep.replicas.roles())

    def _move_state(self, dep: Deployment, old_cloudlet: str, target: str,
                    fields: dict) -> None:
        """The state phase: copy the old instance's volume to TARGET over the network.

        The copy is a snapshot taken while the old instance keeps serving: what it
        writes after ``migration.state.start`` is not on TARGET (the results' staleness
        at the switch)."""
        with self.events.span("migration.state", **fields) as x:
            done = copy_state(dep.name, self._sync_replica(dep, old_cloudlet),
                              self._sync_replica(dep, target))
            push = done.targets[0]
            x.update(state_bytes=push.stats.literal_bytes, bytes_sent=push.stats.total_bytes,
                     wire_bytes=push.wire_bytes, files=push.stats.files_transferred,
                     snapshot_at=done.started)
            if not done.ok:
                raise OrchestrationError(f"the state of {dep.name} did not reach {target}: "
                                         f"{push.error}")

    def _retire(self, service: str, cloudlet: str, drain_s: float, fields: dict,
                drain_started: Optional[float] = None) -> None:
        """Stop a reactive migration's old instance once its connections drained.

        The Network Manager keeps established connections on the old instance for
        DRAIN_S (new ones already reach the new one): the retire comes back once
        that time is over (`_after`, DRAIN_STARTED set), the worker meanwhile free
        for the other moves' retires (waiting in it let them pile up: ten users moving
        every 0.5 s queued more drain time than the run lasted). Decided and done
        under the deployment's lock: a replica a migration has pinned (it switches
        back to it) or that is primary again is kept."""
        dep = self.deployments.get(service)
        if dep is None:
            return
        if drain_s > 0 and drain_started is None:
            self.events.emit("migration.drain.start", **fields, drain_s=drain_s)
            self._after(drain_s, self._background,
                        ("retire", service, cloudlet, drain_s, fields, time.perf_counter()))
            return
        if drain_started is not None:
            self.events.emit("migration.drain.end", **fields, drain_s=drain_s,
                             duration_s=time.perf_counter() - drain_started)
        self._release(dep, cloudlet)
        with dep.lock:
            if cloudlet not in dep.replicas:
                return
            old = dep.replicas.get(cloudlet)
            if old.role == PRIMARY or cloudlet in dep.pinned:
                self.events.emit("migration.keep_old", **fields, reason="in use again")
                return  # the user came back meanwhile: it serves (or will) again
            with self.events.span("migration.stop_old", **fields) as x:
                dep.replicas.remove(cloudlet)
                x["removed"] = self._remove_instance(dep, cloudlet, "retired")
        self.events.emit("roles", service=service, roles=dep.replicas.roles())
