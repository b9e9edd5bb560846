"""Read and validate topology files (YAML) into :class:`topologies.model.Topology`.

Everything is checked before anything is built; all problems are collected and
raised together as one :class:`TopologyError` (``.errors``: one line each, of the
form ``FILE: ENTRY: problem (what is allowed)``, e.g.
``topologies/bad.yaml: links[1].b: unknown site 's9' (known sites: s1, s2, s3)``).

File format (full reference with examples: ``docs/topology-format.md``)::

    name: paper                  # required; free text
    description: ...             # optional; free text
    subnet: 10.0.0.0/16          # optional; IPv4 network /8../17, default 10.0.0.0/16.
                                 # Auto addresses: cloudlets x.x.1.N, UEs x.x.2.N, cloud x.x.3.1
    vip_subnet: 10.0.100.0/24    # optional; service virtual IPs, inside subnet (default x.x.100.0/24)
    profiles:                    # optional; add link profiles or override fields of built-in ones
      slow: {bw_mbps: 10, delay_ms: 80}     # fields: bw_mbps delay_ms jitter_ms loss_pct queue_pkts
      mec: {delay_ms: 60}                   # overrides only delay_ms of built-in 'mec'
    sites:                       # required, non-empty list; one access-point switch each
      - name: s1                 # required; any text, 1-64 characters ("New York")
        cloudlets:               # optional list
          - name: c1             # required
            cpus: 1.0            # optional (> 0), null = unlimited
            memory_mb: 512       # optional int (>= 16), null = unlimited
            ip: 10.0.1.1         # optional; auto-assigned when absent
            link: lan            # optional; profile name or mapping, default 'lan'
    cloud: {name: cloud, site: s1, link: wan}   # optional; defaults: name cloud, first site, 'wan'
    ues:                         # optional list
      - {name: u1, site: s1, ip: ..., link: access}   # name, site required; link default 'access'
    links:                       # backbone links between sites
      - {a: s1, b: s2, profile: mec}                  # profile default 'mec'
      - {a: s2, b: s3, profile: mec, delay_ms: 60}    # any LinkParams field overrides the profile
    handover: {radio_interruption_ms: 27.5, mode: break-before-make}   # optional: the radio
                                 # (0 <= ms <= 10000; mode break-before-make | make-before-break);
                                 # a UE entry may carry its own handover: (overrides these keys)
    mobility:                    # optional default mobility, per UE, exactly one of:
      u1: {moves: [[5.0, s2], [10.0, s3]]}            # (seconds after start, site)
      u2: {random_walk: {interval_s: 5, count: 10, seed: 1, start: s2}}   # seed, start optional
      u3: {trace: moves.csv}     # CSV time_s,ue,site (relative to this file); rows of u3 are used

A ``link:`` of a node is either a profile name or a mapping ``{profile: NAME, <field>: value...}``.
Link parameter limits: 0 < bw_mbps <= 10000 (null = unshaped), 0 <= delay_ms <= 10000
(round trip), 0 <= jitter_ms <= delay_ms, 0 <= loss_pct <= 100, 1 <= queue_pkts <= 100000.
"""

from __future__ import annotations

import difflib
import ipaddress
import math
import re
from pathlib import Path
from typing import Any, Optional, Union

import networkx as nx
import yaml

from topologies import coverage as _coverage
from topologies import mobility as _mobility
from topologies.model import (
    BLOCK_HOSTS, CLOUD_BLOCK, CLOUDLET_BLOCK, DEFAULT_PROFILE, DEFAULT_SUBNET,
    ATTACH_POLICIES, HANDOVER_MODES, MAX_RADIO_INTERRUPTION_MS, PROFILES, Attachment, project_lonlat, UE_BLOCK, Cloud, Cloudlet, Handover, Link, LinkParams, MobilitySpec, Site, Topology,
    TopologyError, UE, block_address, link_param_problems, name_problem, type_name, vip_subnet_of,
)

__all__ = ["load", "from_dict", "TopologyError"]

PARAM_KEYS = ("bw_mbps", "delay_ms", "jitter_ms", "loss_pct", "queue_pkts")
TOP_KEYS = ("name", "description", "subnet", "vip_subnet", "profiles", "sites", "cloud", "ues", "links",
            "handover", "attachment", "mobility", "servers")
