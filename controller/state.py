"""The Network Manager's state: topology, services, steering, policy, locations.

Pure Python (no OpenFlow): the app mutates it under its lock and turns it
into flows with :mod:`controller.plan`. It persists itself to a JSON file so
that a restarted controller re-installs the same steering. The saved document
names the run it belongs to (``run``): a controller of another run does not load it.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import networkx as nx

from controller.cookies import MAX_ID
from controller.model import (
    Host,
    Link,
    NotFound,
    RequestError,
    Service,
    Switch,
    Topology,
    parse_dpid,
)

LOG = logging.getLogger(__name__)


class NetworkState:
    """Topology + services + steering decisions, with path computation."""

    def __init__(self, run_id: str | None = None) -> None:
        #: the run this state belongs to (saved with it; see controller.settings.new_run_id)
        self.run_id = run_id
        self.topology = Topology()
        self.services: dict[str, Service] = {}
        #: per-UE steering overrides: (service, ue) -> replica host name
        self.overrides: dict[tuple[str, str], str] = {}
        #: policy: service -> {dpid: replica host name}
        self.policy: dict[str, dict[int, str]] = {}
        #: stable small ids for cookies: host names and service names
        self.host_ids: dict[str, int] = {}
        self.service_ids: dict[str, int] = {}
        self._graph: nx.Graph = nx.Graph()
        self._paths: dict[int, dict[int, list[int]]] = {}
        self._link_ports: dict[tuple[int, int], int] = {}  # (dpid, neighbour) -> port
        self._link_port_set: set[tuple[int, int]] = set()

    # ------------------------------------------------------------ lookups
    @property
    def hosts(self) -> list[Host]:
        return self.topology.hosts

    def switch(self, key: Any) -> Switch:
        """A switch by name or dpid (int or hex string)."""
        for s in self.topology.switches:
            if s.name == key:
                return s
        try:
            dpid = parse_dpid(key)
        except RequestError:
            raise NotFound(f"unknown switch {key!r}") from None
        for s in self.topology.switches:
            if s.dpid == dpid:
                return s
        raise NotFound(f"unknown switch {key!r}")

    def switch_name(self, dpid: int) -> str:
        for s in self.topology.switches:
            if s.dpid == dpid:
                return s.name
        return f"dpid:{dpid}"

    def host(self, key: str) -> Host:
        """A host by name or IP address."""
        for h in self.hosts:
            if key in (h.name, h.ip):
                return h
        raise NotFound(f"unknown host {key!r}")

    def host_by_name(self, name: str) -> Host | None:
        for h in self.hosts:
            if h.name == name:
                return h
        return None

    def host_by_mac(self, mac: str) -> Host | None:
        for h in self.hosts:
            if h.mac == mac:
                return h
        return None

    def host_by_ip(self, ip: str) -> Host | None:
        for h in self.hosts:
            if h.ip == ip:
                return h
        return None

    def host_wired_at(self, dpid: int, port: int) -> Host | None:
        """The host one of whose access links ends at switch DPID's PORT (a UE's radio
        links: every AP it may attach to)."""
        for h in self.hosts:
            if [dpid, port] in h.ports:
                return h
        return None

    def service(self, name: str) -> Service:
        try:
            return self.services[name]
        except KeyError:
            raise NotFound(f"unknown service {name!r}") from None

    def service_by_vip(self, ip: str) -> Service | None:
        for s in self.services.values():
            if s.vip == ip:
                return s
        return None

    def ues(self) -> list[Host]:
        return [h for h in self.hosts if h.kind == "ue"]

    def is_link_port(self, dpid: int, port: int) -> bool:
        return (dpid, port) in self._link_port_set

    # ------------------------------------------------------------ ids
    def _alloc(self, table: dict[str, int], name: str) -> int:
        if name not in table:
            used = set(table.values())
            for i in range(1, MAX_ID + 1):
                if i not in used:
                    table[name] = i
                    break
            else:
                raise RequestError("too many names for cookie ids", 507)
        return table[name]

    def host_id(self, name: str) -> int:
        return self._alloc(self.host_ids, name)

    def service_id(self, name: str) -> int:
        return self._alloc(self.service_ids, name)

    # ------------------------------------------------------------ mutation
    def set_topology(self, topo: Topology) -> None:
        """Replace the topology; drops steering that names hosts that are gone."""
        self.topology = topo
        for h in topo.hosts:
            self.host_id(h.name)
        names = {h.name for h in topo.hosts}
        self.overrides = {k: v for k, v in self.overrides.items() if k[1] in names and v in names}
        self._rebuild()

    def _rebuild(self) -> None:
        g = nx.Graph()
        g.add_nodes_from(s.dpid for s in self.topology.switches)
        self._link_ports = {}
        self._link_port_set = set()
        for lk in self.topology.links:
            if g.has_edge(lk.a_dpid, lk.b_dpid):
                continue  # parallel links: keep the first
            g.add_edge(lk.a_dpid, lk.b_dpid)
            self._link_ports[(lk.a_dpid, lk.b_dpid)] = lk.a_port
            self._link_ports[(lk.b_dpid, lk.a_dpid)] = lk.b_port
        for lk in self.topology.links:
            self._link_port_set.add((lk.a_dpid, lk.a_port))
            self._link_port_set.add((lk.b_dpid, lk.b_port))
        self._graph = g
        self._paths = {}

    def path(self, src_dpid: int, dst_dpid: int) -> list[int] | None:
        """Shortest switch path (list of dpids) or None when unreachable."""
        if src_dpid not in self._paths:
            if src_dpid not in self._graph:
                return None
            self._paths[src_dpid] = nx.single_source_shortest_path(self._graph, src_dpid)
        return self._paths[src_dpid].get(dst_dpid)

    def out_port(self, dpid: int, host: Host) -> int | None:
        """Port on switch ``dpid`` towards ``host`` along the shortest path."""
        if host.dpid == dpid:
            return host.port
        p = self.path(dpid, host.dpid)
        if not p or len(p) < 2:
            return None
        return self._link_ports.get((dpid, p[1]))

    def add_service(self, svc: Service) -> None:
        for h in self.hosts:
            if h.ip == svc.vip:
                raise RequestError(f"service vip {svc.vip} is the address of host {h.name}", 409)
        for other in self.services.values():
            if other.name != svc.name and (other.vip == svc.vip or other.vmac == svc.vmac):
                raise RequestError(f"vip/vmac already used by service {other.name}", 409)
        if svc.primary is not None:
            svc.primary = self.replica_host(svc.primary).name
        self.service_id(svc.name)
        self.services[svc.name] = svc

    def remove_service(self, name: str) -> Service:
        svc = self.service(name)
        del self.services[name]
        self.overrides = {k: v for k, v in self.overrides.items() if k[0] != name}
        self.policy.pop(name, None)
        return svc

    def replica_host(self, key: str) -> Host:
        h = self.host(key)
        if h.kind == "ue":
            raise RequestError(f"host {h.name} is a UE and cannot be a replica")
        return h

    def ue_host(self, key: str) -> Host:
        h = self.host(key)
        if h.kind != "ue":
            raise RequestError(f"host {h.name} is a {h.kind}, not a UE")
        return h

    def replica_for(self, service: str, ue: str) -> str | None:
        """The replica (host name) that ``ue`` is steered to for ``service``."""
        svc = self.services.get(service)
        if svc is None:
            return None
        return self.overrides.get((service, ue), svc.primary)

    def steering_table(self) -> list[dict[str, Any]]:
        rows = []
        for svc in self.services.values():
            for ue in self.ues():
                rep = self.replica_for(svc.name, ue.name)
                rows.append({
                    "service": svc.name, "vip": svc.vip, "port": svc.port, "ue": ue.name,
                    "ue_ip": ue.ip, "replica": rep,
                    "replica_ip": self.host(rep).ip if rep else None,
                    "ap": self.switch_name(ue.dpid), "ap_dpid": ue.dpid,
                    "override": (svc.name, ue.name) in self.overrides,
                })
        return rows

    # ------------------------------------------------------------ persistence
    def to_json(self) -> dict[str, Any]:
        return {
            "run": self.run_id,
            "topology": self.topology.to_json(),
            "services": [asdict(s) for s in self.services.values()],
            "overrides": [{"service": s, "ue": u, "replica": r}
                          for (s, u), r in self.overrides.items()],
            "policy": {s: {str(d): r for d, r in m.items()} for s, m in self.policy.items()},
            "host_ids": self.host_ids,
            "service_ids": self.service_ids,
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> "NetworkState":
        st = cls(doc.get("run"))
        st.host_ids = dict(doc.get("host_ids", {}))
        st.service_ids = dict(doc.get("service_ids", {}))
        t = doc.get("topology", {})
        st.set_topology(Topology(
            [Switch(**s) for s in t.get("switches", [])],
            [Link(**lk) for lk in t.get("links", [])],
            [Host(**h) for h in t.get("hosts", [])],
        ))
        for s in doc.get("services", []):
            st.services[s["name"]] = Service(**s)
            st.service_id(s["name"])
        for o in doc.get("overrides", []):
            st.overrides[(o["service"], o["ue"])] = o["replica"]
        st.policy = {s: {int(d): r for d, r in m.items()} for s, m in doc.get("policy", {}).items()}
        return st

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the state atomically (temp file + rename)."""
        self.save_json(self.to_json(), path)

    @staticmethod
    def save_json(doc: dict[str, Any], path: str | os.PathLike[str]) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f, indent=1)
        os.replace(tmp, path)

    @staticmethod
    def saved_run(path: str | os.PathLike[str]) -> str | None:
        """The run a saved state file belongs to (None: saved without a run)."""
        with open(path) as f:
            doc = json.load(f)
        if not isinstance(doc, dict):
            raise ValueError("not a saved state (a JSON object)")
        return doc.get("run")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "NetworkState":
        with open(path) as f:
            return cls.from_json(json.load(f))
