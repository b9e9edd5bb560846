"""Failover: a replica the Service Manager reports down is replaced.

A secondary or backup that stops answering is dropped (and, proactive, the
replica set relocated); a primary that stops answering hands over to the backup
(or the nearest healthy replica), the user's flows are switched to it, and the
failure and its re-steer are timed events. A dropped replica's container is
removed with it (under the deployment's lock, after the re-steer): "not
answering" is not "gone", and a container left running would hold the
cloudlet's capacity, the service's port and the instance's name (the next start
there would meet a 409 Conflict). If its engine is down, it is a leftover.

One of the handlers `EdgeOrchestrator` is made of (`mec.orchestrator.orchestrator`
says what they share).
"""

from __future__ import annotations

from mec.orchestrator.replicas import PRIMARY


class FailoverHandling:
    """The failure handler of `EdgeOrchestrator`."""

    def _on_down(self, service: str, cloudlet: str) -> None:
        dep = self.deployments.get(service)
        if dep is None:
            return
        with dep.lock:
            if cloudlet not in dep.replicas:
                return
            failed = dep.replicas.get(cloudlet)
            if failed.role != PRIMARY:
                dep.replicas.remove(cloudlet)
                self._remove_instance(dep, cloudlet, "down")
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
            self._remove_instance(dep, cloudlet, "down")
            self.events.emit("roles", service=service, roles=dep.replicas.roles())
            if dep.data:
                dep.manager.start_sync(lambda: self._make_sync(dep))
            if dep.strategy == "proactive":
                self._background.put(("relocate", service, dep.site))