SITE_KEYS = ("name", "cloudlets", "position", "lonlat", "coverage_m", "tx_power_dbm", "server")
#: A server: an IPv4 address or a host name (what ssh takes after ``root@``).
SERVER_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})")
ATTACHMENT_KEYS = ("policy", "margin", "min_dwell_s", "tx_power_dbm", "ref_loss_db", "path_loss_exponent")
CLOUDLET_KEYS = ("name", "cpus", "memory_mb", "ip", "link")
UE_KEYS = ("name", "site", "ip", "link", "handover")
HANDOVER_KEYS = ("radio_interruption_ms", "mode")
CLOUD_KEYS = ("name", "site", "ip", "link")
LINK_KEYS = ("a", "b", "profile") + PARAM_KEYS
NODE_LINK_KEYS = ("profile",) + PARAM_KEYS
MOBILITY_KEYS = ("moves", "random_walk", "trace", "positions", "associations")
WALK_KEYS = ("interval_s", "count", "seed", "start")
PROFILE_NAME_RE = re.compile(r"[a-z][a-z0-9_-]{0,31}")
MIN_MEMORY_MB = 16


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate mapping keys (plain YAML keeps the last silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                first = seen.get(key)
            except TypeError:  # unhashable key: let SafeLoader report it
                break
            if first is not None:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}, first at line {first.line + 1}", key_node.start_mark)
            seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


def _yaml_error(path: str, e: yaml.YAMLError) -> TopologyError:
    mark = getattr(e, "problem_mark", None)
    problem = getattr(e, "problem", None) or str(e)
    if mark is None:
        return TopologyError(f"{path}: YAML syntax error: {problem}")
    context, cmark = getattr(e, "context", None), getattr(e, "context_mark", None)
    where = f"column {mark.column + 1}"
    if context and cmark is not None:
        where += f"; {context} started at line {cmark.line + 1}, column {cmark.column + 1}"
    return TopologyError(f"{path}:{mark.line + 1}: YAML syntax error: {problem} ({where})")


def load(path: Union[str, Path]) -> Topology:
    """Read, validate and return the topology in YAML file ``path``."""
    source = str(path)
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise TopologyError(f"{source}: cannot read topology file: {e.strerror or e}") from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass
    except yaml.YAMLError as e:
        raise _yaml_error(source, e) from None
    return from_dict(data, source)


def from_dict(data: Any, source: str = "<python>") -> Topology:
    """Validate already-parsed topology data (as from a YAML file) and build the Topology.

    ``source`` names the origin in error messages and in ``Topology.source``; relative
    trace paths are resolved against its folder when it is a file path.
    """
    return _Builder(source).build(data)


_type_name = type_name


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


