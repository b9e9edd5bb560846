"""Roles of a service's replicas: exactly one primary, at most one backup, other secondaries.

This is the bookkeeping half of the paper's Migration and Replica Controller
(Sec. IV): every transition (add, promote, remove, fail) happens under one lock
and ends with the invariant checked, so two racing events (a move and a
failure, say) can never leave two primaries or none.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from typing import Iterable, Optional

PRIMARY, BACKUP, SECONDARY = "primary", "backup", "secondary"
ROLES = (PRIMARY, BACKUP, SECONDARY)


class InvariantError(RuntimeError):
    """The replica roles broke the one-primary / at-most-one-backup rule."""


@dataclass(frozen=True)
class Replica:
    """One running instance of a service on a cloudlet."""

    cloudlet: str
    site: str
    instance: str
    role: str
    healthy: bool = True


class ReplicaSet:
    """The replicas of one service and their roles (thread-safe)."""

    def __init__(self, service: str):
        self.service = service
        self._replicas: dict[str, Replica] = {}
        self.lock = threading.RLock()  # held only inside these methods: never for long

    # ------------------------------------------------------------------ reading
    def __contains__(self, cloudlet: str) -> bool:
        return cloudlet in self._replicas

    def __len__(self) -> int:
        return len(self._replicas)

    def all(self) -> list[Replica]:
        with self.lock:
            order = {PRIMARY: 0, BACKUP: 1, SECONDARY: 2}
            return sorted(self._replicas.values(), key=lambda r: (order[r.role], r.cloudlet))

    def get(self, cloudlet: str) -> Replica:
        try:
            return self._replicas[cloudlet]
        except KeyError:
            raise KeyError(f"service {self.service} has no replica on {cloudlet} (replicas: "
                           f"{', '.join(self._replicas) or 'none'})") from None

    @property
    def primary(self) -> Optional[Replica]:
        with self.lock:
            return next((r for r in self._replicas.values() if r.role == PRIMARY), None)

    @property
    def backup(self) -> Optional[Replica]:
        with self.lock:
            return next((r for r in self._replicas.values() if r.role == BACKUP), None)

    def roles(self) -> dict[str, str]:
        with self.lock:
            return {c: r.role for c, r in self._replicas.items()}

    # ------------------------------------------------------------------ invariant
    def check(self) -> None:
        """Raise InvariantError unless there is exactly one primary and at most one backup."""
        with self.lock:
            roles = [r.role for r in self._replicas.values()]
            if not roles:
                return
            if roles.count(PRIMARY) != 1 or roles.count(BACKUP) > 1:
                raise InvariantError(f"service {self.service}: roles {self.roles()} break "
                                     "'exactly one primary, at most one backup'")

    # ------------------------------------------------------------------ transitions
    def add(self, cloudlet: str, site: str, instance: str, role: str) -> Replica:
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r} (roles: {', '.join(ROLES)})")
        with self.lock:
            if cloudlet in self._replicas:
                raise ValueError(f"service {self.service} already has a replica on {cloudlet}")
            if role == PRIMARY and self.primary is not None:
                raise InvariantError(f"service {self.service} already has primary "
                                     f"{self.primary.cloudlet}")
            if role == BACKUP and self.backup is not None:
                role = SECONDARY
            replica = Replica(cloudlet, site, instance, role)
            self._replicas[cloudlet] = replica
            if self.primary is not None:
                self.check()
            return replica

    def promote(self, cloudlet: str, backup_order: Iterable[str] = ()) -> Optional[Replica]:
        """Make CLOUDLET's replica primary; the old primary becomes secondary.

        A backup is then (re)chosen: the first healthy non-primary replica in
        BACKUP_ORDER (e.g. nearest to the new primary), else any healthy one.
        Returns the previous primary (None if CLOUDLET already was primary).
        """
        with self.lock:
            new = self.get(cloudlet)
            old = self.primary
            if old is not None and old.cloudlet == cloudlet:
                self._choose_backup(backup_order)
                return None
            if old is not None:
                self._replicas[old.cloudlet] = replace(old, role=SECONDARY)
            self._replicas[cloudlet] = replace(new, role=PRIMARY)
            self._choose_backup(backup_order)
            self.check()
            return old

    def _choose_backup(self, order: Iterable[str]) -> None:
        candidates = [c for c in list(order) + sorted(self._replicas)
                      if c in self._replicas and self._replicas[c].role != PRIMARY
                      and self._replicas[c].healthy]
        for c, r in self._replicas.items():
            if r.role == BACKUP:
                self._replicas[c] = replace(r, role=SECONDARY)
        if candidates:
            c = candidates[0]
            self._replicas[c] = replace(self._replicas[c], role=BACKUP)

    def mark(self, cloudlet: str, healthy: bool) -> Replica:
        with self.lock:
            r = replace(self.get(cloudlet), healthy=healthy)
            self._replicas[cloudlet] = r
            return r

    def remove(self, cloudlet: str) -> Replica:
        """Drop a replica that is not the primary (promote another one first)."""
        with self.lock:
            r = self.get(cloudlet)
            if r.role == PRIMARY and len(self._replicas) > 1:
                raise InvariantError(f"service {self.service}: promote another replica before "
                                     f"removing primary {cloudlet}")
            del self._replicas[cloudlet]
            if r.role == BACKUP:
                self._choose_backup(())
            self.check()
            return r
