"""Data model of the Network Manager and validation of what clients send.

Everything that arrives over REST is parsed here into dataclasses; anything
malformed raises :class:`RequestError` carrying the HTTP status and a message
meant for a human (the REST layer turns it into ``{"error": ...}``).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import asdict, dataclass, field
from typing import Any

HOST_KINDS: tuple[str, ...] = ("ue", "cloudlet", "cloud")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
#: Site and host names: text as people write it (topology files allow spaces, capitals,
#: accents), 1-64 characters, no control characters, no surrounding spaces.
_PLACE_RE = re.compile(r"^(?=\S)[^\x00-\x1f\x7f-\x9f]{1,64}(?<=\S)$")
_MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
#: Transport protocols a service may speak (steering matches their ports).
PROTOCOLS: tuple[str, ...] = ("tcp", "udp")


class RequestError(Exception):
    """A client error: HTTP status (4xx) and message."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class NotFound(RequestError):
    def __init__(self, message: str) -> None:
        super().__init__(message, 404)


@dataclass
class Switch:
    """A switch the app controls: its name in the topology and its OVS bridge (if different)."""

    name: str
    dpid: int
    bridge: str = ""

    def __post_init__(self) -> None:
        self.bridge = self.bridge or self.name


@dataclass
class Link:
    a_dpid: int
    a_port: int
    b_dpid: int
    b_port: int


@dataclass
class Host:
    """A host attached to an access-point/site switch port (its current location).

    ``ports``: every ``[dpid, port]`` where the host may attach (a UE wired to several
    access points, one link up at a time); a port among them coming up (OpenFlow port
    status) is the host's attach signal. Empty: the host is located by its packets."""

    name: str
    ip: str
    mac: str
    dpid: int
    port: int
    kind: str = "ue"
    ports: list[list[int]] = field(default_factory=list)


@dataclass
class Service:
    """A service reached at a virtual IP/MAC and a TCP or UDP port; ``primary`` is a host name."""

    name: str
    vip: str
    vmac: str
    port: int
    primary: str | None = None
    protocol: str = "tcp"


@dataclass
class Topology:
    switches: list[Switch] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)
    hosts: list[Host] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "switches": [asdict(s) for s in self.switches],
            "links": [asdict(link) for link in self.links],
            "hosts": [asdict(h) for h in self.hosts],
        }


