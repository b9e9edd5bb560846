"""A UE moved quickly back and forth between access points while it sends traffic ends
each burst of moves with the network where it is: the Network Manager has it at the
port it is attached to, and it reaches every cloudlet (paper.yaml, os-ken).

Before the fix, a packet the UE had sent at a port it then left (held for the controller,
or re-injected after an install) reached the Network Manager after that port's 'down'
status and moved the UE back there; its packets at the port it was really at then counted
as coming from a port it was leaving, and it stayed without connectivity.
"""

import random
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