class _Builder:
    """One validation pass over a topology's data; collects errors, then builds."""

    def __init__(self, source: str):
        self.source = source
        self.errors: list[str] = []
        self.rejected: set[str] = set()  # names whose definition was invalid (not reported again)
        self.site_names: list[str] = []

    # ---- helpers -----------------------------------------------------------------
    def err(self, where: str, msg: str) -> None:
        self.errors.append(f"{self.source}: {where}: {msg}")

    def mapping(self, value: Any, where: str, allowed: tuple[str, ...], required: tuple[str, ...] = (),
                what: str = "a mapping") -> Optional[dict]:
        """Check ``value`` is a mapping with only ``allowed`` keys and all ``required`` ones."""
        if not isinstance(value, dict):
            self.err(where, f"must be {what} with keys {', '.join(allowed)}; got {_type_name(value)} {value!r}")
            return None
        for key in value:
            if key not in allowed:
                hint = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
                did = f", did you mean {hint[0]!r}?" if hint else ""
                self.err(f"{where}.{key}" if where != "top level" else str(key),
                         f"unknown key{did} (allowed keys: {', '.join(allowed)})")
        for key in required:
            if key not in value:
                self.err(where, f"missing required key {key!r}")
        return value

    def listing(self, value: Any, where: str, what: str) -> list:
        if value is None:
            return []
        if not isinstance(value, list):
            self.err(where, f"must be a list of {what}; got {_type_name(value)} {value!r}")
            return []
        return value

    def name(self, value: Any, where: str) -> Optional[str]:
        problem = name_problem(value)
        if problem is not None:
            if isinstance(value, str):
                self.rejected.add(value)
            self.err(where, problem)
            return None
        return value

    def site_ref(self, value: Any, where: str) -> Optional[str]:
        if isinstance(value, str) and value in self.rejected:
            return None  # its definition was already reported as invalid
        if not isinstance(value, str) or value not in self.site_names:
            shown = repr(value) if isinstance(value, str) else f"{_type_name(value)} {value!r}"
            hint = difflib.get_close_matches(value, self.site_names, n=1) if isinstance(value, str) else []
            did = f", did you mean {hint[0]!r}?" if hint else ""
            self.err(where, f"unknown site {shown}{did} (known sites: {', '.join(self.site_names) or 'none'})")
            return None
        return value

    # ---- sections ----------------------------------------------------------------
    def build(self, data: Any) -> Topology:
        if data is None:
            raise TopologyError(f"{self.source}: file is empty (expected a mapping with keys {', '.join(TOP_KEYS)})")
        top = self.mapping(data, "top level", TOP_KEYS, ("name", "sites"))
        if top is None:
            raise TopologyError(self.errors)
        name = top.get("name")
        if "name" in top and (not isinstance(name, str) or not name.strip()):
            self.err("name", f"must be a non-empty string; got {_type_name(name)} {name!r}")
        if "description" in top and not isinstance(top["description"], str):
            self.err("description", f"must be a string; got {_type_name(top['description'])}")
        self.subnet, self.vip_net = self.parse_subnets(top)
        self.profiles = self.parse_profiles(top.get("profiles"))
        self.handover = self.parse_handover(top.get("handover"), "handover", Handover())
        self.attachment = self.parse_attachment(top.get("attachment"))
        self.names: dict[str, str] = {}  # node/site name -> entry path that defined it
        self.ips: dict[ipaddress.IPv4Address, str] = {}
        servers = self.parse_servers(top.get("servers"))
        sites = self.parse_sites(top.get("sites"))
        self.check_placement(sites, servers, "servers" in top)
        self.site_names = [s["name"] for s in sites if s["name"] is not None]
        self.has_access_points = any(s["coverage_m"] and (s["position"] or s["lonlat"]) for s in sites)
        ues = [u for u in (self.parse_node(v, f"ues[{i}]", UE_KEYS, "ue")
                           for i, v in enumerate(self.listing(top.get("ues"), "ues", "UE mappings"))) if u]
        cloud = self.parse_cloud(top.get("cloud"))
        links = self.parse_links(top.get("links"))
        self.assign_ips(sites, ues, cloud)
        mobility = self.parse_mobility(top.get("mobility"), ues, links)
        if self.errors:
            raise TopologyError(self.errors)
        projected = project_lonlat({s["name"]: s["lonlat"] for s in sites if s["lonlat"] is not None})
        built_sites = tuple(
            Site(s["name"], tuple(Cloudlet(c["name"], s["name"], c["ip"], c["cpus"], c["memory_mb"], c["link"])
                                  for c in s["cloudlets"]), projected.get(s["name"], s["position"]),
                 s["lonlat"], s["coverage_m"], s["tx_power_dbm"], s["server"])
            for s in sites)
        return Topology(
            name=name.strip(), source=self.source, subnet=self.subnet, sites=built_sites,
            ues=tuple(UE(u["name"], u["site"], u["ip"], u["link"], u["handover"]) for u in ues),
            cloud=Cloud(cloud["name"], cloud["site"], cloud["ip"], cloud["link"]),
            links=tuple(links), vip_subnet=self.vip_net, mobility=tuple(mobility), profiles=dict(self.profiles),
            handover=self.handover, attachment=self.attachment, servers=servers)

    def parse_attachment(self, raw: Any) -> Attachment:
        """The ``attachment:`` mapping: how a UE with a position picks its access point."""
        if raw is None:
            return Attachment()
        m = self.mapping(raw, "attachment", ATTACHMENT_KEYS)
        if m is None:
            return Attachment()
        values = {}
        if "policy" in m:
            if m["policy"] not in ATTACH_POLICIES:
                self.err("attachment.policy", f"unknown policy {m['policy']!r} (allowed: {', '.join(ATTACH_POLICIES)})")
            else:
                values["policy"] = m["policy"]
        limits = {"margin": (0, 1e6), "min_dwell_s": (0, 86400), "tx_power_dbm": (-100, 100),
                  "ref_loss_db": (0, 200), "path_loss_exponent": (1, 10)}
        for key, (lo, hi) in limits.items():
            if key in m:
                if _is_num(m[key]) and lo <= m[key] <= hi:
                    values[key] = float(m[key])
                else:
                    self.err(f"attachment.{key}", f"must be a number, {lo:g} <= {key} <= {hi:g}; got "
                                                  f"{_type_name(m[key])} {m[key]!r}")
        return Attachment(**values)

    def position_spec(self, kind: str, raw: Any, where: str, ue: str, ues: list[str]) -> Optional[MobilitySpec]:
        """A ``positions:`` or ``associations:`` entry, checked by reading its source now."""
        base = None if self.source.startswith("<") else Path(self.source).parent
        try:
            if kind == "positions":
                if not isinstance(raw, dict):
                    raise TopologyError(f"must be a mapping with one of {', '.join(_coverage.POSITION_SOURCES)}; "
                                        f"got {_type_name(raw)} {raw!r}")
                _coverage.position_samples(raw, ue, base)
                if not self.has_access_points:
                    raise TopologyError("no site has a position (or lonlat) and coverage_m: position-based "
                                        "mobility needs access points")
                return MobilitySpec(ue, positions=dict(raw))
            _coverage.association_source(raw)
            return MobilitySpec(ue, associations=raw)
        except TopologyError as e:
            self.errors += [f"{self.source}: {where}: {x}" for x in e.errors]
            return None

    def parse_handover(self, raw: Any, where: str, base: Handover) -> Handover:
        """A ``handover:`` mapping over BASE (the default, or the topology's for a UE)."""
        if raw is None:
            return base
        m = self.mapping(raw, where, HANDOVER_KEYS, what="a mapping")
        if m is None:
            return base
        ms = m.get("radio_interruption_ms", base.radio_interruption_ms)
        mode = m.get("mode", base.mode)
        ok = True
        if not (_is_num(ms) and 0 <= ms <= MAX_RADIO_INTERRUPTION_MS):
            self.err(f"{where}.radio_interruption_ms",
                     f"must be a number of milliseconds, 0 <= radio_interruption_ms <= "
                     f"{MAX_RADIO_INTERRUPTION_MS:g}; got {_type_name(ms)} {ms!r}")
            ok = False
        if mode not in HANDOVER_MODES:
            hint = difflib.get_close_matches(mode, HANDOVER_MODES, n=1) if isinstance(mode, str) else []
            did = f", did you mean {hint[0]!r}?" if hint else ""
            self.err(f"{where}.mode", f"unknown handover mode {mode!r}{did} (allowed: "
                                      f"{', '.join(HANDOVER_MODES)})")
            ok = False
        return Handover(float(ms), mode) if ok else base

    def parse_subnets(self, top: dict) -> tuple[ipaddress.IPv4Network, ipaddress.IPv4Network]:
        subnet = DEFAULT_SUBNET
        if "subnet" in top:
            raw = top["subnet"]
            try:
                net = ipaddress.IPv4Network(str(raw), strict=True)
            except ValueError as e:
                hint = ""
                try:
                    hint = f" (did you mean {ipaddress.IPv4Network(str(raw), strict=False)}?)"
                except ValueError:
                    pass
                self.err("subnet", f"bad subnet {raw!r}: {e}{hint}; expected an IPv4 network like 10.0.0.0/16")
            else:
                if not 8 <= net.prefixlen <= 17:
                    self.err("subnet", f"{net} has prefix length /{net.prefixlen}; allowed /8 to /17 "
                                       "(room for the x.x.100.0/24 virtual-IP block)")
                else:
                    subnet = net
        vip_net = vip_subnet_of(subnet)
        if "vip_subnet" in top:
            raw = top["vip_subnet"]
            try:
                net = ipaddress.IPv4Network(str(raw), strict=True)
            except ValueError as e:
                self.err("vip_subnet", f"bad subnet {raw!r}: {e}; expected an IPv4 network like 10.0.100.0/24")
            else:
                if not net.subnet_of(subnet) or not 16 <= net.prefixlen <= 30:
                    self.err("vip_subnet", f"{net} must lie inside subnet {subnet} with a prefix length /16 to /30")
                else:
                    vip_net = net
        return subnet, vip_net

    def parse_profiles(self, raw: Any) -> dict[str, LinkParams]:
        profiles = dict(PROFILES)
        if raw is None:
            return profiles
        if not isinstance(raw, dict):
            self.err("profiles", f"must be a mapping of profile name to link parameters; got {_type_name(raw)} {raw!r}")
            return profiles
        for pname, fields_ in raw.items():
            where = f"profiles.{pname}"
            if not isinstance(pname, str) or not PROFILE_NAME_RE.fullmatch(pname):
                self.err(where, f"bad profile name {pname!r} (a lower-case letter, then up to 31 of a-z 0-9 _ -)")
                continue
            m = self.mapping(fields_, where, PARAM_KEYS, what="a mapping of link parameters")
            if m is None:
                continue
            base = profiles.get(pname, LinkParams()) if pname in PROFILES else LinkParams()
            params = self.params(base, m, where)
            if params is not None:
                profiles[pname] = params
        return profiles

    def params(self, base: LinkParams, overrides: dict, where: str) -> Optional[LinkParams]:
        values = base.to_dict()
        values.update({k: v for k, v in overrides.items() if k in PARAM_KEYS})
        problems = link_param_problems(values)
        for key, msg in problems:
            self.err(f"{where}.{key}", msg + ("" if key in overrides else " (value from the profile)"))
        if problems:
            return None
        return LinkParams(**values)

    def profile(self, value: Any, where: str) -> Optional[LinkParams]:
        if isinstance(value, str) and value in self.profiles:
            return self.profiles[value]
        known = sorted(self.profiles)
        hint = difflib.get_close_matches(value, known, n=1) if isinstance(value, str) else []
        did = f", did you mean {hint[0]!r}?" if hint else ""
        self.err(where, f"unknown profile {value!r}{did} (known profiles: {', '.join(known)})")
        return None

    def node_link(self, raw: Any, where: str, kind: str) -> Optional[LinkParams]:
        """A node's ``link:``: profile name, mapping with profile/overrides, or absent (kind's default)."""
        if raw is None:
            return self.profiles[DEFAULT_PROFILE[kind]]
        if isinstance(raw, str):
            return self.profile(raw, where)
        m = self.mapping(raw, where, NODE_LINK_KEYS, what="a profile name or a mapping")
        if m is None:
            return None
        base = self.profile(m["profile"], f"{where}.profile") if "profile" in m else self.profiles[DEFAULT_PROFILE[kind]]
        return self.params(base or LinkParams(), m, where)

    def claim(self, name: Optional[str], where: str, kind: str) -> Optional[str]:
        """Register a name in the shared namespace of sites, cloudlets, UEs and the cloud."""
        if name is None:
            return None
        if name in self.names:
            self.err(where, f"duplicate name {name!r} (already used at {self.names[name]}; sites, cloudlets, "
                            "UEs and the cloud share one namespace)")
            return None
        self.names[name] = f"{where} ({kind})"
        return name

    def parse_sites(self, raw: Any) -> list[dict]:
        if raw is None:
            return []  # missing key already reported
        if not isinstance(raw, list) or not raw:
            self.err("sites", f"must be a non-empty list of site mappings; got {_type_name(raw)} {raw!r}")
            return []
        sites = []
        for i, s in enumerate(raw):
            where = f"sites[{i}]"
            m = self.mapping(s, where, SITE_KEYS, ("name",))
            if m is None:
                continue
            name = self.claim(self.name(m["name"], f"{where}.name"), f"{where}.name", "site") if "name" in m else None
            cloudlets = []
            for j, c in enumerate(self.listing(m.get("cloudlets"), f"{where}.cloudlets", "cloudlet mappings")):
                node = self.parse_node(c, f"{where}.cloudlets[{j}]", CLOUDLET_KEYS, "cloudlet")
                if node:
                    cloudlets.append(node)
            sites.append({"name": name, "cloudlets": cloudlets,
                          "position": self.position(m.get("position"), f"{where}.position"),
                          "lonlat": self.lonlat(m.get("lonlat"), f"{where}.lonlat"),
                          "coverage_m": self.positive(m.get("coverage_m"), f"{where}.coverage_m", 1e7, "metres"),
                          "tx_power_dbm": self.positive(m.get("tx_power_dbm"), f"{where}.tx_power_dbm", 100, "dBm",
                                                        low=-100),
                          "server": self.server(m.get("server"), f"{where}.server")})
            if "position" in m and "lonlat" in m:
                self.err(where, "give position (metres) or lonlat (degrees), not both")
            if "coverage_m" in m and "position" not in m and "lonlat" not in m:
                self.err(f"{where}.coverage_m", "an access point with coverage needs a position or lonlat")
        kinds = {k for s in raw if isinstance(s, dict) for k in ("position", "lonlat") if k in s}
        if len(kinds) > 1:
            self.err("sites", "some sites give position (metres), others lonlat (degrees): use one kind for all")
        return sites

    def server(self, value: Any, where: str) -> Optional[str]:
        """A server name: an IPv4 address or host name, or None when not given."""
        if value is None:
            return None
        if not isinstance(value, str) or not SERVER_RE.fullmatch(value):
            self.err(where, f"must be a server's address or host name (letters, digits, '.', '-'); "
                            f"got {_type_name(value)} {value!r}")
            return None
        return value

    def parse_servers(self, raw: Any) -> tuple[str, ...]:
        """The ``servers:`` list: the machines the sites are placed on (docs/scale-out.md)."""
        if raw is None:
            return ()
        if not isinstance(raw, list) or not raw:
            self.err("servers", f"must be a non-empty list of server names; got {_type_name(raw)} {raw!r}")
            return ()
        names = [self.server(v, f"servers[{i}]") for i, v in enumerate(raw)]
        dup = sorted({n for n in names if n and names.count(n) > 1})
        if dup:
            self.err("servers", f"lists {', '.join(dup)} more than once")
        return tuple(n for n in names if n)

    def check_placement(self, sites: list[dict], servers: tuple[str, ...], listed: bool) -> None:
        """Either no site names a server, or every site names one of ``servers:``."""
        placed = [s for s in sites if s["server"] is not None]
        if placed and not listed:
            self.err("servers", "sites name a server but the topology has no servers: list")
        for i, s in enumerate(sites):
            if s["server"] is not None and servers and s["server"] not in servers:
                self.err(f"sites[{i}].server", f"{s['server']!r} is not one of servers: "
                                               f"{', '.join(servers)}")
            if listed and placed and s["server"] is None:
                self.err(f"sites[{i}].server", "missing: when one site names its server, all do")

    def lonlat(self, value: Any, where: str) -> Optional[tuple[float, float]]:
        """A site's ``[longitude, latitude]`` in degrees, or None."""
        if value is None:
            return None
        if not (isinstance(value, list) and len(value) == 2 and all(map(_is_num, value))
                and -180 <= value[0] <= 180 and -90 <= value[1] <= 90):
            self.err(where, f"must be [longitude, latitude] in degrees (-180..180, -90..90); got "
                            f"{_type_name(value)} {value!r}")
            return None
        return (float(value[0]), float(value[1]))

    def positive(self, value: Any, where: str, high: float, unit: str, low: float = 0) -> Optional[float]:
        """An optional number in (LOW, HIGH] (a radius, a power), or None."""
        if value is None:
            return None
        if not (_is_num(value) and low < value <= high):
            self.err(where, f"must be a number of {unit}, {low:g} < x <= {high:g}; got {_type_name(value)} {value!r}")
            return None
        return float(value)

    def position(self, value: Any, where: str) -> Optional[tuple[float, float]]:
        """A site's position ``[x, y]`` in metres (`mec view` scales it), or None."""
        if value is None:
            return None
        if not (isinstance(value, list) and len(value) == 2 and all(map(_is_num, value))):
            self.err(where, f"must be a list of two numbers [x, y]; got {_type_name(value)} {value!r}")
            return None
        return (float(value[0]), float(value[1]))

    def parse_node(self, raw: Any, where: str, keys: tuple[str, ...], kind: str) -> Optional[dict]:
        """A cloudlet, UE or cloud entry (site refs of UEs/cloud are checked here; sites come first)."""
        required = ("name",) if kind == "cloudlet" else ("name", "site") if kind == "ue" else ()
        m = self.mapping(raw, where, keys, required)
        if m is None:
            return None
        node: dict[str, Any] = {"where": where}
        if kind == "cloud":
            m = {"name": "cloud", **m}
        node["name"] = self.claim(self.name(m["name"], f"{where}.name"), f"{where}.name", kind) if "name" in m else None
        if kind != "cloudlet":
            if kind == "cloud" and "site" not in m:
                node["site"] = self.site_names[0] if self.site_names else None
            else:
                node["site"] = self.site_ref(m.get("site"), f"{where}.site") if "site" in m else None
        if kind == "cloudlet":
            node["cpus"] = m.get("cpus")
            if node["cpus"] is not None and not (_is_num(node["cpus"]) and 0 < node["cpus"] <= 1024):
                self.err(f"{where}.cpus", f"must be a number of CPU cores with 0 < cpus <= 1024 (e.g. 0.5) or null "
                                          f"(unlimited); got {_type_name(node['cpus'])} {node['cpus']!r}")
            node["memory_mb"] = mem = m.get("memory_mb")
            if mem is not None and not (isinstance(mem, int) and not isinstance(mem, bool)
                                        and MIN_MEMORY_MB <= mem <= 16 * 1024 * 1024):
                self.err(f"{where}.memory_mb", f"must be an integer number of MB >= {MIN_MEMORY_MB} or null "
                                               f"(unlimited); got {_type_name(mem)} {mem!r}")
        node["link"] = self.node_link(m.get("link"), f"{where}.link", kind)
        if kind == "ue":
            node["handover"] = (None if m.get("handover") is None else
                                self.parse_handover(m["handover"], f"{where}.handover", self.handover))
        node["ip_raw"] = m.get("ip")
        node["kind"] = kind
        ok = node["name"] is not None and node["link"] is not None and (kind == "cloudlet" or node["site"] is not None)
        return node if ok else None

    def parse_cloud(self, raw: Any) -> dict:
        node = self.parse_node({} if raw is None else raw, "cloud", CLOUD_KEYS, "cloud")
        return node or {"name": "cloud", "site": None, "ip_raw": None, "link": None, "kind": "cloud", "where": "cloud"}

    def parse_links(self, raw: Any) -> list[Link]:
        links: list[Link] = []
        seen: dict[frozenset, int] = {}
        self.links_ok = True
        entries = self.listing(raw, "links", "link mappings")
        if raw is not None and not isinstance(raw, list):
            self.links_ok = False
        n_errors = len(self.errors)
        for i, e in enumerate(entries):
            where = f"links[{i}]"
            m = self.mapping(e, where, LINK_KEYS, ("a", "b"))
            if m is None:
                continue
            a = self.site_ref(m["a"], f"{where}.a") if "a" in m else None
            b = self.site_ref(m["b"], f"{where}.b") if "b" in m else None
            profile = m.get("profile", DEFAULT_PROFILE["link"])
            base = self.profile(profile, f"{where}.profile")
            params = self.params(base or LinkParams(), m, where)
            if a is None or b is None:
                continue
            if a == b:
                self.err(where, f"self-link: both ends are {a!r} (a link joins two different sites)")
                continue
            key = frozenset((a, b))
            if key in seen:
                self.err(where, f"duplicate link between {a} and {b} (same as links[{seen[key]}]; at most one link per pair of sites)")
                continue
            seen[key] = i
            if params is not None and base is not None:
                links.append(Link(a, b, params, profile))
        if len(self.errors) > n_errors:
            self.links_ok = False
        if self.links_ok and len(self.site_names) > 1:
            g = nx.Graph()
            g.add_nodes_from(self.site_names)
            g.add_edges_from((l.a, l.b) for l in links)
            comps = list(nx.connected_components(g))
            if len(comps) > 1:
                order = {s: i for i, s in enumerate(self.site_names)}
                parts = sorted((sorted(c, key=order.get) for c in comps), key=lambda c: order[c[0]])
                self.err("links", "site graph is not connected: components "
                         + " | ".join("{" + ", ".join(p) + "}" for p in parts)
                         + " (every site must be reachable from every other through links)")
        return links

    def assign_ips(self, sites: list[dict], ues: list[dict], cloud: dict) -> None:
        """Check explicit ``ip:`` values, then give every other node the next free address of its block."""
        nodes = [c for s in sites for c in s["cloudlets"]] + ues + [cloud]
        for node in nodes:
            raw = node.get("ip_raw")
            node["ip"] = None
            if raw is None:
                continue
            where = f"{node['where']}.ip"
            try:
                ip = ipaddress.IPv4Address(raw if isinstance(raw, str) else "bad")
            except ValueError:
                self.err(where, f"bad IPv4 address {raw!r} (expected e.g. {block_address(self.subnet, CLOUDLET_BLOCK, 9)})")
                continue
            if ip not in self.subnet:
                self.err(where, f"{ip} is outside subnet {self.subnet} (addresses must lie inside the topology's subnet)")
            elif ip in (self.subnet.network_address, self.subnet.broadcast_address):
                self.err(where, f"{ip} is the network or broadcast address of subnet {self.subnet} (not usable by a node)")
            elif ip in self.vip_net:
                self.err(where, f"{ip} is in the service virtual-IP range {self.vip_net} (reserved)")
            elif ip in self.ips:
                self.err(where, f"duplicate address {ip} (already used by {self.ips[ip]})")
            else:
                self.ips[ip] = node["where"]
                node["ip"] = str(ip)
        blocks = {"cloudlet": CLOUDLET_BLOCK, "ue": UE_BLOCK, "cloud": CLOUD_BLOCK}
        next_index = {k: 1 for k in blocks}
        for node in nodes:
            if node["ip"] is not None or node.get("ip_raw") is not None:
                continue
            kind = node["kind"]
            while next_index[kind] <= BLOCK_HOSTS:
                ip = block_address(self.subnet, blocks[kind], next_index[kind])
                next_index[kind] += 1
                if ip not in self.ips:
                    break
            else:
                self.err(node["where"], f"no free automatic address for this {kind} (block "
                                        f"{block_address(self.subnet, blocks[kind], 1)}-{BLOCK_HOSTS} is full); give an explicit ip")
                continue
            self.ips[ip] = node["where"]
            node["ip"] = str(ip)

    def parse_mobility(self, raw: Any, ues: list[dict], links: list[Link]) -> list[MobilitySpec]:
        if raw is None:
            return []
        if not isinstance(raw, dict):
            self.err("mobility", f"must be a mapping of UE name to a mobility spec; got {_type_name(raw)} {raw!r}")
            return []
        ue_sites = {u["name"]: u["site"] for u in ues}
        specs = []
        neighbours: dict[str, set[str]] = {}
        for l in links:
            neighbours.setdefault(l.a, set()).add(l.b)
            neighbours.setdefault(l.b, set()).add(l.a)
        for ue, spec in raw.items():
            where = f"mobility.{ue}"
            if ue not in ue_sites:
                self.err(where, f"unknown UE {ue!r} (known UEs: {', '.join(ue_sites) or 'none'})")
                continue
            m = self.mapping(spec, where, MOBILITY_KEYS, what="a mapping with exactly one key of")
            if m is None:
                continue
            given = [k for k in MOBILITY_KEYS if k in m]
            if len(given) != 1:
                self.err(where, f"give exactly one of {', '.join(MOBILITY_KEYS)}; got {', '.join(given) or 'none'}")
                continue
            kind = given[0]
            if kind == "moves":
                moves = m["moves"]
                if not isinstance(moves, list):
                    self.err(f"{where}.moves", f"must be a list of [time_s, site] pairs; got {_type_name(moves)} {moves!r}")
                    continue
                errs = _mobility._check_moves(ue, moves, f"{where}.moves", self.site_names, ue_sites[ue])
                for e in errs:
                    self.errors.append(f"{self.source}: {e}")
                if not errs:
                    specs.append(MobilitySpec(ue, moves=tuple((float(t), s) for t, s in moves)))
            elif kind == "random_walk":
                rw = self.mapping(m["random_walk"], f"{where}.random_walk", WALK_KEYS, ("interval_s", "count"))
                if rw is None:
                    continue
                ok = True
                if "interval_s" in rw and not (_is_num(rw["interval_s"]) and 0 < rw["interval_s"] <= 86400):
                    self.err(f"{where}.random_walk.interval_s", f"must be a number of seconds, 0 < interval_s <= 86400; got {rw['interval_s']!r}")
                    ok = False
                c = rw.get("count")
                if "count" in rw and not (isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= 100000):
                    self.err(f"{where}.random_walk.count", f"must be an integer 0..100000; got {c!r}")
                    ok = False
                seed = rw.get("seed", 0)
                if isinstance(seed, bool) or not isinstance(seed, int):
                    self.err(f"{where}.random_walk.seed", f"must be an integer; got {seed!r}")
                    ok = False
                start = rw.get("start", ue_sites[ue])
                if "start" in rw and self.site_ref(start, f"{where}.random_walk.start") is None:
                    ok = False
                elif self.links_ok and start in self.site_names and not neighbours.get(start):
                    self.err(f"{where}.random_walk", f"site {start} has no neighbours to walk to")
                    ok = False
                if ok and "interval_s" in rw and "count" in rw:
                    specs.append(MobilitySpec(ue, random_walk={"interval_s": rw["interval_s"], "count": c,
                                                               "seed": seed, "start": start}))
            elif kind in ("positions", "associations"):
                spec = self.position_spec(kind, m[kind], f"{where}.{kind}", ue, list(ue_sites))
                if spec is not None:
                    specs.append(spec)
            else:
                trace = m["trace"]
                if not isinstance(trace, str) or not trace:
                    self.err(f"{where}.trace", f"must be a CSV file path; got {_type_name(trace)} {trace!r}")
                    continue
                path = Path(trace)
                if not path.is_absolute() and not self.source.startswith("<"):
                    path = Path(self.source).parent / path
                try:
                    _mobility.from_trace(path, ues=list(ue_sites), sites=self.site_names, start_sites=ue_sites)
                except TopologyError as e:
                    self.errors += [f"{self.source}: {where}.trace: {x}" for x in e.errors]
                    continue
                specs.append(MobilitySpec(ue, trace=str(path)))
        return specs
