"""Nodes on other servers and the VXLAN links between them, on Mininet Cluster Edition.

Mininet Cluster Edition (``mininet.examples.cluster`` of the ``mininet`` package) makes a
node remote by starting its shell through ``ssh SERVER mnexec ...``: the node's commands,
its interfaces and its processes are then on that server. This module adapts it to the
project; the division of labour is:

* `Server`: one server, as the network builder sees it: the SSH address its nodes are
  reached at (``None``: this machine), the address its VXLAN tunnels leave from, and,
  for a test server of this machine (`mec.host.servers`), the network namespace that
  stands for its network card (``underlay``; ``None`` on a real server); `Split`: which
  server each site runs on, the network builder's input;
* `ClusterNode` (mixed into `ClusterHost` and `ClusterSwitch`): Mininet Cluster's remote
  node reached with the project's own ``ssh`` argument list (its key and known hosts,
  never ``~/.ssh``), as root without ``sudo``; `ClusterNode.run` runs one command in the
  server's root namespace (Mininet Cluster's own ``rcmd`` mixes bytes and text under
  Python 3); a remote node's processes are `RemoteProcess` objects, which signal the
  process on its server rather than the local ``ssh``;
* `VxlanLink`: a link whose two nodes are on different servers: one VXLAN device per
  end, created in its server's underlay (so its UDP socket is there) and moved into its
  node's namespace, both with the link's VNI. The kernel here has VXLAN but no GRE tap,
  so Mininet Cluster's `RemoteGRELink` cannot be used, and its `RemoteSSHLink` would
  carry every packet through ssh's encryption. A link between nodes of one server stays
  Mininet Cluster's veth pair, created on that server.

Shaping is not this module's concern: a cut link is shaped by a delay hop on one side
(`topologies.link`), like any link.
"""

from __future__ import annotations

import itertools
import logging
import os
import shlex
import signal
import subprocess
import time
import uuid
import zlib
from dataclasses import dataclass
from typing import Any, Optional, Sequence

from mininet.examples.cluster import RemoteHost, RemoteLink, RemoteOVSSwitch
from mininet.node import Node

from mec.core import config

log = logging.getLogger(__name__)

#: The VXLAN UDP port (IANA).
VXLAN_PORT = 4789
#: VXLAN's own header, outer UDP, IP and Ethernet: what the underlay must carry in excess
#: of the emulated frames (docs/scale-out.md).
VXLAN_OVERHEAD = 50


class ClusterError(RuntimeError):
    """A command on a server failed: names the server, the command and its output."""


@dataclass(frozen=True)
class Server:
    """A server of a split network (see module docstring)."""

    name: str  # how the topology and the user name it
    address: Optional[str]  # SSH address; None: this machine, without SSH
    tunnel_ip: str  # where its VXLAN tunnels leave from
    underlay: Optional[str] = None  # netns of a test server's "network card"; None: root

    @property
    def remote(self) -> bool:
        return self.address is not None


@dataclass(frozen=True)
class Split:
    """A topology's sites placed on servers and how the servers are reached: what the
    network builder (`topologies.net.MecNetwork`) takes to build a split network."""

    servers: dict[str, Server]  # by name
    site_server: dict[str, str]  # site -> server name
    ssh: tuple[str, ...] = ()  # ``ssh`` with the project's configuration, up to the host

    def of_site(self, site: str) -> Server:
        return self.servers[self.site_server[site]]

    def node_params(self, site: str) -> dict[str, Any]:
        """The parameters that put a node of SITE on its server."""
        return {"site_server": self.of_site(site), "ssh": list(self.ssh)}

    def remote_sites(self) -> list[str]:
        return [site for site in self.site_server if self.of_site(site).remote]

    def controller_host(self) -> str:
        """Where every server's switches reach the Network Manager (on this machine):
        loopback while every server shares this machine's kernel (the test servers),
        else this machine's own address towards the servers (its tunnel address)."""
        if all(s.underlay is not None or not s.remote for s in self.servers.values()):
            return "127.0.0.1"
        local = [s for s in self.servers.values() if not s.remote]
        if not local:
            raise ValueError(f"servers {', '.join(self.servers)}: this machine (localhost) "
                             "must be one of them: it runs the Network Manager and the cloud")
        return local[0].tunnel_ip


def remote_argv(ssh: Sequence[str], address: str, argv: Sequence[str]) -> list[str]:
    """ARGV run on ADDRESS through SSH (an ``ssh ... root@`` prefix without the host):
    ssh joins its arguments into one shell line, so each one is quoted."""
    return [*ssh, address, shlex.join(argv)]


