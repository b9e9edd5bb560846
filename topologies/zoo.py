"""Import real backbone networks as topology files: Internet Topology Zoo GraphML, topohub.

``mec net import SOURCE -o FILE.yaml`` (``mec/cli/net.py``) calls :func:`read_source`
then :func:`to_topology_data`; the data is validated by ``topologies.loader.from_dict``
before anything is written.

SOURCE is either

* a GraphML file in the Topology Zoo's format: node attributes ``label``, ``Latitude``,
  ``Longitude``; edge attributes kept where present (``LinkSpeedRaw`` in bit/s gives a
  link's bandwidth with ``bw_from_graph``);
* ``topohub:GROUP/NAME`` (e.g. ``topohub:topozoo/Abilene``, ``topohub:sndlib/polska``): a
  network of the ``topohub`` package's collection (shipped inside the package; nothing is
  downloaded). Its node ``pos`` is ``[longitude, latitude]``.

Sites keep their real names (``label``; a repeated label gets `` (2)``, `` (3)``...; a
node without label is ``node ID``). A link's ``delay_ms`` is the ROUND TRIP over fibre
along the great circle between its ends: ``2 * distance / speed`` with light's speed in
fibre, :data:`FIBRE_SPEED_MPS` = 2x10^8 m/s (refractive index about 1.5) by default,
plus ``per_hop_ms`` (switching and queueing per link, default 0). Distances use the
haversine formula on a sphere of radius :data:`EARTH_RADIUS_M`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import networkx as nx

from topologies.csvrows import finite
from topologies.model import BLOCK_HOSTS, EARTH_RADIUS_M, PROFILES, TopologyError

#: Light in optical fibre (refractive index ~1.5), metres per second.
FIBRE_SPEED_MPS = 2e8
TOPOHUB_SCHEME = "topohub:"


@dataclass
class Network:
    """A network read from a source: nodes (id -> name, lon/lat or None), edges, its name."""

    name: str
    source: str
    names: dict[str, str]
    lonlat: dict[str, Optional[tuple[float, float]]]
    edges: list[tuple[str, str, dict[str, Any]]]


@dataclass
class ImportOptions:
    """How a network becomes a topology (see ``mec net import --help``)."""

    speed_mps: float = FIBRE_SPEED_MPS
    per_hop_ms: float = 0.0
    default_delay_ms: Optional[float] = None  # for links with an end without coordinates
    profile: str = "mec"
    bw_mbps: Optional[float] = None  # None: the profile's
    bw_from_graph: bool = False
    cloudlets: Optional[int] = None  # None: one per site; N: at the N most central sites
    cloud_site: Optional[str] = None  # None: the most central site
    ues: int = 1  # one UE at each of the N most central sites
    ue_sites: list[str] = field(default_factory=list)  # explicit UE sites (override ``ues``)


def great_circle_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Haversine distance in metres between two (longitude, latitude) points in degrees."""
    lon1, lat1, lon2, lat2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def fibre_rtt_ms(distance_m: float, speed_mps: float = FIBRE_SPEED_MPS) -> float:
    """Round trip over fibre of DISTANCE_M metres, in ms."""
    return 2 * distance_m / speed_mps * 1000


def _unique_names(raw: dict[str, str]) -> dict[str, str]:
    seen: dict[str, int] = {}
    out = {}
    for node, label in raw.items():
        label = " ".join(label.split()) or f"node {node}"
        label = label[:60]
        seen[label] = seen.get(label, 0) + 1
        out[node] = label if seen[label] == 1 else f"{label} ({seen[label]})"
    return out


def read_graphml(path: str) -> Network:
    """A Topology Zoo GraphML file (``label``, ``Latitude``, ``Longitude`` per node)."""
    try:
        g = nx.read_graphml(path)
    except FileNotFoundError:
        raise TopologyError(f"{path}: no such file") from None
    except Exception as e:  # networkx raises ElementTree/NetworkX errors of several kinds
        raise TopologyError(f"{path}: not a readable GraphML file: {e}") from None
    names = _unique_names({str(n): str(d.get("label", "")) for n, d in g.nodes(data=True)})
    lonlat = {}
    for n, d in g.nodes(data=True):
        lon, lat = finite(d.get("Longitude")), finite(d.get("Latitude"))
        lonlat[str(n)] = (lon, lat) if lon is not None and lat is not None else None
    edges = [(str(a), str(b), dict(d)) for a, b, d in g.edges(data=True)]
    title = str(g.graph.get("label") or g.graph.get("Network") or Path(path).stem)
    return Network(title, path, names, lonlat, edges)


def read_topohub(key: str) -> Network:
    """A network of the topohub package's collection, e.g. ``topozoo/Abilene``."""
    import topohub

    try:
        doc = topohub.get(key)
    except (KeyError, FileNotFoundError, OSError, ValueError):
        raise TopologyError(f"{TOPOHUB_SCHEME}{key}: no such network in topohub's collection "
                            "(keys look like topozoo/Abilene, sndlib/polska, backbone/europe)") from None
    names = _unique_names({str(n["id"]): str(n.get("name") or "") for n in doc["nodes"]})
    lonlat = {str(n["id"]): (tuple(map(float, n["pos"])) if n.get("pos") else None) for n in doc["nodes"]}
    edges = [(str(e["source"]), str(e["target"]), {k: v for k, v in e.items() if k in ("dist",)})
             for e in doc["edges"]]
    return Network(str(doc["graph"].get("name") or key), TOPOHUB_SCHEME + key, names, lonlat, edges)