# ---------------------------------------------------------------- field parsers
def _obj(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise RequestError(f"{what} must be a JSON object, got {type(value).__name__}")
    return value


def _list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise RequestError(f"{what} must be a JSON list, got {type(value).__name__}")
    return value


def _field(d: dict[str, Any], key: str, what: str, required: bool = True) -> Any:
    if key not in d:
        if required:
            raise RequestError(f"{what}: missing field {key!r}")
        return None
    return d[key]


def parse_name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not _NAME_RE.match(value):
        raise RequestError(
            f"{what}: name must be a string of letters, digits, '_', '.', '-' (got {value!r})"
        )
    return value


def parse_place_name(value: Any, what: str) -> str:
    """A site or host name as the topology file writes it ("New York", "Ana's phone")."""
    if not isinstance(value, str) or not _PLACE_RE.match(value):
        raise RequestError(
            f"{what}: name must be 1-64 characters without control characters or surrounding "
            f"spaces (got {value!r})"
        )
    return value


def parse_int(value: Any, what: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise RequestError(f"{what} must be an integer, got {value!r}")
    if not lo <= value <= hi:
        raise RequestError(f"{what} must be in {lo}..{hi}, got {value}")
    return value


def parse_dpid(value: Any, what: str = "dpid") -> int:
    """A datapath id: an integer, or a string of hex digits (Ryu/Mininet style)."""
    if isinstance(value, str):
        text = value.strip().lower().replace(":", "")
        if text.startswith("0x"):
            text = text[2:]
        if not text or len(text) > 16 or not re.fullmatch(r"[0-9a-f]+", text):
            raise RequestError(f"{what} must be an integer or up to 16 hex digits, got {value!r}")
        value = int(text, 16)
    return parse_int(value, what, 1, 2**64 - 1)


def parse_ipv4(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise RequestError(f"{what} must be an IPv4 address string, got {value!r}")
    try:
        return str(ipaddress.IPv4Address(value))
    except ValueError:
        raise RequestError(f"{what} is not an IPv4 address: {value!r}") from None


def parse_mac(value: Any, what: str) -> str:
    if not isinstance(value, str) or not _MAC_RE.match(value.lower()):
        raise RequestError(f"{what} is not a MAC address (aa:bb:cc:dd:ee:ff): {value!r}")
    return value.lower()


def vmac_for(vip: str) -> str:
    """Derive a locally administered virtual MAC from a virtual IP (02:00:a.b.c.d)."""
    octets = ipaddress.IPv4Address(vip).packed
    return "02:00:" + ":".join(f"{b:02x}" for b in octets)


# ---------------------------------------------------------------- documents
def parse_topology(doc: Any) -> Topology:
    """Parse ``PUT /mec/topology``; checks references and uniqueness."""
    doc = _obj(doc, "topology")
    unknown = set(doc) - {"switches", "links", "hosts"}
    if unknown:
        raise RequestError(f"topology: unknown fields {sorted(unknown)}")
    topo = Topology()
    names: set[str] = set()
    for i, s in enumerate(_list(doc.get("switches", []), "switches")):
        s = _obj(s, f"switches[{i}]")
        sw = Switch(
            parse_place_name(_field(s, "name", f"switches[{i}]"), f"switches[{i}].name"),
            parse_dpid(_field(s, "dpid", f"switches[{i}]"), f"switches[{i}].dpid"),
            parse_name(s["bridge"], f"switches[{i}].bridge") if "bridge" in s else "",
        )
        if sw.name in names or any(o.dpid == sw.dpid for o in topo.switches):
            raise RequestError(f"switches[{i}]: duplicate name or dpid ({sw.name}, {sw.dpid})")
        names.add(sw.name)
        topo.switches.append(sw)
    dpids = {s.dpid for s in topo.switches}
    used_ports: set[tuple[int, int]] = set()
    for i, link in enumerate(_list(doc.get("links", []), "links")):
        w = f"links[{i}]"
        link = _obj(link, w)
        lk = Link(
            parse_dpid(_field(link, "a_dpid", w), f"{w}.a_dpid"),
            parse_int(_field(link, "a_port", w), f"{w}.a_port", 1, 0xFFFFFF00),
            parse_dpid(_field(link, "b_dpid", w), f"{w}.b_dpid"),
            parse_int(_field(link, "b_port", w), f"{w}.b_port", 1, 0xFFFFFF00),
        )
        for dp in (lk.a_dpid, lk.b_dpid):
            if dp not in dpids:
                raise RequestError(f"{w}: unknown switch dpid {dp}")
        if lk.a_dpid == lk.b_dpid:
            raise RequestError(f"{w}: a link must join two different switches")
        for end in ((lk.a_dpid, lk.a_port), (lk.b_dpid, lk.b_port)):
            if end in used_ports:
                raise RequestError(f"{w}: port {end[1]} of dpid {end[0]} used twice")
            used_ports.add(end)
        topo.links.append(lk)
    ips: set[str] = set()
    macs: set[str] = set()
    for i, h in enumerate(_list(doc.get("hosts", []), "hosts")):
        w = f"hosts[{i}]"
        h = _obj(h, w)
        kind = h.get("kind", "ue")
        if kind not in HOST_KINDS:
            raise RequestError(f"{w}.kind must be one of {list(HOST_KINDS)}, got {kind!r}")
        host = Host(
            parse_place_name(_field(h, "name", w), f"{w}.name"),
            parse_ipv4(_field(h, "ip", w), f"{w}.ip"),
            parse_mac(_field(h, "mac", w), f"{w}.mac"),
            parse_dpid(_field(h, "dpid", w), f"{w}.dpid"),
            parse_int(_field(h, "port", w), f"{w}.port", 1, 0xFFFFFF00),
            kind,
        )
        for j, p in enumerate(_list(h.get("ports", []), f"{w}.ports")):
            p = _obj(p, f"{w}.ports[{j}]")
            host.ports.append([parse_dpid(_field(p, "dpid", f"{w}.ports[{j}]"), f"{w}.ports[{j}].dpid"),
                               parse_int(_field(p, "port", f"{w}.ports[{j}]"), f"{w}.ports[{j}].port",
                                         1, 0xFFFFFF00)])
        if host.dpid not in dpids:
            raise RequestError(f"{w}: unknown switch dpid {host.dpid}")
        if (host.dpid, host.port) in used_ports:
            raise RequestError(f"{w}: port {host.port} of dpid {host.dpid} is a link port")
        if host.name in names or host.ip in ips or host.mac in macs:
            raise RequestError(f"{w}: duplicate name, ip or mac ({host.name})")
        names.add(host.name)
        ips.add(host.ip)
        macs.add(host.mac)
        topo.hosts.append(host)
    return topo


def parse_service(doc: Any) -> Service:
    """Parse ``POST /mec/services``."""
    doc = _obj(doc, "service")
    unknown = set(doc) - {"name", "vip", "vmac", "port", "primary", "protocol"}
    if unknown:
        raise RequestError(f"service: unknown fields {sorted(unknown)}")
    vip = parse_ipv4(_field(doc, "vip", "service"), "service.vip")
    vmac = doc.get("vmac")
    svc = Service(
        parse_name(_field(doc, "name", "service"), "service.name"),
        vip,
        parse_mac(vmac, "service.vmac") if vmac is not None else vmac_for(vip),
        parse_int(_field(doc, "port", "service"), "service.port", 1, 65535),
    )
    primary = doc.get("primary")
    if primary is not None:
        if not isinstance(primary, str):
            raise RequestError("service.primary must be a host name or IP string")
        svc.primary = primary
    protocol = doc.get("protocol", "tcp")
    if protocol not in PROTOCOLS:
        raise RequestError(f"service.protocol must be one of {list(PROTOCOLS)}, got {protocol!r}")
    svc.protocol = protocol
    return svc


MAX_DRAIN_S = 600.0


def parse_drain_s(value: Any, what: str = "drain_s") -> float:
    """A drain period in seconds: a number in 0..MAX_DRAIN_S (0 = no drain)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RequestError(f"{what} must be a number of seconds, got {value!r}")
    if not 0 <= value <= MAX_DRAIN_S:
        raise RequestError(f"{what} must be in 0..{MAX_DRAIN_S:g}, got {value}")
    return float(value)


def parse_primary(doc: Any) -> tuple[str, str | None, float | None]:
    """Parse ``PUT /mec/services/<name>/primary`` -> (replica, ue or None, drain_s or None)."""
    doc = _obj(doc, "primary request")
    unknown = set(doc) - {"replica", "ue", "drain_s"}
    if unknown:
        raise RequestError(f"primary request: unknown fields {sorted(unknown)}")
    replica = _field(doc, "replica", "primary request")
    if not isinstance(replica, str) or not replica:
        raise RequestError(f"replica must be a host name or IP string, got {replica!r}")
    ue = doc.get("ue")
    if ue is not None and (not isinstance(ue, str) or not ue):
        raise RequestError(f"ue must be a host name string, got {ue!r}")
    drain = doc.get("drain_s")
    return replica, ue, parse_drain_s(drain) if drain is not None else None


def parse_policy(doc: Any) -> dict[str, str]:
    """Parse ``PUT /mec/policy/<service>``: ``{"sites": {"<switch>": "<replica>"}}``."""
    doc = _obj(doc, "policy")
    sites = _obj(_field(doc, "sites", "policy"), "policy.sites")
    out: dict[str, str] = {}
    for site, replica in sites.items():
        if not isinstance(replica, str) or not replica:
            raise RequestError(f"policy.sites[{site!r}] must be a replica host name")
        out[site] = replica
    return out