class ClusterNode:
    """Mininet Cluster's remote node, reached with the project's ``ssh`` (see module doc).

    Extra parameters: ``site_server`` (the `Server` it runs on) and ``ssh`` (the ``ssh``
    argument list up to the destination, from `mec.host.servers.ssh_base`)."""

    def __init__(self, name: str, site_server: Server, ssh: Sequence[str] = (),
                 **params: Any) -> None:
        self.site_server = site_server
        self.ssh = list(ssh)
        if site_server.remote and not self.ssh:
            raise ClusterError(f"node {name}: server {site_server.name} is remote but no "
                               "ssh command was given")
        # Mininet Cluster names a server by address; "localhost" is this machine
        super().__init__(name, server=site_server.address or "localhost",
                         serverIP=site_server.address or "127.0.0.1", user="root",
                         **params)

    def _popen(self, cmd: Any, sudo: bool = True, tt: bool = True, **params: Any):
        """Mininet's process start, through ssh for a remote node (a terminal only for the
        node's shell, which Mininet drives interactively). Remotely, ``mnexec -d`` would
        be the session leader and fork away (its parent exiting 0 at once): a shell
        runs it as its child instead, so ssh ends with the command and its exit code."""
        argv = cmd.split() if isinstance(cmd, str) else list(cmd)
        if self.site_server.remote:
            ssh = [*self.ssh[:1], *(["-tt"] if tt else ["-T"]), *self.ssh[1:]]
            argv = remote_argv(ssh, f"root@{self.site_server.address}",
                               ["sh", "-c", '"$@"; exit $?', "sh", *argv])
            params.update(preexec_fn=os.setpgrp)  # Ctrl-C reaches the run, not the ssh
        return Node._popen(self, argv, **params)

    def popen(self, *args: Any, **kwargs: Any) -> Any:
        """A process in this node's namespace: on a remote node, a `RemoteProcess`."""
        if not self.site_server.remote:
            return super().popen(*args, **kwargs)
        argv = list(args[0]) if len(args) == 1 and not isinstance(args[0], str) else \
            (args[0].split() if len(args) == 1 else list(args))
        return RemoteProcess(self, argv, **kwargs)

    def run(self, argv: Sequence[str], timeout: float = 60, input: Optional[str] = None,
            check: bool = True) -> str:
        """ARGV in the root namespace of this node's server; returns its stdout."""
        full = list(argv)
        if self.site_server.remote:
            full = remote_argv([*self.ssh, "-T"], f"root@{self.site_server.address}", argv)
        proc = subprocess.run(full, capture_output=True, text=True, timeout=timeout,
                              input=input, stdin=None if input is not None else subprocess.DEVNULL)
        if check and proc.returncode != 0:
            raise ClusterError(f"{shlex.join(argv)} on server {self.site_server.name} "
                               f"exited {proc.returncode}: {proc.stderr.strip()}")
        return proc.stdout

    def rcmd(self, *cmd: Any, **_opts: Any) -> str:  # noqa: D401 (Mininet Cluster API)
        """Mininet Cluster's root-namespace command (used by its switch batches), as text."""
        argv = cmd[0] if len(cmd) == 1 and isinstance(cmd[0], (list, tuple)) else \
            shlex.split(" ".join(str(c) for c in cmd))
        return self.run(argv, check=False)


