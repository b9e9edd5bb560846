"""Keep an idle emulated network silent: no IPv6 chatter from its interfaces.

Why: the machine's one userspace ovs-vswitchd polls every port of every bridge
from its main thread, re-registering each port at each wake-up, so every packet
that reaches any switch port costs work proportional to all ports of the machine
(docs/design.md, "Scale"). An idle network must therefore send nothing. Linux
gives every interface an IPv6 link-local address, and with it duplicate address
detection, MLD reports and router solicitations (which, since RFC 7559, go on
forever with a growing interval): measured on a 24-site ring, 2-5 packets a
second still reached the switches minutes after bring-up, all IPv6, from the
switch ports themselves (the root side of each veth), the delay hops' bridges and
ports, and the hosts. The testbed is IPv4 only (the Network Manager answers ARP
and forwards IPv4), so IPv6 is switched off:

* :func:`disable_ipv6_ports`: on named interfaces of THIS namespace (the switch
  ports in the root namespace; the root namespace's own defaults belong to the
  machine and are left alone);
* :func:`disable_ipv6_namespaces`: the whole of each given namespace (hosts and
  delay hops: ``all`` for the interfaces there, ``default`` for those made later,
  e.g. a UE's radio bridge or a cloudlet engine's docker0).

The Linux bridges the project makes (a delay hop's, a UE's radio) are created without
multicast snooping for the same reason: a snooping bridge joins the all-snoopers
group and sends IGMP reports (`topologies.link`, `topologies.radio`).

Both write /proc/sys directly (no process per interface or namespace). A network
namespace is a per-thread attribute: a helper thread enters each namespace in
turn (`mec.core.netns.NamespaceThread`), so the caller's threads never change
namespace.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Iterable, Optional

from mec.core.netns import NamespaceThread

log = logging.getLogger(__name__)

CONF = Path("/proc/sys/net/ipv6/conf")


def _write(path: Path) -> bool:
    """Write 1 to PATH; False when it does not exist (no IPv6 there, or no such device)."""
    try:
        path.write_text("1\n")
        return True
    except FileNotFoundError:
        return False


def disable_ipv6_ports(ifnames: Iterable[str]) -> int:
    """Switch IPv6 off on IFNAMES of the calling thread's namespace; returns how many."""
    return sum(_write(CONF / name / "disable_ipv6") for name in ifnames)


def _disable_here() -> None:
    for scope in ("all", "default"):
        _write(CONF / scope / "disable_ipv6")


def disable_ipv6_namespaces(netns_paths: Iterable[str]) -> int:
    """Switch IPv6 off in every namespace of NETNS_PATHS (``/proc/PID/ns/net`` files);
    returns how many were done. The caller's own namespace (the root one, where the
    switches' shells live) is skipped: its settings belong to the whole machine.
    Raises OSError if a namespace cannot be entered."""
    done = 0
    own = os.stat("/proc/thread-self/ns/net").st_ino
    for path in netns_paths:
        if os.stat(path).st_ino == own:  # e.g. a switch's shell: never the machine's own
            log.warning("not switching IPv6 off in %s: it is this machine's namespace", path)
            continue
        thread = NamespaceThread(path, name="ipv6-off")
        try:
            thread.call(_disable_here, timeout=10)
        finally:
            thread.close()
        done += 1
    log.debug("IPv6 off in %d namespaces", done)
    return done


def ipv6_disabled(netns_path: Optional[str] = None, ifname: str = "all") -> bool:
    """Whether IPv6 is off for IFNAME (``all``: the namespace) in NETNS_PATH (None: here)."""
    read = lambda: (CONF / ifname / "disable_ipv6").read_text().strip() == "1"  # noqa: E731
    if netns_path is None:
        return read()
    thread = NamespaceThread(netns_path, name="ipv6-read")
    try:
        return thread.call(read, timeout=10)
    finally:
        thread.close()
