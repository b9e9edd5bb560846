"""The emulated radio of one UE: a link to every access point it may use, one up at a time.

A UE is wired at bring-up to each site of :func:`access_sites` (its start site, the
start site's neighbours and every site its topology mobility names; all sites for a
random walk). Inside the UE's namespace the links are the ports of one Linux bridge
(``radio``) that carries the UE's address and MAC, so the UE keeps its address,
routes and neighbour cache across moves (an always-up port going nowhere keeps the
bridge's carrier while no link is up); the ports are isolated (the UE never
bridges two access points). Only the link to the serving site is up.

A move (:meth:`Radio.handover`) flips which link is up with one prepared netlink
message per link end, on sockets opened in advance in the right namespaces
(`LinkSwitch`; pyroute2 calls cost about 0.3 ms each, `ovs-vsctl` del-port/add-port
20-100 ms on the same machine). The radio itself is explicit
(`topologies.model.Handover`): break-before-make takes the old link down, waits
``radio_interruption_ms`` (a measured sleep: the UE has no radio link) and brings
the new one up; make-before-break brings the new link up, lets the UE send on it
at once, and releases the old link ``radio_interruption_ms`` later. The access
point sees the link go up (its switch port's carrier: an OpenFlow port status to
the Network Manager), which is how the network learns where the UE is.

A move to a site not wired in advance wires it first (slow: an OVSDB port add);
its event says ``prepared=False``.
"""

from __future__ import annotations

import ctypes
import logging
import os
import socket
import struct
import time
from dataclasses import dataclass
from typing import Any, Optional

from pyroute2 import IPRoute

from topologies.link import ShapedLink
from topologies.mobility import MobilityEvent, from_topology
from topologies.model import Handover, Topology

log = logging.getLogger(__name__)

#: The bridge inside a UE's namespace that holds its address; its ports are the links.
BRIDGE = "radio"
CLONE_NEWNET = 0x40000000
RTM_NEWLINK, NLMSG_ERROR, NLM_F_REQUEST, NLM_F_ACK, IFF_UP = 16, 2, 1, 4, 1
RTM_GETLINK, IFLA_OPERSTATE, IF_OPER_UP = 18, 16, 6
IF_OPER_UNKNOWN = 0
#: Longest wait for a link brought up to be operational (see `LinkSwitch.wait_up`).
OPER_UP_TIMEOUT_S = 0.05
#: A port of that bridge that is always up, the end of a veth pair going nowhere
#: (see `Radio.setup`).
HOLD = "hold"


def access_sites(topology: Topology, ue: str) -> list[str]:
    """The sites UE is wired to at bring-up, its start site first (see module doc)."""
    start = topology.ue(ue).site
    wanted = {start, *topology.neighbours(start)}
    for spec in topology.mobility:
        if spec.ue == ue and (spec.random_walk is not None or spec.associations is not None):
            wanted.update(topology.site_names)
        elif spec.ue == ue and spec.positions is not None:  # any access point it may reach
            wanted.update(s.name for s in topology.access_points())
    wanted.update(m.to_site for m in from_topology(topology) if m.ue == ue)
    return [start] + [s for s in topology.site_names if s in wanted and s != start]


@dataclass
class _Port:
    """One access link of the UE: the UE-side interface and the switch-side one."""

    site: str
    link: ShapedLink
    ue_index: int  # ifindex of the UE end, in the UE's namespace
    switch_index: Optional[int]  # ifindex of the switch end (root namespace), hop links only
    #: the access point's switch when it runs on another server than the UE (a split
    #: network): its end is flipped there, through the switch's shell
    remote_switch: Any = None


class LinkSwitch:
    """A netlink route socket in one network namespace that sets links up or down with one
    prepared RTM_NEWLINK message each (32 bytes, built once per link and state)."""

    def __init__(self, netns_path: Optional[str] = None):
        self.sock = _route_socket(netns_path)
        self._messages: dict[tuple[int, bool], bytes] = {}

    def set(self, index: int, up: bool) -> None:
        msg = self._messages.get((index, up))
        if msg is None:
            msg = self._messages[(index, up)] = _newlink(index, up)
        self.sock.send(msg)
        reply = self.sock.recv(4096)
        kind, = struct.unpack_from("=H", reply, 4)
        error, = struct.unpack_from("=i", reply, 16) if kind == NLMSG_ERROR else (0,)
        if error:
            raise OSError(-error, f"setting link {index} {'up' if up else 'down'}: "
                                  f"{os.strerror(-error)}")

    def wait_up(self, index: int, timeout_s: float = OPER_UP_TIMEOUT_S) -> bool:
        """Wait until link INDEX, just set up, is operational (True; False after TIMEOUT_S).

        Setting a veth up returns before the kernel has marked it operational: that is
        done apart, by the kernel's link watch, and only then does the UE's bridge forward
        through it. Until then the UE's packets were flooded to the hold port only and lost
        (seen: a SYN sent 3 ms after the move went nowhere); so a move ends here."""
        msg = self._messages.get((index, None))
        if msg is None:
            body = struct.pack("=BxHiII", socket.AF_UNSPEC, 0, index, 0, 0)
            msg = self._messages[(index, None)] = struct.pack(
                "=IHHII", 16 + len(body), RTM_GETLINK, NLM_F_REQUEST, index, 0) + body
        end = time.monotonic() + timeout_s
        while True:
            self.sock.send(msg)
            # UNKNOWN: a device that reports no carrier (the VXLAN end of a link to another
            # server's access point) is operational once it is up
            if _operstate(self.sock.recv(65536)) in (IF_OPER_UP, IF_OPER_UNKNOWN):
                return True
            if time.monotonic() > end:
                log.warning("link %d not operational %.0f ms after it was set up", index,
                            timeout_s * 1000)
                return False

    def close(self) -> None:
        self.sock.close()


