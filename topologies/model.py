"""The emulated MEC network as plain data: sites, cloudlets, UEs, the cloud, links.

A :class:`Topology` is what a topology file (see ``topologies/loader.py`` and
``docs/topology-format.md``) describes, after validation. It holds no machine
resources: the network builder turns it into switches, hosts and shaped links,
the controller and orchestrator use it to know names, addresses, datapath ids,
neighbours and path delays.

Shape of the network::

    cloud (image registry) --wan link-- site switch
    site s1 --- link --- site s2 --- ...      (backbone graph of sites)
    each site: one access-point switch; its cloudlets (lan link) and UEs (access link)

Naming rules: a site or node name is written as people write it (spaces, capitals,
accents, up to 64 characters; see :data:`NAME_RULE`); sites, cloudlets, UEs and the
cloud share one namespace. Machine names (bridges, interfaces, namespaces) must fit
Linux's 15 characters with an ``-eth99`` suffix, so they are derived
(:func:`machine_rest`): a short name (``[a-z][a-z0-9]{0,5}``) that fits is used as is
(``PREFIX-s1``); any other name becomes ``PREFIX-`` + its index among the node names +
the first ASCII letters of its name (``mec-12newy`` for "New York" at index 12). The
leading digit keeps derived names apart from short names, the index keeps them unique.
"""

from __future__ import annotations

import ipaddress
import math
import re
import unicodedata
from dataclasses import dataclass, field, fields, replace
from typing import Any, Iterator, Mapping, Optional, Union

import networkx as nx

from mec.core import config

#: Short names: used in machine names as they are (``PREFIX-name`` fits 15 characters).
NAME_RE = re.compile(r"[a-z][a-z0-9]{0,5}")
#: Longest site or node name.
MAX_NAME = 64
NAME_RULE = (f"any text of 1-{MAX_NAME} characters (spaces, capitals, accents allowed) "
             "without control characters or leading/trailing spaces")


def name_problem(value: object) -> Optional[str]:
    """Why VALUE is not a valid site/node name (None when it is one)."""
    if not isinstance(value, str):
        return f"must be a name ({NAME_RULE}); got {type_name(value)} {value!r}"
    if not value:
        return f"empty name (names: {NAME_RULE})"
    if len(value) > MAX_NAME:
        return f"too long: {len(value)} characters (names: {NAME_RULE})"
    if value != value.strip():
        return f"leading or trailing space in {value!r} (names: {NAME_RULE})"
    if any(unicodedata.category(ch).startswith("C") for ch in value):
        return f"control character in {value!r} (names: {NAME_RULE})"
    return None


def ascii_letters(name: str) -> str:
    """The ASCII letters of NAME, lower-case, accents dropped ("São Paulo" -> "saopaulo")."""
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return "".join(ch for ch in plain.lower() if "a" <= ch <= "z")


def machine_rest(name: str, index: int, room: int) -> str:
    """The part after ``PREFIX-`` of the machine name of NAME (node number INDEX), at most
    ROOM characters: NAME itself when it is short (:data:`NAME_RE`) and fits, else INDEX
    followed by as many of NAME's ASCII letters as fit."""
    if NAME_RE.fullmatch(name) and len(name) <= room:
        return name
    digits = str(index)
    if len(digits) > room:
        raise ValueError(f"no machine name fits for node number {index} in {room} characters")
    return digits + ascii_letters(name)[:room - len(digits)]
#: Longest machine name (bridge / host) so that ``NAME-eth99`` fits in 15 characters.
MAX_MACHINE_NAME = 15 - len("-eth99")

DEFAULT_SUBNET = ipaddress.IPv4Network("10.0.0.0/16")
#: Third-octet offsets (in units of 256 addresses) of the auto-assigned ranges.
CLOUDLET_BLOCK, UE_BLOCK, CLOUD_BLOCK, VIP_BLOCK = 1, 2, 3, 100
#: Largest host index inside one /24 block (x.x.x.1 .. x.x.x.254).
BLOCK_HOSTS = 254

