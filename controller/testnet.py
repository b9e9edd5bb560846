"""A small Mininet network to exercise the Network Manager (tests and ``mec bench reroute``).

Sites are userspace OVS switches (OpenFlow 1.3, fail-mode secure) in a line or
a ring, connected to a controller on 127.0.0.1. Site 1 holds a UE; each other
named site can hold a replica host running a tiny HTTP server on port 8080
whose body names the replica (``/``) or, for ``/slow``, names it over
``SLOW_CHUNKS`` lines sent across ``SLOW_S`` seconds (one long-lived TCP
connection, to check that a re-steer lets established connections drain). Links are unshaped. ``move()`` moves the UE's
switch-side veth end to another switch (the technique of Mininet's
examples/mobility.py), keeping the UE's MAC, IP and ARP cache.

Every name carries ``mec.core.config.PREFIX``; ``stop()`` removes exactly what was made.
"""

from __future__ import annotations

import logging
import socket
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any

from mec.core import config

LOG = logging.getLogger(__name__)

HTTP_PORT = config.SERVICE_PORT
SLOW_S = 1.5
SLOW_CHUNKS = 10

#: The replicas' HTTP server (run by Debian's python3 in the host's namespace).
SERVER_CODE = '''
import sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
port, bind, label, slow_s, chunks = int(sys.argv[1]), sys.argv[2], sys.argv[3], float(sys.argv[4]), int(sys.argv[5])
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a):
        pass
    def do_GET(self):
        slow = self.path.startswith("/slow")
        lines = [("replica %s %d/%d\\n" % (label, i + 1, chunks)).encode() for i in range(chunks)] if slow else [("replica %s\\n" % label).encode()]
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(sum(len(x) for x in lines)))
        self.send_header("Connection", "close")
        self.end_headers()
        for i, x in enumerate(lines):
            if slow and i:
                time.sleep(slow_s / (chunks - 1))
            self.wfile.write(x)
            self.wfile.flush()
        self.close_connection = True
ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer((bind, port), H).serve_forever()
'''


def slow_body(label: str) -> str:
    """What ``/slow`` of replica ``label`` answers, complete."""
    return "".join(f"replica {label} {i + 1}/{SLOW_CHUNKS}\n" for i in range(SLOW_CHUNKS))


