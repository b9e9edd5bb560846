"""Which server each site runs on, for a network split over several machines.

A site (its switch, its cloudlets with their engines, the UEs attached to it, the cloud
when it hangs off it) runs on one server. The placement is the topology's own
(``servers:`` and per-site ``server:``), or, when ``mec net up --servers a,b`` names
servers, an automatic partition that cuts the fewest site links: every cut link becomes
a tunnel between two servers and carries their traffic over the real network.

The partition is recursive Kernighan-Lin bisection (networkx) of the site graph, each
site weighing 1 + its cloudlets: the servers are halved, the sites are bisected into two
parts of sizes in the same ratio, and each half is split again. Kernighan-Lin is a local
search: its cut is small, not proved minimal; with a fixed seed it is repeatable.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Optional, Sequence

import networkx as nx
from networkx.algorithms.community import kernighan_lin_bisection

from topologies.model import Topology

log = logging.getLogger(__name__)

SEED = 0  # the partition is repeatable


@dataclass(frozen=True)
class Placement:
    """Site -> server, and the site links that cross servers."""

    servers: tuple[str, ...]
    site_server: dict[str, str]
    cut: tuple[tuple[str, str], ...]

    def sites_on(self, server: str) -> list[str]:
        return [s for s, srv in self.site_server.items() if srv == server]

    def crosses(self, a: str, b: str) -> bool:
        return self.site_server[a] != self.site_server[b]


def _cut(graph: nx.Graph, site_server: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple((a, b) for a, b in graph.edges if site_server[a] != site_server[b])


def _bisect(graph: nx.Graph, nodes: list[str], share: float) -> tuple[list[str], list[str]]:
    """NODES split in two parts, the first of about SHARE of them, cutting few edges.

    Kernighan-Lin keeps the sizes of its starting parts, so the start fixes the ratio:
    the first part starts as the nodes nearest (breadth first) to one end of the graph."""
    sub = graph.subgraph(nodes)
    want = max(1, min(len(nodes) - 1, round(share * len(nodes))))
    start = min(nodes, key=lambda n: (sub.degree(n), n))
    order = [start] + [v for _, v in nx.bfs_edges(sub, start)]
    order += sorted(set(nodes) - set(order))  # nodes of other components last
    first = set(order[:want])
    rest = set(nodes) - first
    if sub.number_of_edges() == 0 or len(nodes) < 3:
        return sorted(first), sorted(rest)  # nothing to improve (networkx fails on these)
    a, b = kernighan_lin_bisection(sub, partition=(first, rest), seed=SEED, weight="weight")
    if len(a) != len(first):  # the parts come back in either order; sizes are kept
        a, b = b, a
    return sorted(a), sorted(b)


def partition(topology: Topology, servers: Sequence[str]) -> Placement:
    """Place TOPOLOGY's sites on SERVERS, cutting few site links (see the module doc)."""
    servers = tuple(servers)
    if not servers:
        raise ValueError("partition: no servers")
    if len(set(servers)) != len(servers):
        raise ValueError(f"partition: a server is named twice in {', '.join(servers)}")
    if len(servers) > len(topology.sites):
        raise ValueError(f"partition: {len(servers)} servers for {len(topology.sites)} sites: "
                         "a server without a site would run nothing")
    graph = topology.graph()
    for a, b in graph.edges:
        graph.edges[a, b]["weight"] = 1
    site_server: dict[str, str] = {}

    def split(nodes: list[str], group: tuple[str, ...]) -> None:
        if len(group) == 1:
            site_server.update({n: group[0] for n in nodes})
            return
        half = len(group) // 2
        first, second = _bisect(graph, nodes, half / len(group))
        split(first, group[:half])
        split(second, group[half:])

    split(sorted(topology.site_names), servers)
    placement = Placement(servers, site_server, _cut(graph, site_server))
    log.info("placed %d sites on %d servers, %d links cross servers", len(site_server),
             len(servers), len(placement.cut))
    return placement


def placement_of(topology: Topology, servers: Optional[Sequence[str]] = None) -> Optional[Placement]:
    """The placement to build: SERVERS (``--servers``) partitioned automatically, else the
    topology's own ``server:`` keys, else None (everything on this machine)."""
    if servers:
        return partition(topology, servers)
    if not topology.servers or all(s.server is None for s in topology.sites):
        return None
    site_server = {s.name: s.server for s in topology.sites}
    return Placement(topology.servers, site_server, _cut(topology.graph(), site_server))
