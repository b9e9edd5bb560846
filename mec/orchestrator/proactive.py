"""Proactive replication: promote the replica at the user's new site, then relocate the rest.

On a location event the Network Manager has usually re-steered the user already
(it holds the orchestrator's site -> replica policy); the handler promotes that
replica to primary, picks the new backup, and queues a relocation that brings
the replica set in line with the scheduler's placement for the new site
(pulls and launches run without the deployment's lock).

One of the handlers `EdgeOrchestrator` is made of (`mec.orchestrator.orchestrator`
says what they share).
"""

from __future__ import annotations

from mec.orchestrator import scheduler
from mec.orchestrator.deployment import Deployment, OrchestrationError, placement_of
from mec.orchestrator.replicas import PRIMARY, SECONDARY


class ProactiveHandling:
    """The proactive strategy's handlers of `EdgeOrchestrator`."""

    def _proactive_handover(self, dep: Deployment, site: str, nm_event: dict) -> None:
        with dep.lock:
            self._promote_for(dep, site, nm_event)
        self._background.put(("relocate", dep.name, site))

    def _promote_for(self, dep: Deployment, site: str, nm_event: dict) -> None:
        current = dep.replicas.primary
        if current is None:
            raise OrchestrationError(f"{dep.name} has no primary replica to hand over from")
        target = self._policy_map(dep).get(site)
        resteered = nm_event.get("resteered", {}).get(dep.name)
        if target is None or target == current.cloudlet:
            if resteered is not None and resteered != current.cloudlet:
                # the Network Manager followed a policy older than the replica set: the user
                # goes back to the primary (the replica it chose may be about to be removed)
                with self.events.span("proactive.resteer", service=dep.name, ue=dep.ue,
                                      old=resteered, new=current.cloudlet) as extra:
                    extra["reroute_ms"] = self.nm.set_primary(
                        dep.name, current.cloudlet, ue=dep.ue)["reroute_ms"]
            else:
                self.events.emit("proactive.keep", service=dep.name, primary=current.cloudlet)
        else:
            with self.events.span("proactive.promote", service=dep.name, ue=dep.ue,
                                  old=current.cloudlet, new=target) as extra:
                if resteered == target:
                    extra["steered_by"] = "network-manager-policy"
                    # None while the Barrier has not come back (see location.installed)
                    extra["reroute_ms"] = nm_event.get("install_ms")
                else:
                    extra["steered_by"] = "orchestrator"
                    extra["reroute_ms"] = self.nm.set_primary(dep.name, target, ue=dep.ue)["reroute_ms"]
                others = [r.cloudlet for r in dep.replicas.all() if r.cloudlet != target]
                dep.replicas.promote(target, self._order_from(target, others))
            self.events.emit("roles", service=dep.name, roles=dep.replicas.roles())
            if dep.data:
                dep.manager.start_sync(lambda: self._make_sync(dep))

    def _relocate(self, service: str, site: str) -> None:
        """Bring the replica set in line with the scheduler's placement for the user at SITE.

        Decided under the deployment's lock; the new instances are pulled and
        launched without it (a failover must not wait behind a pull), then
        added and the surplus ones removed (replica and container together)
        under the lock again. A container left over on a cloudlet it starts on
        is removed first and named in the span (``leftovers``); a failed start
        leaves no container; an undeploy meanwhile has what it started removed.
        """
        dep = self.deployments.get(service)
        if dep is None:
            return
        with dep.lock:
            site = dep.site  # the user may have moved on since this relocation was queued
        with self.events.span("proactive.relocate", service=dep.name, site=site) as extra:
            with dep.lock:
                if dep.closed:
                    return
                exclude = dep.down()
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
            leftovers: dict[str, str] = {}
            try:
                self._start_replicas(dep, to_start, leftovers)
            except Exception as exc:  # noqa: BLE001 - keep what runs; report the failure
                extra["error"] = f"{type(exc).__name__}: {exc}"
                to_start = []  # _start_replicas removed what it began
            if leftovers:
                extra["leftovers"] = leftovers
            for c in to_stop:
                self._release(dep, c)
            with dep.lock:
                if dep.closed:  # undeployed while starting: nobody would remove these
                    for c in to_start:
                        self._remove_instance(dep, c, "undeployed")
                    extra["undeployed"] = True
                    return
                for c in to_start:
                    if c not in dep.replicas:
                        dep.replicas.add(c, self.site_of(c), dep.instance(c), SECONDARY)
                for c in to_stop:
                    if (c in dep.replicas and dep.replicas.get(c).role != PRIMARY
                            and c not in dep.pinned):
                        dep.replicas.remove(c)
                        self._remove_instance(dep, c, "relocated")
                if dep.replicas.primary:
                    p = dep.replicas.primary.cloudlet
                    others = [r.cloudlet for r in dep.replicas.all() if r.role != PRIMARY]
                    dep.replicas.promote(p, self._order_from(p, others))
                if self.policy_hook and dep.strategy == "proactive":
                    self.nm.set_policy(dep.name, self._policy_map(dep, dep.down()))
                if dep.data and (to_start or to_stop):
                    dep.manager.start_sync(lambda: self._make_sync(dep))
                self.events.emit("roles", service=dep.name, roles=dep.replicas.roles())

    def _policy_map(self, dep: Deployment, exclude: set[str] = frozenset()) -> dict[str, str]:
        """site -> the replica the Network Manager should steer to when the user is there."""
        placement = placement_of(dep.replicas, exclude)
        if placement is None:
            return {}
        sites = {r.cloudlet: r.site for r in dep.replicas.all()}
        return {s: scheduler.choose_promotion(placement, s, self.graph, sites)
                for s in self.topology.site_names}