def _operstate(reply: bytes) -> Optional[int]:
    """IFLA_OPERSTATE of an RTM_NEWLINK reply (None when absent or an error)."""
    length, kind = struct.unpack_from("=IH", reply, 0)
    if kind != RTM_NEWLINK:
        return None
    at = 16 + 16  # nlmsghdr, ifinfomsg
    while at + 4 <= length:
        alen, atype = struct.unpack_from("=HH", reply, at)
        if alen < 4:
            return None
        if atype == IFLA_OPERSTATE:
            return reply[at + 4]
        at += (alen + 3) & ~3
    return None


def _newlink(index: int, up: bool) -> bytes:
    """RTM_NEWLINK asking an ack: nlmsghdr + ifinfomsg changing only IFF_UP."""
    body = struct.pack("=BxHiII", socket.AF_UNSPEC, 0, index, IFF_UP if up else 0, IFF_UP)
    return struct.pack("=IHHII", 16 + len(body), RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK,
                       index, 0) + body


def _route_socket(netns_path: Optional[str]) -> socket.socket:
    """A NETLINK_ROUTE socket bound in NETNS_PATH (None: this thread's namespace)."""
    if netns_path is None:
        return _open_route_socket()
    libc = ctypes.CDLL(None, use_errno=True)
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(netns_path, os.O_RDONLY)
    try:
        if libc.setns(target, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns {netns_path}")
        try:
            return _open_route_socket()
        finally:
            if libc.setns(own, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back to the thread's namespace")
    finally:
        os.close(own)
        os.close(target)


def _open_route_socket() -> socket.socket:
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
    sock.bind((0, 0))
    sock.settimeout(5)
    return sock


class Radio:
    """The access links of one UE and the netlink sockets that flip them (see module doc)."""

    def __init__(self, ue: str, netns: str, ip: str, prefixlen: int, mac: str,
                 links: dict[str, ShapedLink], site: str):
        self.ue, self.netns, self.ip, self.prefixlen, self.mac = ue, netns, ip, prefixlen, mac
        self.site = site
        self.attached = True  # False after detach(): no link up until attach()
        self._links = dict(links)
        self._ports: dict[str, _Port] = {}
        self._ns: Optional[IPRoute] = None
        self._root: Optional[IPRoute] = None
        self._flip_ns: Optional[LinkSwitch] = None
        self._flip_root: Optional[LinkSwitch] = None
        self._bridge = 0

    @property
    def sites(self) -> list[str]:
        return list(self._links)

    def link(self, site: str) -> ShapedLink:
        return self._links[site]

    # ------------------------------------------------------------------ set-up
    def setup(self) -> None:
        """Move the UE's address onto the bridge, make every link a port of it, and leave
        only the serving site's link up (the namespace must have its name already)."""
        self._ns, self._root = IPRoute(netns=self.netns), IPRoute()
        self._flip_ns = LinkSwitch(f"/var/run/netns/{self.netns}")
        self._flip_root = LinkSwitch()
        ns = self._ns
        # no multicast snooping: it would join the all-snoopers group and send IGMP
        # reports to the access point (topologies.quiet: an idle network sends nothing)
        ns.link("add", ifname=BRIDGE, kind="bridge", br_mcast_snooping=0)
        self._bridge = ns.link_lookup(ifname=BRIDGE)[0]
        first = self._links[self.site].intf_a.name
        first_index = ns.link_lookup(ifname=first)[0]
        for addr in ns.get_addr(index=first_index, family=2):
            ns.addr("del", index=first_index, address=addr.get_attr("IFA_ADDRESS"),
                    prefixlen=addr["prefixlen"])
        ns.link("set", index=self._bridge, address=self.mac, state="up")
        ns.addr("add", index=self._bridge, address=self.ip, prefixlen=self.prefixlen)
        # a port that is always up keeps the bridge's carrier while no link is: the UE's
        # IP stack (neighbour cache, routes) outlives a handover, as a real UE's does
        ns.link("add", ifname=HOLD, kind="veth", peer=f"{HOLD}-end")  # no dummy module here
        ns.link("set", index=ns.link_lookup(ifname=f"{HOLD}-end")[0], state="up")
        hold = ns.link_lookup(ifname=HOLD)[0]
        ns.link("set", index=hold, master=self._bridge, state="up")
        ns.brport("set", index=hold, isolated=1)
        for site in self._links:
            self._add_port(site)

    def _add_port(self, site: str) -> None:
        assert self._ns is not None and self._root is not None
        link = self._links[site]
        index = self._ns.link_lookup(ifname=link.intf_a.name)[0]
        self._ns.link("set", index=index, master=self._bridge)
        self._ns.brport("set", index=index, isolated=1)
        switch = link.intf_b.node
        remote = switch if getattr(getattr(switch, "site_server", None), "remote", False) else None
        switch_index = self._root.link_lookup(ifname=link.intf_b.name)[0] \
            if link.hop and remote is None else None
        port = self._ports[site] = _Port(site, link, index, switch_index, remote)
        self._set(port, site == self.site)

    def wire(self, site: str, link: ShapedLink) -> None:
        """Add a link to SITE's access point after bring-up (down until a move uses it)."""
        self._links[site] = link
        self._add_port(site)

    def close(self) -> None:
        for sock in (self._ns, self._root, self._flip_ns, self._flip_root):
            if sock is not None:
                sock.close()
        self._ns = self._root = self._flip_ns = self._flip_root = None

    # ------------------------------------------------------------------ moves
    def _set(self, port: _Port, up: bool) -> None:
        """Bring PORT's link up or down: both ends when a hop sits between them, so that
        the access point's switch port sees its carrier change either way."""
        assert self._flip_ns is not None and self._flip_root is not None
        if up:
            self._set_switch_end(port, True)
        self._flip_ns.set(port.ue_index, up)
        if up:
            self._flip_ns.wait_up(port.ue_index)  # the UE's bridge forwards through it
        else:
            self._set_switch_end(port, False)

    def _set_switch_end(self, port: _Port, up: bool) -> None:
        if port.remote_switch is not None:  # one command through its shell (an ssh session)
            port.remote_switch.cmd("ip", "link", "set", "dev", port.link.intf_b.name,
                                   "up" if up else "down")
        elif port.switch_index is not None:
            assert self._flip_root is not None
            self._flip_root.set(port.switch_index, up)

    def handover(self, to_site: str, radio: Handover, event: MobilityEvent) -> MobilityEvent:
        """Make the radio move from the serving site to TO_SITE; fill EVENT's times."""
        old, new = self._ports[self.site], self._ports[to_site]
        wait_s = radio.radio_interruption_ms / 1000
        event.mode = radio.mode
        if radio.mode == "break-before-make":
            self._set(old, False)
            event.t_detached = time.monotonic()
            end = _radio_time(wait_s, event.t_detached)
            self._set(new, True)
            event.t_attached = time.monotonic()
            event.radio_ms = (end - event.t_detached) * 1000
            event.emulator_ms = ((event.t_detached - event.t_request)
                                 + (event.t_attached - end)) * 1000
        else:
            self._set(new, True)
            # the UE sends on the new link at once: forget where the old one led
            assert self._ns is not None
            self._ns.brport("set", index=old.ue_index, learning=0, flush=True)
            event.t_attached = time.monotonic()
            end = _radio_time(wait_s, event.t_attached)
            self._set(old, False)
            self._ns.brport("set", index=old.ue_index, learning=1)
            event.t_detached = time.monotonic()
            event.radio_ms = (end - event.t_attached) * 1000
            event.emulator_ms = ((event.t_attached - event.t_request)
                                 + (event.t_detached - end)) * 1000
        self.site = to_site
        return event

    def detach(self, event: MobilityEvent) -> MobilityEvent:
        """Out of every access point's coverage: the serving link goes down, none comes up
        (``site`` stays the last serving site)."""
        self._set(self._ports[self.site], False)
        event.t_detached = time.monotonic()
        self.attached = False
        return event

    def attach(self, to_site: str, event: MobilityEvent) -> MobilityEvent:
        """Back in coverage after :meth:`detach`: TO_SITE's link comes up."""
        self._set(self._ports[to_site], True)
        event.t_attached = time.monotonic()
        event.emulator_ms = (event.t_attached - event.t_request) * 1000
        event.radio_ms = 0.0
        self.site, self.attached = to_site, True
        return event


def _radio_time(wait_s: float, since: float) -> float:
    """Sleep WAIT_S from SINCE (the emulated radio); return when it really ended."""
    if wait_s > 0:
        time.sleep(max(0.0, since + wait_s - time.monotonic()))
    return time.monotonic()


def ports_view(radio: Radio, dpid_port: Any) -> list[dict[str, int]]:
    """Every access port of RADIO's UE as the Network Manager takes them (``dpid``, ``port``);
    DPID_PORT maps a ShapedLink to its switch end's (dpid hex, OpenFlow port)."""
    out = []
    for site in radio.sites:
        dpid, port = dpid_port(radio.link(site))
        out.append({"dpid": int(dpid, 16), "port": port})
    return out