@dataclass
class SiteNet:
    """Line or ring of ``n_sites`` switches; replicas at the given 1-based sites."""

    n_sites: int = 3
    ring: bool = False
    ofp_port: int = 6653
    replica_sites: dict[str, int] = field(default_factory=lambda: {"ra": 2, "rb": 3})
    ue_site: int = 1
    net: Any = None
    _servers: list[Any] = field(default_factory=list)

    def sw_name(self, i: int) -> str:
        return config.name(f"s{i}")

    def host_name(self, short: str) -> str:
        return config.name(short)

    def dpid(self, i: int) -> int:
        # high bits from the prefix keep our dpids apart from other runs' in logs
        return (sum(ord(c) for c in config.PREFIX) << 16) | i

    def build(self) -> "SiteNet":
        from mininet.log import setLogLevel
        from mininet.net import Mininet
        from mininet.node import OVSSwitch, RemoteController

        class _Controller(RemoteController):
            """Mininet checks a remote controller with telnet and decodes its output (the
            controller's binary OpenFlow HELLO) as UTF-8, which fails now and then
            (UnicodeDecodeError): a plain TCP connect checks the same."""

            def checkListening(self) -> None:
                with socket.create_connection((self.ip, self.port), timeout=5):
                    pass

        setLogLevel("warning")
        for i in range(1, self.n_sites + 1):  # a killed run leaves bridges behind
            subprocess.run(["ovs-vsctl", "--timeout=10", "--if-exists", "del-br", self.sw_name(i)],
                           check=False, timeout=15)
        net = Mininet(controller=None, build=False, autoSetMacs=False, autoStaticArp=False)
        self.net = net
        net.addController(_Controller(config.name("c"), ip="127.0.0.1", port=self.ofp_port))
        sws = []
        for i in range(1, self.n_sites + 1):
            sws.append(net.addSwitch(self.sw_name(i), cls=OVSSwitch, datapath="user",
                                     protocols="OpenFlow13", failMode="secure",
                                     dpid=f"{self.dpid(i):016x}"))
        for i in range(self.n_sites - 1):
            net.addLink(sws[i], sws[i + 1])
        if self.ring and self.n_sites > 2:
            net.addLink(sws[-1], sws[0])
        ue = net.addHost(self.host_name("ue1"), ip="10.77.0.1/16", mac="02:77:00:00:00:01")
        net.addLink(ue, sws[self.ue_site - 1])
        for k, (short, site) in enumerate(sorted(self.replica_sites.items())):
            h = net.addHost(self.host_name(short), ip=f"10.77.1.{k + 1}/16",
                            mac=f"02:77:00:00:01:{k + 1:02x}")
            net.addLink(h, sws[site - 1])
        net.build()
        net.start()
        for h in net.hosts:  # IPv6 chatter is noise here
            h.cmd("sysctl -qw net.ipv6.conf.all.disable_ipv6=1")
        for short in self.replica_sites:
            self._serve(net.get(self.host_name(short)), short)
        return self

    def _serve(self, host: Any, label: str) -> None:
        self._servers.append(host.popen(
            ["/usr/bin/python3", "-c", SERVER_CODE, str(HTTP_PORT), host.IP(), label,
             str(SLOW_S), str(SLOW_CHUNKS)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    def wait_http(self, timeout: float = 10.0) -> None:
        """Wait until every replica's HTTP server listens (checked inside its namespace)."""
        deadline = time.monotonic() + timeout
        for short in self.replica_sites:
            h = self.net.get(self.host_name(short))
            while "LISTEN" not in h.cmd(f"ss -ltn 'sport = :{HTTP_PORT}'"):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"HTTP server on {h.name} did not start")
                time.sleep(0.05)

    def topology(self, ue_kind: str = "ue") -> dict[str, Any]:
        """The document for ``PUT /mec/topology``."""
        net = self.net
        switches = [{"name": self.sw_name(i), "dpid": self.dpid(i)}
                    for i in range(1, self.n_sites + 1)]
        links, hosts = [], []
        for link in net.links:
            a, b = link.intf1, link.intf2
            na, nb = a.node, b.node
            if na in net.switches and nb in net.switches:
                links.append({"a_dpid": int(na.dpid, 16), "a_port": na.ports[a],
                              "b_dpid": int(nb.dpid, 16), "b_port": nb.ports[b]})
            else:
                h, hi, s, si = (na, a, nb, b) if na in net.hosts else (nb, b, na, a)
                kind = ue_kind if h.name.startswith(self.host_name("ue")) else "cloudlet"
                hosts.append({"name": h.name, "ip": h.IP(), "mac": hi.MAC(),
                              "dpid": int(s.dpid, 16), "port": s.ports[si], "kind": kind})
        return {"switches": switches, "links": links, "hosts": hosts}

    def ue(self) -> Any:
        return self.net.get(self.host_name("ue1"))

    def fetch(self, url: str, timeout: float = 3.0) -> str:
        """HTTP GET from the UE; returns the body ('' on failure)."""
        return self.ue().cmd(["curl", "-s", "-m", str(timeout), url]).strip()

    def move(self, to_site: int, port: int = 50) -> tuple[str, int]:
        """Move the UE's switch-side interface to switch ``to_site`` (OpenFlow port ``port``)."""
        ue = self.ue()
        uintf = ue.defaultIntf()
        link = uintf.link
        sintf = link.intf2 if link.intf1 is uintf else link.intf1
        old = sintf.node
        new = self.net.get(self.sw_name(to_site))
        subprocess.run(["ovs-vsctl", "--timeout=10", "del-port", old.name, sintf.name, "--", "add-port",
                        new.name, sintf.name, "--", "set", "Interface", sintf.name,
                        f"ofport_request={port}"], check=True, timeout=15)
        old.intfs.pop(old.ports.pop(sintf), None)
        old.nameToIntf.pop(sintf.name, None)
        new.nameToIntf[sintf.name] = sintf
        new.intfs[port] = sintf
        new.ports[sintf] = port
        sintf.node = new
        return new.name, port

    def stop(self) -> None:
        for p in self._servers:
            p.terminate()
        for p in self._servers:
            try:
                p.wait(2)
            except subprocess.TimeoutExpired:
                p.kill()
        self._servers.clear()
        try:
            if self.net is not None:
                self.net.stop()
                for ctl in self.net.controllers:  # a RemoteController still holds a shell
                    ctl.terminate()
        finally:
            for i in range(1, self.n_sites + 1):
                subprocess.run(["ovs-vsctl", "--timeout=10", "--if-exists", "del-br",
                                self.sw_name(i)], check=False, timeout=15)