def read_source(source: str) -> Network:
    """A GraphML path or ``topohub:GROUP/NAME``."""
    if source.startswith(TOPOHUB_SCHEME):
        return read_topohub(source[len(TOPOHUB_SCHEME):])
    return read_graphml(source)


def _graph(net: Network) -> nx.Graph:
    """Simple undirected graph of site names (parallel edges merged, self-loops dropped)."""
    g = nx.Graph()
    g.add_nodes_from(net.names.values())
    for a, b, d in net.edges:
        if a != b and not g.has_edge(net.names[a], net.names[b]):
            g.add_edge(net.names[a], net.names[b], ends=(a, b), attrs=d)
    return g


def _link_delay(net: Network, a: str, b: str, opts: ImportOptions) -> Optional[float]:
    pa, pb = net.lonlat[a], net.lonlat[b]
    if pa is None or pb is None:
        return opts.default_delay_ms
    return round(fibre_rtt_ms(great_circle_m(pa, pb), opts.speed_mps) + opts.per_hop_ms, 3)


def _by_centrality(g: nx.Graph) -> list[str]:
    """Sites, most central first: closeness over link delay, ties by name."""
    c = nx.closeness_centrality(g, distance="delay_ms")
    return sorted(g.nodes, key=lambda n: (-c[n], n))


def to_topology_data(net: Network, opts: ImportOptions) -> dict[str, Any]:
    """The topology-file data of NET (not yet validated: ``loader.from_dict`` does that).

    Raises :class:`TopologyError` listing every problem: unknown profile, links whose
    ends lack coordinates without ``default_delay_ms``, a disconnected graph (its
    components named), unknown ``cloud_site``/``ue_sites``."""
    errors: list[str] = []
    where = net.source
    g = _graph(net)
    if g.number_of_nodes() == 0:
        raise TopologyError(f"{where}: the network has no nodes")
    if opts.profile not in PROFILES:
        errors.append(f"{where}: unknown profile {opts.profile!r} (known: {', '.join(PROFILES)})")
    no_coords = sorted({net.names[x] for u, v, d in g.edges(data=True) for x in d["ends"] if net.lonlat[x] is None})
    if no_coords and opts.default_delay_ms is None:
        errors.append(f"{where}: {len(no_coords)} node(s) without coordinates: {', '.join(no_coords)}; "
                      "give a delay for their links (--default-delay-ms MS) or fix the file")
    comps = sorted((sorted(c) for c in nx.connected_components(g)), key=lambda c: (-len(c), c))
    if len(comps) > 1:
        errors.append(f"{where}: the graph is not connected: {len(comps)} components "
                      + " | ".join("{" + ", ".join(c) + "}" for c in comps))
    n_cloudlets = g.number_of_nodes() if opts.cloudlets is None else opts.cloudlets
    if n_cloudlets > BLOCK_HOSTS or max(opts.ues, len(opts.ue_sites)) > BLOCK_HOSTS:
        errors.append(f"{where}: {g.number_of_nodes()} sites: at most {BLOCK_HOSTS} cloudlets and {BLOCK_HOSTS} UEs get "
                      "automatic addresses; choose fewer with --cloudlets N / --ues N")
    for site in ([opts.cloud_site] if opts.cloud_site else []) + opts.ue_sites:
        if site not in g:
            errors.append(f"{where}: unknown site {site!r} (sites: {', '.join(sorted(g.nodes))})")
    if errors:
        raise TopologyError(errors)
    base = PROFILES[opts.profile]
    links = []
    for u, v, d in g.edges(data=True):
        delay = _link_delay(net, *d["ends"], opts)
        d["delay_ms"] = delay
        link: dict[str, Any] = {"a": u, "b": v, "profile": opts.profile, "delay_ms": delay}
        bw = opts.bw_mbps
        speed = finite(d["attrs"].get("LinkSpeedRaw")) if opts.bw_from_graph else None
        if speed:
            bw = min(10000.0, speed / 1e6)
        if bw is not None and bw != base.bw_mbps:
            link["bw_mbps"] = bw
        links.append(link)
    central = _by_centrality(g)
    order = list(net.names.values())
    with_cloudlet = set(order if opts.cloudlets is None else central[:opts.cloudlets])
    sites = []
    for i, name in enumerate(order):
        node = next(k for k, v in net.names.items() if v == name)
        site: dict[str, Any] = {"name": name}
        if net.lonlat[node] is not None:
            site["lonlat"] = [round(c, 6) for c in net.lonlat[node]]
        if name in with_cloudlet:
            site["cloudlets"] = [{"name": f"c{i + 1}"}]
        sites.append(site)
    ue_sites = opts.ue_sites or central[:opts.ues]
    return {
        "name": net.name,
        "description": (f"imported from {net.source}: {len(sites)} sites, {len(links)} links; link delay_ms = "
                        f"round trip over fibre at {opts.speed_mps:g} m/s along the great circle"
                        + (f" + {opts.per_hop_ms:g} ms per hop" if opts.per_hop_ms else "")),
        "sites": sites,
        "cloud": {"name": "cloud", "site": opts.cloud_site or central[0]},
        "ues": [{"name": f"u{k + 1}", "site": s} for k, s in enumerate(ue_sites)],
        "links": links,
    }
