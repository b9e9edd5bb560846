"""Position-driven mobility on a real network (issue 13): real site and UE names, a SUMO FCD trace
(topologies/road-sumo.yaml) played through coverage with hysteresis: the UE hands over, is
detached in the coverage gap (its pings fail) and re-attached (they succeed again)."""

import dataclasses
import subprocess
import time
from pathlib import Path

import pytest

from mec.testbed import Testbed
from topologies.coverage import schedule
from topologies.loader import load

pytestmark = pytest.mark.integration
ROAD = Path(__file__).resolve().parents[2] / "topologies" / "road-sumo.yaml"
UE = "Ana's car"


@pytest.fixture(scope="module")
def testbed():
    tb = Testbed(load(ROAD), controller="os-ken")
    try:
        tb.start()
        yield tb
    finally:
        tb.stop()


def ping_ok(tb, ip: str) -> bool:
    node = tb.network.hosts[UE].node
    out = node.cmd(["ping", "-c", "1", "-W", "1", ip])
    return " 0% packet loss" in out


def test_real_names_are_on_the_machine(testbed):
    topo = testbed.topology
    bridges = subprocess.run(["ovs-vsctl", "--timeout=10", "list-br"], capture_output=True, text=True,
                             timeout=15).stdout.split()
    for site in topo.site_names:
        assert topo.switch_name(site) in bridges
    assert testbed.network.radios[UE].sites == ["AP Porta Nord", "AP Centro", "AP Süd"]


def test_fcd_schedule_hands_over_detaches_and_reattaches(testbed):
    net = testbed.network
    topo = net.topology
    moves = schedule(topo).moves
    assert [m.to_site for m in moves] == ["AP Centro", "", "AP Süd"]
    cloudlet = {c.site: c for c in topo.cloudlets}
    assert ping_ok(testbed, cloudlet["AP Porta Nord"].ip)
    # played 20x faster: 25 s, 59 s, 66 s -> 1.25 s, 2.95 s, 3.3 s
    fast = [dataclasses.replace(m, at_s=m.at_s / 20) for m in moves]
    player = net.play(fast)
    seen = []
    t0 = player.t0
    while time.monotonic() - t0 < 4.5:
        seen.append((time.monotonic() - t0, net.radios[UE].attached, net.ue_site[UE]))
        time.sleep(0.05)
    events = player.wait(10)
    assert player.errors == []
    assert [e.to_site for e in events] == ["AP Centro", "", "AP Süd"]
    detach, reattach = events[1], events[2]
    assert detach.t_detached is not None and reattach.t_attached is not None
    out_s = reattach.t_attached - detach.t_detached
    assert 0.25 < out_s < 0.8  # 7 s of the trace at 20x: 0.35 s (plus scheduling)
    assert any(not attached for _, attached, _ in seen)
    assert net.ue_site[UE] == "AP Süd" and net.radios[UE].attached
    assert ping_ok(testbed, cloudlet["AP Süd"].ip)


def test_a_detached_ue_has_no_connectivity(testbed):
    net = testbed.network
    ip = net.topology.cloudlets[0].ip
    assert ping_ok(testbed, ip)
    net.detach(UE)
    try:
        assert not ping_ok(testbed, ip)
        with pytest.raises(ValueError, match="already detached"):
            net.detach(UE)
    finally:
        event = net.move(UE, net.ue_site[UE])  # back at the same access point
    assert event.prepared and event.t_attached is not None and event.radio_ms == 0.0
    for _ in range(20):
        if ping_ok(testbed, ip):
            break
        time.sleep(0.1)
    else:
        pytest.fail("no connectivity after the re-attach")