#: Limits of LinkParams fields: (low, low_inclusive, high) -- high is always inclusive.
LIMITS: dict[str, tuple[float, bool, float]] = {
    "bw_mbps": (0, False, 10000),
    "delay_ms": (0, True, 10000),
    "jitter_ms": (0, True, 10000),
    "loss_pct": (0, True, 100),
    "queue_pkts": (1, True, 100000),
}


def _fmt(x: float) -> str:
    return f"{x:g}"


def type_name(v: Any) -> str:
    """YAML-ish name of a value's type, for error messages."""
    names = {"str": "string", "dict": "mapping", "list": "list", "bool": "boolean", "int": "integer", "float": "number"}
    return "null" if v is None else names.get(type(v).__name__, type(v).__name__)


def link_param_problems(values: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Check link parameter values; return ``(field, message)`` pairs (empty when fine).

    ``values`` maps LinkParams field names to values (missing fields are not checked).
    Used by :class:`LinkParams` itself and by the loader, which adds file/entry context.
    """
    problems: list[tuple[str, str]] = []
    for key, (low, low_incl, high) in LIMITS.items():
        if key not in values:
            continue
        v = values[key]
        if v is None and key in ("bw_mbps", "queue_pkts"):
            continue
        want_int = key == "queue_pkts"
        if isinstance(v, bool) or not isinstance(v, (int, float)) or (want_int and not isinstance(v, int)):
            kind = "an integer" if want_int else "a number"
            none = " or null (unshaped)" if key == "bw_mbps" else " or null (default)" if want_int else ""
            problems.append((key, f"must be {kind}{none}; got {type_name(v)} {v!r}"))
            continue
        if v != v or (v < low if low_incl else v <= low) or v > high:
            lo = f"{_fmt(low)} <= " if low_incl else f"{_fmt(low)} < "
            unit = key.rsplit("_", 1)[1]
            unit = {"mbps": "Mbit/s", "pct": "%", "pkts": "packets"}.get(unit, unit)
            problems.append((key, f"{_fmt(v)} is out of range (allowed: {lo}{key} <= {_fmt(high)} {unit})"))
    jitter, delay = values.get("jitter_ms"), values.get("delay_ms", 0)
    if (
        isinstance(jitter, (int, float)) and isinstance(delay, (int, float))
        and not isinstance(jitter, bool) and not isinstance(delay, bool)
        and not any(k in ("jitter_ms", "delay_ms") for k, _ in problems) and jitter > delay
    ):
        problems.append(("jitter_ms", f"{_fmt(jitter)} is larger than delay_ms {_fmt(delay)} (jitter must be <= delay)"))
    return problems


@dataclass(frozen=True)
class LinkParams:
    """Shaping of one emulated link.

    - ``bw_mbps``: rate limit in Mbit/s in each direction; ``None`` = unshaped.
    - ``delay_ms``: the ROUND-TRIP time the link adds. The delay line applies half
      of it in each direction, so a ping across one ``mec`` link (50 ms) reads about
      50 ms, as with the paper's tc set-up. A path's delay is the sum of its links'
      ``delay_ms``.
    - ``jitter_ms``: round-trip jitter (half per direction), at most ``delay_ms``.
    - ``loss_pct``: packet loss in percent, applied in each direction.
    - ``queue_pkts``: queue limit in packets; ``None`` = the shaper's default.
    """

    bw_mbps: Optional[float] = None
    delay_ms: float = 0
    jitter_ms: float = 0
    loss_pct: float = 0
    queue_pkts: Optional[int] = None

    def __post_init__(self) -> None:
        problems = link_param_problems({f.name: getattr(self, f.name) for f in fields(self)})
        if problems:
            raise ValueError("; ".join(f"{k}: {m}" for k, m in problems))

    @property
    def one_way_delay_ms(self) -> float:
        """Delay applied in each direction (half the round-trip ``delay_ms``)."""
        return self.delay_ms / 2

    @property
    def shaped(self) -> bool:
        """True when the link needs any shaping at all."""
        return bool(self.bw_mbps is not None or self.delay_ms or self.jitter_ms or self.loss_pct)

    def with_overrides(self, **overrides: Any) -> "LinkParams":
        """A copy with some fields replaced (validated)."""
        return replace(self, **overrides)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def describe(self) -> str:
        """Short human form, e.g. ``25 Mbit/s, 50 ms RTT``."""
        parts = ["unshaped" if self.bw_mbps is None else f"{_fmt(self.bw_mbps)} Mbit/s"]
        parts.append(f"{_fmt(self.delay_ms)} ms RTT")
        if self.jitter_ms:
            parts.append(f"±{_fmt(self.jitter_ms)} ms")
        if self.loss_pct:
            parts.append(f"{_fmt(self.loss_pct)}% loss")
        if self.queue_pkts is not None:
            parts.append(f"queue {self.queue_pkts}")
        return ", ".join(parts)


#: Built-in link profiles (a topology file may add profiles or override fields).
PROFILES: dict[str, LinkParams] = {
    # Paper: MEC backbone between edges, 25 Mbit/s and 50 ms (tc set-up of Sec. V).
    "mec": LinkParams(bw_mbps=25, delay_ms=50),
    # Paper: data-centre interconnect, 100 Mbit/s.
    "dc": LinkParams(bw_mbps=100, delay_ms=0),
    # Path from the edge to the cloud image registry (stand-in for Docker Hub).
    "wan": LinkParams(bw_mbps=100, delay_ms=20),
    # Cloudlet to the access point of its site.
    "lan": LinkParams(bw_mbps=1000, delay_ms=0),
    # UE radio link stand-in.
    "access": LinkParams(bw_mbps=None, delay_ms=0),
}
#: Profile used when an entry gives none.
DEFAULT_PROFILE = {"link": "mec", "cloudlet": "lan", "ue": "access", "cloud": "wan"}


@dataclass(frozen=True)
class Cloudlet:
    """An edge node (its own Docker engine) attached to its site's access point.

    ``cpus``/``memory_mb`` are the capacity limits the orchestrator may place
    containers within (``None`` = unlimited); ``link`` shapes cloudlet <-> AP.
    """

    name: str
    site: str
    ip: str
    cpus: Optional[float] = None
    memory_mb: Optional[int] = None
    link: LinkParams = PROFILES["lan"]


#: Handover modes: the old radio link is released before the new one is up, or after.
HANDOVER_MODES = ("break-before-make", "make-before-break")
#: Largest radio interruption a topology may ask for (ms).
MAX_RADIO_INTERRUPTION_MS = 10000.0


@dataclass(frozen=True)
class Handover:
    """The emulated radio's handover (see docs/topology-format.md, ``handover``).

    - ``radio_interruption_ms``: break-before-make: the time the UE has no radio link
      (the old link is down, the new one not yet up); make-before-break: the time the
      UE keeps the old link after the new one is up (no interruption by the radio).
      Default 27.5 ms: ITU-R M.2134's intra-frequency handover interruption time,
      the figure LTE-Advanced (X2 hard handover) was evaluated against.
    - ``mode``: ``break-before-make`` (LTE hard handover) or ``make-before-break``.
    """

    radio_interruption_ms: float = 27.5
    mode: str = "break-before-make"

    def __post_init__(self) -> None:
        if self.mode not in HANDOVER_MODES:
            raise ValueError(f"handover mode {self.mode!r}: use one of {', '.join(HANDOVER_MODES)}")
        ms = self.radio_interruption_ms
        if isinstance(ms, bool) or not isinstance(ms, (int, float)) \
                or not 0 <= ms <= MAX_RADIO_INTERRUPTION_MS:
            raise ValueError(f"radio_interruption_ms {ms!r}: a number of ms, 0 <= ms <= "
                             f"{MAX_RADIO_INTERRUPTION_MS:g}")

    def to_dict(self) -> dict[str, Any]:
        return {"radio_interruption_ms": self.radio_interruption_ms, "mode": self.mode}


@dataclass(frozen=True)
class Site:
    """An access point (one OVS switch) with the cloudlets attached to it.

    ``position``: where it stands, ``(x, y)`` in metres on the plane UEs move in (from the
    file's ``position``, or projected from its ``lonlat``; see :func:`project_lonlat`);
    `mec view` draws it there (None: a computed layout). ``lonlat``: (longitude,
    latitude) in degrees when the file gave them. ``coverage_m``: radio range in metres
    (None: not an access point for position-based attachment). ``tx_power_dbm``: its
    transmit power for the ``strongest`` attachment policy (None: the policy's default).
    ``server``: the server (of the topology's ``servers``) whose switch it is, or None.
    """

    name: str
    cloudlets: tuple[Cloudlet, ...] = ()
    position: Optional[tuple[float, float]] = None
    lonlat: Optional[tuple[float, float]] = None
    coverage_m: Optional[float] = None
    tx_power_dbm: Optional[float] = None
    server: Optional[str] = None  # which of the topology's servers runs it (docs/scale-out.md)


#: Attachment policies of a UE moving on the plane.
ATTACH_POLICIES = ("nearest", "strongest")


@dataclass(frozen=True)
class Attachment:
    """How a UE with a position picks its access point (docs/mobility.md).

    Among the access points whose ``coverage_m`` reaches the UE, ``nearest`` scores each
    by minus its distance (``margin`` in metres), ``strongest`` by its received power in
    dBm under the log-distance path-loss model (``margin`` in dB):
    ``P = tx_power_dbm - ref_loss_db - 10 * path_loss_exponent * log10(d / 1 m)``
    (Rappaport, *Wireless Communications*, 2nd ed., Sec. 4.9.1; 40 dB at 1 m is free
    space at 2.4 GHz). Hysteresis: the UE hands over only to an access point better than
    the serving one by more than ``margin``, and not within ``min_dwell_s`` of its last
    attachment; out of the serving one's range it goes to the best in range at once, or
    is detached when none reaches it.
    """

    policy: str = "nearest"
    margin: float = 0.0
    min_dwell_s: float = 0.0
    tx_power_dbm: float = 20.0
    ref_loss_db: float = 40.0
    path_loss_exponent: float = 3.0

    def __post_init__(self) -> None:
        if self.policy not in ATTACH_POLICIES:
            raise ValueError(f"attachment policy {self.policy!r}: use one of {', '.join(ATTACH_POLICIES)}")


#: Mean Earth radius (IUGG), metres.
EARTH_RADIUS_M = 6_371_008.8


def project_lonlat(points: Mapping[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
    """(x, y) metres of (longitude, latitude) points: equirectangular projection about
    their mean point (x east, y north; good to a fraction of a percent over a city or a
    country, stretched at continental scale)."""
    if not points:
        return {}
    lon0 = sum(p[0] for p in points.values()) / len(points)
    lat0 = sum(p[1] for p in points.values()) / len(points)
    k = math.pi / 180 * EARTH_RADIUS_M
    return {n: (round((lon - lon0) * k * math.cos(math.radians(lat0)), 3), round((lat - lat0) * k, 3))
            for n, (lon, lat) in points.items()}


@dataclass(frozen=True)
class UE:
    """A user device; ``site`` is where it attaches at start (mobility moves it)."""

    name: str
    site: str
    ip: str
    link: LinkParams = PROFILES["access"]
    handover: Optional[Handover] = None  # None: the topology's


@dataclass(frozen=True)
class Cloud:
    """The cloud node running the image registry, attached to ``site``'s switch via ``link``."""

    name: str
    site: str
    ip: str
    link: LinkParams = PROFILES["wan"]


@dataclass(frozen=True)
class Link:
    """A backbone link between the switches of sites ``a`` and ``b``.

    ``profile`` names the profile the parameters came from (``None`` if given directly).
    """

    a: str
    b: str
    params: LinkParams
    profile: Optional[str] = None

    @property
    def ends(self) -> frozenset[str]:
        return frozenset((self.a, self.b))


@dataclass(frozen=True)
class MobilitySpec:
    """A UE's default mobility as written in a topology file (expanded by topologies.mobility,
    the position-based ones by topologies.coverage).

    Exactly one of ``moves`` (``(time_s, site)`` pairs), ``random_walk`` (keys
    ``interval_s``, ``count``, ``seed``, ``start``), ``trace`` (CSV path, resolved
    relative to the topology file), ``positions`` (a position source: SUMO FCD, CSV of
    positions, random waypoint, Gauss-Markov) or ``associations`` (an access-point
    association log) is set.
    """

    ue: str
    moves: Optional[tuple[tuple[float, str], ...]] = None
    random_walk: Optional[Mapping[str, Any]] = field(default=None, hash=False)
    trace: Optional[str] = None
    positions: Optional[Mapping[str, Any]] = field(default=None, hash=False)
    associations: Optional[Any] = field(default=None, hash=False)


class TopologyError(ValueError):
    """A topology (or mobility schedule) is invalid; ``.errors`` lists every problem, one line each.

    Each line names the file, the entry (e.g. ``links[1].b``) and what is allowed.
    """

    def __init__(self, errors: Union[str, list[str]]):
        self.errors: list[str] = [errors] if isinstance(errors, str) else list(errors)
        super().__init__("\n".join(self.errors))


class UnknownName(KeyError):
    """A lookup by name failed; the message lists what exists."""

    def __str__(self) -> str:  # KeyError would show the repr of the message
        return str(self.args[0]) if self.args else "unknown name"


Node = Union[Cloudlet, UE, Cloud]


def mac_for(ip: str) -> str:
    """Deterministic locally-administered unicast MAC for an IPv4 address (02:00:a:b:c:d)."""
    octets = ipaddress.IPv4Address(ip).packed
    return "02:00:" + ":".join(f"{b:02x}" for b in octets)


def block_address(subnet: ipaddress.IPv4Network, block: int, index: int) -> ipaddress.IPv4Address:
    """Address ``index`` (1..254) of /24 block ``block`` of ``subnet`` (e.g. 10.0.1.index)."""
    if not 1 <= index <= BLOCK_HOSTS:
        raise ValueError(f"address index {index} out of range 1..{BLOCK_HOSTS}")
    return subnet.network_address + block * 256 + index


def vip(index: int, subnet: Union[str, ipaddress.IPv4Network] = DEFAULT_SUBNET) -> str:
    """Service virtual IP number ``index`` (0-based): 10.0.100.1, 10.0.100.2, ... for the default subnet."""
    net = ipaddress.IPv4Network(subnet)
    if not 0 <= index < BLOCK_HOSTS:
        raise ValueError(f"virtual IP index {index} out of range 0..{BLOCK_HOSTS - 1}")
    return str(block_address(net, VIP_BLOCK, index + 1))


def vip_subnet_of(subnet: Union[str, ipaddress.IPv4Network]) -> ipaddress.IPv4Network:
    """The /24 of ``subnet`` reserved for service virtual IPs (10.0.100.0/24 by default)."""
    net = ipaddress.IPv4Network(subnet)
    return ipaddress.IPv4Network((int(net.network_address) + VIP_BLOCK * 256, 24))


@dataclass(frozen=True)
class Topology:
    """A validated MEC network: sites (switches) with cloudlets, UEs, the cloud and backbone links.

    Build it with ``topologies.loader.load(path)`` / ``from_dict(data, source)``, which
    validate everything; constructing it directly is possible (``source='<python>'``)
    but only checks the basics.
    """

    name: str
    source: str
    subnet: ipaddress.IPv4Network
    sites: tuple[Site, ...]
    ues: tuple[UE, ...]
    cloud: Cloud
    links: tuple[Link, ...]
    vip_subnet: Optional[ipaddress.IPv4Network] = None
    mobility: tuple[MobilitySpec, ...] = ()
    profiles: Mapping[str, LinkParams] = field(default_factory=lambda: dict(PROFILES), hash=False)
    handover: Handover = Handover()
    attachment: Attachment = Attachment()
    #: The servers the sites are placed on (``servers:``; empty: one machine).
    servers: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.vip_subnet is None:
            object.__setattr__(self, "vip_subnet", vip_subnet_of(self.subnet))
        names = self.node_names()
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise ValueError(f"duplicate names: {', '.join(dup)}")
        for link in self.links:
            for end in (link.a, link.b):
                self.site(end)

    # ---- lookups -----------------------------------------------------------------
    @property
    def site_names(self) -> list[str]:
        return [s.name for s in self.sites]

    @property
    def cloudlets(self) -> tuple[Cloudlet, ...]:
        """All cloudlets, site by site in file order."""
        return tuple(c for s in self.sites for c in s.cloudlets)

    def node_names(self) -> list[str]:
        """Every name in the shared namespace: sites, cloudlets, UEs, cloud."""
        return self.site_names + [c.name for c in self.cloudlets] + [u.name for u in self.ues] + [self.cloud.name]

    def hosts(self) -> Iterator[Node]:
        """Every host node: cloudlets, UEs, then the cloud."""
        yield from self.cloudlets
        yield from self.ues
        yield self.cloud

    @staticmethod
    def _unknown(kind: str, name: str, known: list[str]) -> UnknownName:
        return UnknownName(f"unknown {kind} {name!r} (known {kind}s: {', '.join(known) or 'none'})")

    def site(self, name: str) -> Site:
        for s in self.sites:
            if s.name == name:
                return s
        raise self._unknown("site", name, self.site_names)

    def cloudlet(self, name: str) -> Cloudlet:
        for c in self.cloudlets:
            if c.name == name:
                return c
        raise self._unknown("cloudlet", name, [c.name for c in self.cloudlets])

    def ue(self, name: str) -> UE:
        for u in self.ues:
            if u.name == name:
                return u
        raise self._unknown("UE", name, [u.name for u in self.ues])

    def node(self, name: str) -> Node:
        """A cloudlet, UE or the cloud by name."""
        for n in self.hosts():
            if n.name == name:
                return n
        raise self._unknown("node", name, [n.name for n in self.hosts()])

    def access_points(self) -> tuple[Site, ...]:
        """Sites with a position and a coverage radius (position-based attachment)."""
        return tuple(s for s in self.sites if s.position is not None and s.coverage_m)

    def handover_of(self, ue: str) -> Handover:
        """UE's radio handover: its own ``handover`` or else the topology's."""
        return self.ue(ue).handover or self.handover

    def cloudlets_at(self, site: str) -> tuple[Cloudlet, ...]:
        return self.site(site).cloudlets

    def site_of_cloudlet(self, name: str) -> str:
        return self.cloudlet(name).site

    def link_between(self, a: str, b: str) -> Link:
        self.site(a), self.site(b)
        for link in self.links:
            if link.ends == {a, b}:
                return link
        raise UnknownName(f"no link between sites {a!r} and {b!r} (neighbours of {a}: {', '.join(self.neighbours(a)) or 'none'})")

    # ---- graph -------------------------------------------------------------------
    def graph(self) -> nx.Graph:
        """Sites as nodes; links as edges with ``delay_ms``, ``bw_mbps``, ``params``, ``profile``."""
        g = nx.Graph()
        g.add_nodes_from(self.site_names)
        for link in self.links:
            g.add_edge(link.a, link.b, delay_ms=link.params.delay_ms, bw_mbps=link.params.bw_mbps,
                       params=link.params, profile=link.profile)
        return g

    def neighbours(self, site: str) -> list[str]:
        """Sites one link away from ``site``, sorted by name."""
        self.site(site)
        return sorted(b if a == site else a for a, b in ((l.a, l.b) for l in self.links) if site in (a, b))

    def path(self, a: str, b: str) -> list[str]:
        """Sites along the minimum-delay path from ``a`` to ``b`` (ties: fewest hops)."""
        self.site(a), self.site(b)
        g = self.graph()
        try:
            # tiny per-hop epsilon: among equal-delay paths prefer the shorter one
            return nx.shortest_path(g, a, b, weight=lambda u, v, d: d["delay_ms"] + 1e-6)
        except nx.NetworkXNoPath:
            raise UnknownName(f"no path between sites {a!r} and {b!r}") from None

    def path_delay_ms(self, a: str, b: str) -> float:
        """Round-trip delay of the minimum-delay path between sites (sum of links' ``delay_ms``)."""
        p = self.path(a, b)
        return float(sum(self.link_between(u, v).params.delay_ms for u, v in zip(p, p[1:])))

    def hops(self, a: str, b: str) -> int:
        """Number of links on the fewest-hop path between sites ``a`` and ``b``."""
        self.site(a), self.site(b)
        try:
            return nx.shortest_path_length(self.graph(), a, b)
        except nx.NetworkXNoPath:
            raise UnknownName(f"no path between sites {a!r} and {b!r}") from None

    def delay_to_cloudlet_ms(self, site: str, cloudlet: str) -> float:
        """Round-trip delay from a UE attached at ``site`` to ``cloudlet`` (backbone + cloudlet link)."""
        c = self.cloudlet(cloudlet)
        return self.path_delay_ms(site, c.site) + c.link.delay_ms

    # ---- machine identities ------------------------------------------------------
    def _machine_name(self, name: str) -> str:
        names = self.node_names()
        if name not in names:
            raise self._unknown("node or site", name, names)
        room = MAX_MACHINE_NAME - len(config.name())
        try:
            return config.name(machine_rest(name, names.index(name), room))
        except ValueError:
            raise ValueError(f"too many nodes for prefix {config.PREFIX!r}") from None

    def machine_names(self) -> dict[str, str]:
        """Every site and node name -> its machine name (bridge or host), in file order."""
        return {n: self._machine_name(n) for n in self.node_names()}

    def switch_name(self, site: str) -> str:
        """OVS bridge name of ``site``'s access point: ``PREFIX-site`` or a derived name
        (<= 9 chars, room for -eth99; see :func:`machine_rest`)."""
        self.site(site)
        return self._machine_name(site)

    def host_name(self, node: str) -> str:
        """Mininet host name of a cloudlet/UE/cloud: ``PREFIX-name`` or a derived name (<= 9 chars)."""
        self.node(node)
        return self._machine_name(node)

    def dpid(self, site: str) -> str:
        """OpenFlow datapath id of ``site``'s switch: its 1-based index as 16 hex digits."""
        self.site(site)
        return f"{self.site_names.index(site) + 1:016x}"

    def site_of_dpid(self, dpid: Union[str, int]) -> str:
        """Inverse of :meth:`dpid` (accepts the hex string or the integer)."""
        n = int(dpid, 16) if isinstance(dpid, str) else int(dpid)
        if not 1 <= n <= len(self.sites):
            raise UnknownName(f"no site has datapath id {n:016x} (ids 1..{len(self.sites)})")
        return self.sites[n - 1].name

    def vip(self, index: int) -> str:
        """Service virtual IP number ``index`` (0-based) from :attr:`vip_subnet`."""
        net = self.vip_subnet
        assert net is not None
        count = net.num_addresses - 2  # no network / broadcast address
        if not 0 <= index < count:
            raise ValueError(f"virtual IP index {index} out of range 0..{count - 1}")
        return str(net.network_address + 1 + index)

    def mac(self, node: str) -> str:
        """MAC of a cloudlet/UE/cloud (derived from its IP)."""
        return mac_for(self.node(node).ip)

    def summary(self) -> str:
        """One line: counts of sites, cloudlets, UEs, links and where the cloud is."""
        def n(k: int, word: str) -> str:
            return f"{k} {word}{'' if k == 1 else 's'}"
        return (f"{n(len(self.sites), 'site')}, {n(len(self.cloudlets), 'cloudlet')}, "
                f"{n(len(self.ues), 'UE')}, {n(len(self.links), 'link')}, "
                f"cloud {self.cloud.name!r} at {self.cloud.site}")