class RemoteProcess:
    """A process of a remote node, started through ssh: the `subprocess.Popen` calls the
    project makes (``pid``, ``poll``, ``wait``, ``communicate``, ``send_signal``,
    ``terminate``, ``kill``, the pipes) act on the process on its server. A signal to
    the local ssh would end the connection, not the process: the process writes its
    own pid to a file on the server first, and signals are sent there by that pid."""

    def __init__(self, node: ClusterNode, argv: Sequence[str], in_node: bool = True,
                 **popen_kwargs: Any) -> None:
        """ARGV on NODE's server: in NODE's namespaces (``mnexec -a``, as Mininet's
        ``popen``), or, IN_NODE false, in the server's root namespaces."""
        self.node = node
        self.argv = list(argv)
        self.pid_file = f"{config.RUN_DIR}/remote/{uuid.uuid4().hex[:12]}.pid"
        script = ["sh", "-c", 'mkdir -p "${0%/*}" && echo $$ > "$0" && exec "$@"',
                  self.pid_file, *argv]
        if in_node:
            self._ssh = super(ClusterNode, node).popen(script, **popen_kwargs)
        else:
            popen_kwargs.setdefault("stdout", subprocess.PIPE)
            popen_kwargs.setdefault("stderr", subprocess.PIPE)
            self._ssh = node._popen(script, tt=False, **popen_kwargs)
        self.stdin, self.stdout, self.stderr = self._ssh.stdin, self._ssh.stdout, self._ssh.stderr
        self._pid: Optional[int] = None

    @property
    def pid(self) -> int:
        """The process's pid on its server (read once from its pid file)."""
        deadline = time.monotonic() + 10
        while self._pid is None:
            text = self.node.run(["cat", self.pid_file], check=False).strip()
            if text.isdigit():
                self._pid = int(text)
            elif time.monotonic() > deadline:
                raise ClusterError(f"{shlex.join(self.argv)} on {self.node.site_server.name}: "
                                   f"no pid in {self.pid_file}")
            else:
                time.sleep(0.05)
        return self._pid

    @property
    def returncode(self) -> Optional[int]:
        return self._ssh.returncode

    def poll(self) -> Optional[int]:
        code = self._ssh.poll()
        if code is not None:
            self._forget()
        return code

    def wait(self, timeout: Optional[float] = None) -> int:
        code = self._ssh.wait(timeout)
        self._forget()
        return code

    def communicate(self, input: Any = None, timeout: Optional[float] = None) -> tuple:
        out = self._ssh.communicate(input, timeout)
        self._forget()
        return out

    def send_signal(self, sig: int) -> None:
        if self._ssh.poll() is None:
            self.node.run(["kill", f"-{int(sig)}", str(self.pid)], check=False)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def stop(self, timeout: float = 15) -> Optional[int]:
        """SIGTERM, SIGKILL after TIMEOUT seconds; returns the exit code."""
        self.terminate()
        try:
            return self.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return self.wait(timeout=10)

    def _forget(self) -> None:
        if self.pid_file:
            self.node.run(["rm", "-f", self.pid_file], check=False)
            self.pid_file = ""


class ClusterHost(ClusterNode, RemoteHost):
    """A host (cloudlet, UE, cloud) in its own namespace on its site's server."""


class ClusterSwitch(ClusterNode, RemoteOVSSwitch):
    """An access point's Open vSwitch bridge on its site's server (that server's OVS)."""


def vni_base(prefix: Optional[str] = None) -> int:
    """The first VNI of this prefix's links: prefixes sharing real servers (one UDP port)
    get apart ranges of 4096 VNIs (24-bit VNIs, 4096 ranges)."""
    return (zlib.crc32((prefix or config.PREFIX).encode()) % 4095 + 1) * 4096


_vnis = itertools.count()


class VxlanLink(RemoteLink):
    """A link between nodes of two servers carried by VXLAN (see module docstring);
    between nodes of one server, Mininet Cluster's veth pair on that server.

    Extra parameter ``vni`` (default: the next of this prefix's range)."""

    def __init__(self, node1: Any, node2: Any, vni: Optional[int] = None,
                 **params: Any) -> None:
        self.vni = vni if vni is not None else vni_base() + next(_vnis) % 4096
        self.ends: list[tuple[Any, str]] = []  # (node, device) of each VXLAN end
        super().__init__(node1, node2, **params)

    def makeTunnel(self, node1: Any, node2: Any, intfname1: str, intfname2: str,  # noqa: N802
                   addr1: Optional[str] = None, addr2: Optional[str] = None) -> "VxlanLink":
        for node, dev, mac, peer in ((node1, intfname1, addr1, node2),
                                     (node2, intfname2, addr2, node1)):
            self._make_end(node, dev, mac, peer.site_server)
        return self

    def _make_end(self, node: Any, dev: str, mac: Optional[str], peer: Server) -> None:
        """The VXLAN device DEV of NODE: created where NODE's server's tunnels leave from,
        then moved into NODE's namespace (a switch's: the server's root namespace)."""
        here = node.site_server
        ip = ["ip", "-n", here.underlay] if here.underlay else ["ip"]
        add = [*ip, "link", "add", dev, *(["address", mac] if mac else []), "type", "vxlan",
               "id", str(self.vni), "local", here.tunnel_ip, "remote", peer.tunnel_ip,
               "dstport", str(VXLAN_PORT), "nolearning"]
        target = str(node.pid) if node.inNamespace else "1"  # pid 1: the root namespace
        move = [*ip, "link", "set", dev, "netns", target] if here.underlay or node.inNamespace \
            else None
        node.run(add)
        self.ends.append((node, dev))
        if move:
            node.run(move)
        log.info("vxlan %s: %s (%s) -> %s, VNI %d", dev, here.name, here.tunnel_ip,
                 peer.name, self.vni)

    def terminate(self) -> None:
        """Mininet Cluster stops a tunnel by terminating it: remove both VXLAN devices
        (through each node's shell, so in the node's namespace on its server)."""
        for node, dev in self.ends:
            node.cmd("ip", "link", "del", dev)
        self.ends = []
