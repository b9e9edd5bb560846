"""A UE moved quickly back and forth between access points while it sends traffic ends
each burst of moves with the network where it is: the Network Manager has it at the
port it is attached to, and it reaches every cloudlet (paper.yaml, os-ken).

Before the fix, a packet the UE had sent at a port it then left (held for the controller,
or re-injected after an install) reached the Network Manager after that port's 'down'
status and moved the UE back there; its packets at the port it was really at then counted
as coming from a port it was leaving, and it stayed without connectivity. The quick-moves
test met it now and then (a race); the packet-out test makes it happen every time.
"""

import ipaddress
import random
import struct
import subprocess
import time
from pathlib import Path

import pytest

from mec.testbed import Testbed
from topologies.loader import load

pytestmark = pytest.mark.integration
PAPER = Path(__file__).resolve().parents[2] / "topologies" / "paper.yaml"
SITES = ["s1", "s2", "s3"]


def burst(net, rng: random.Random) -> None:
    """2-8 moves to a neighbouring site, 0-50 ms apart."""
    for _ in range(rng.randint(2, 8)):
        i = SITES.index(net.ue_site["u1"])
        there = rng.choice([SITES[j] for j in (i - 1, i + 1) if 0 <= j < len(SITES)])
        net.move("u1", there)
        time.sleep(rng.choice([0.0, 0.002, 0.005, 0.01, 0.02, 0.05]))


def flows_to(tb, mac: str) -> dict[str, list[str]]:
    """Every switch's flows forwarding to MAC (what a failure shows)."""
    return {sw["name"]: [f"{f['match']} -> {f['actions']}" for f in tb.nm.flows(sw["dpid"])
                         if mac in str(f["match"])] for sw in tb.nm.switches()}


@pytest.mark.parametrize("seed", range(3))
def test_quick_moves_under_traffic_end_with_the_network_where_the_ue_is(seed):
    rng = random.Random(seed)
    with Testbed(load(PAPER), controller="os-ken") as tb:
        net = tb.network
        u1 = net.hosts["u1"].node
        targets = [net.hosts[c].ip for c in ("c1", "c2", "c3")]
        # the UE's own traffic throughout: 500 packets/s to every cloudlet
        pingers = [u1.popen(["ping", "-n", "-q", "-i", "0.002", "-W", "1", ip]) for ip in targets]
        bad = []
        try:
            for rnd in range(12):
                burst(net, rng)
                time.sleep(1.0)  # the last port status and the flows it installs
                where = {h["name"]: (h["switch"], h["port"]) for h in tb.nm.locations()}["u1"]
                lost = [ip for ip in targets if " 0 received" in u1.cmd(
                    ["ping", "-n", "-c", "3", "-i", "0.1", "-W", "1", ip])]
                if where != (net.ue_site["u1"], net.port_of("u1")[1]) or lost:
                    bad.append({"round": rnd, "at": net.ue_site["u1"], "manager": where,
                                "unreachable": lost, "last locations": [
                                    (e["new"]["switch"], e["signal"]) for e in tb.nm.events()
                                    if e.get("host") == "u1"][-6:],
                                "flows to u1": flows_to(tb, net.hosts["u1"].mac)})
        finally:
            for p in pingers:
                p.terminate()
                p.wait(timeout=5)
        assert not bad, bad


def icmp_echo(src_mac: str, dst_mac: str, src_ip: str, dst_ip: str) -> bytes:
    """An Ethernet frame holding an ICMP echo request (what the UE sends)."""
    def checksum(data: bytes) -> int:
        total = sum(struct.unpack(f"!{len(data) // 2}H", data))
        total = (total >> 16) + (total & 0xFFFF)
        return ~(total + (total >> 16)) & 0xFFFF
    icmp = struct.pack("!BBHHH", 8, 0, 0, 1, 1) + b"x" * 8
    icmp = icmp[:2] + struct.pack("!H", checksum(icmp)) + icmp[4:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(icmp), 1, 0, 64, 1, 0,
                     ipaddress.IPv4Address(src_ip).packed, ipaddress.IPv4Address(dst_ip).packed)
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    return bytes.fromhex(dst_mac.replace(":", "") + src_mac.replace(":", "")) + b"\x08\x00" \
        + ip + icmp


def test_a_packet_from_the_port_the_ue_left_does_not_move_it_back():
    """The deterministic case: after a move, a packet of the UE's enters the switch it left
    at the port it left (as the Network Manager's re-injection of a packet held during an
    install does, or one still queued for the controller): the UE stays where it is and
    keeps its connectivity."""
    with Testbed(load(PAPER), controller="os-ken") as tb:
        net = tb.network
        u1, c1 = net.hosts["u1"], net.hosts["c1"]
        _, old_port = net.port_of("u1")
        net.move("u1", "s2")
        time.sleep(0.5)  # the port statuses (s1 down, s2 up) are in
        here = (net.ue_site["u1"], net.port_of("u1")[1])
        where = {h["name"]: (h["switch"], h["port"]) for h in tb.nm.locations()}
        assert where["u1"] == here
        frame = icmp_echo(u1.mac, c1.mac, u1.ip, c1.ip)
        subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "packet-out", net.switches["s1"].name,
                        f"in_port={old_port},packet={frame.hex()},actions=table"],
                       check=True, timeout=10)
        time.sleep(0.5)
        where = {h["name"]: (h["switch"], h["port"]) for h in tb.nm.locations()}
        assert where["u1"] == here, [(e["new"]["switch"], e["signal"]) for e in tb.nm.events()
                                     if e.get("host") == "u1"]
        out = u1.node.cmd(["ping", "-n", "-c", "3", "-i", "0.1", "-W", "1", c1.ip])
        assert " 0% packet loss" in out, out
