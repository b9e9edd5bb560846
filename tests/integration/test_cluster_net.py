"""Nodes on two test servers and a VXLAN link between them (topologies.cluster): each
node's shell really comes over SSH to its server, the link's packets really cross the
servers' underlay LAN, full-size frames pass, and nothing is left afterwards."""

from __future__ import annotations

import json
import re

import pytest

from mec.bench.cluster import SUBNET, measure, pair_network
from mec.core import config
from mec.core.proc import run
from mec.host import servers

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def test_servers():
    started = servers.sshd_pid() is None or not servers.underlay_ready()
    servers.start()
    yield servers.test_servers()
    if started:
        servers.stop()


def _lan_packets() -> dict[str, int]:
    """Packets received per port of the servers' LAN bridge."""
    links = json.loads(run(["ip", "-j", "-s", "-n", servers.lan_netns(), "link"]).stdout)
    return {l["ifname"]: l["stats64"]["rx"]["packets"] for l in links if l["ifname"] != "lo"}


def _lan_port(server) -> str:
    """The LAN bridge's port towards SERVER's underlay (mec.host.servers.start_underlay)."""
    return f"s{[m.name for m in servers.members()].index(server.name)}"


def _our_devices() -> list[str]:
    out = run(["ip", "-o", "link"]).stdout
    return [d for d in re.findall(r"^\d+: ([^:@]+)", out, re.M) if d.startswith(config.name("c"))]


def test_vxlan_link_between_two_servers(test_servers):
    first, second = test_servers
    before = _lan_packets()
    with pair_network(first, second) as net:
        h1, h2 = net.get(config.name("ch1")), net.get(config.name("ch2"))
        s1, s2 = net.get(config.name("cs1")), net.get(config.name("cs2"))
        # each node's shell came over SSH to its own server's address
        assert h2.cmd("echo $SSH_CONNECTION").split()[2] == second.address
        assert s1.cmd("echo $SSH_CONNECTION").split()[2] == first.address
        # a full 1500-byte frame, not fragmented, crosses the tunnel both ways
        out = h1.cmd(f"ping -c 3 -W 2 -M do -s 1472 {SUBNET}.2")
        assert "3 received" in out, out
        # the switch-to-switch link is a VXLAN device whose socket is in the server's underlay
        detail = run(["ip", "-d", "link", "show", f"{s1.name}-eth2"]).stdout
        assert "vxlan id" in detail and f"remote {second.tunnel_ip}" in detail, detail
        listening = run(["ip", "netns", "exec", first.underlay, "ss", "-ulnH"]).stdout
        assert ":4789" in listening, listening
        after = _lan_packets()
    # the pings went over the LAN between the servers' underlays
    for server in (first, second):
        port = _lan_port(server)
        assert after[port] - before.get(port, 0) >= 3, (server, before, after)
    assert _our_devices() == []
    bridges = run(["ovs-vsctl", "list-br"]).stdout.split()
    assert not [b for b in bridges if b.startswith(config.name("c"))]


def test_cluster_bench_rows_are_measured(test_servers):
    row = measure("cross", pings=10, seconds=1)
    assert row["servers"] == [s.name for s in test_servers]
    assert row["pings_lost"] == 0 and 0 < row["rtt_ms"] < 50
    assert row["tcp_mbps"] and row["tcp_mbps"] > 10
    assert row["up_s"] > 0 and row["down_s"] > 0
