"""The emulated MEC network on real OVS, namespaces and engines (paper.yaml, os-ken)."""

import json
import re
import subprocess
import time
from pathlib import Path

import pytest

from mec.core import config
from mec.host.clean import clean
from mec.edge.images import registry_ref
from mec.testbed import Testbed
from topologies.loader import load

pytestmark = pytest.mark.integration
TOPO_DIR = Path(__file__).resolve().parents[2] / "topologies"


def ping_rtts(node, ip: str, count: int = 10, interval: float = 0.05) -> list[float]:
    out = node.popen(["ping", "-n", "-c", str(count), "-i", str(interval), "-W", "2", ip],
                     stdout=subprocess.PIPE).communicate(timeout=30)[0].decode()
    return [float(x) for x in re.findall(r"time=([\d.]+) ms", out)]


@pytest.fixture(scope="module")
def testbed():
    tb = Testbed(load(TOPO_DIR / "paper.yaml"), controller="os-ken")
    try:
        tb.start()
        yield tb
    finally:
        tb.stop()


def test_paper_topology_is_up_with_controller_engines_and_registry(testbed):
    net = testbed.network
    assert {s["dpid"] for s in testbed.nm.switches()} == {1, 2, 3}
    for name, engine in net.engines.items():
        assert engine.client().ping(), name
    assert net.delay_mechanisms >= {"nfqueue"} or net.delay_mechanisms >= {"netem"}
    assert net.timings["up_s"] < 20


def _switch_ports(net) -> list[str]:
    return [i.name for sw in net.switches.values() for i in sw.intfList() if i.name != "lo"]


def _rx_packets(ports: list[str]) -> dict[str, int]:
    return {p: int(Path(f"/sys/class/net/{p}/statistics/rx_packets").read_text()) for p in ports}


def test_an_idle_network_sends_nothing_to_its_switches(testbed):
    """Every packet reaching a switch port wakes the shared ovs-vswitchd for work over
    all its ports: idle, the network must be silent (it was not: IPv6 router
    solicitations and MLD reports from the ports, hops and hosts, IGMP reports from
    the Linux bridges of the hops and UEs)."""
    ports = _switch_ports(testbed.network)
    time.sleep(3)  # the bring-up's last packets (the registry check's connections closing)
    before = _rx_packets(ports)
    time.sleep(10)
    after = _rx_packets(ports)
    busy = {p: after[p] - before[p] for p in ports if after[p] != before[p]}
    assert not busy, f"packets into switch ports of an idle network in 10 s: {busy}"


def test_ipv6_is_off_on_switch_ports_hosts_and_hops(testbed):
    from topologies.quiet import ipv6_disabled

    net = testbed.network
    for port in _switch_ports(net):
        assert ipv6_disabled(None, port), port
    nodes = [h.node for h in net.hosts.values()] + [l.hop for l in net.links if l.hop]
    for node in nodes:
        assert ipv6_disabled(f"/proc/{node.pid}/ns/net"), node.name
        # and for interfaces made later (a UE's radio bridge, a cloudlet's docker0)
        assert ipv6_disabled(f"/proc/{node.pid}/ns/net", "default"), node.name


def test_switches_probe_an_idle_controller_once_a_minute(testbed):
    """OVS's 5 s probe woke ovs-vswitchd twice per bridge every 5 s; a killed controller
    is still seen at once (its connections close: tests/integration/test_watchdog_net.py)."""
    from topologies.net import INACTIVITY_PROBE_MS

    bridges = [sw.name for sw in testbed.network.switches.values()]
    for bridge in bridges:
        uuid = subprocess.run(["ovs-vsctl", "get", "Bridge", bridge, "controller"],
                              capture_output=True, text=True, timeout=15).stdout.strip("[]\n ")
        row = subprocess.run(["ovs-vsctl", "get", "Controller", uuid, "inactivity_probe",
                              "max_backoff"], capture_output=True, text=True, timeout=15)
        probe, backoff = (int(x) for x in row.stdout.split())
        assert probe == INACTIVITY_PROBE_MS >= 30_000 and backoff == 1000, (bridge, row.stderr)


def test_pull_on_one_cloudlet_is_not_cached_on_another(testbed):
    net = testbed.network
    ref = registry_ref("busybox", net.registry_addr)
    net.engine("c1").client().images.pull(ref)
    tags = lambda c: {t for i in net.engine(c).client().images.list() for t in i.tags}
    assert ref in tags("c1")
    assert ref not in tags("c2")


def test_mec_link_adds_its_round_trip_delay(testbed):
    net = testbed.network
    u1 = net.hosts["u1"].node
    one = ping_rtts(u1, net.hosts["c2"].ip)  # s1 -> s2: one mec link, 50 ms RTT
    two = ping_rtts(u1, net.hosts["c3"].ip)  # two mec links: 100 ms
    assert len(one) >= 8 and len(two) >= 8
    med = lambda xs: sorted(xs)[len(xs) // 2]
    assert abs(med(one) - 50) <= max(0.1 * 50, 2), one
    assert abs(med(two) - 100) <= max(0.1 * 100, 2), two


def test_mec_link_rate_is_shaped(testbed):
    net = testbed.network
    c1, c2 = net.hosts["c1"].node, net.hosts["c2"].node
    server = c2.popen(["iperf3", "-s", "-1", "-p", "5301"])
    try:
        for _ in range(50):
            proc = c1.popen(["iperf3", "-c", net.hosts["c2"].ip, "-p", "5301", "-t", "3", "-O", "1", "-J"],
                            stdout=subprocess.PIPE)
            out = proc.communicate(timeout=30)[0].decode()
            if proc.returncode == 0:
                break
            time.sleep(0.1)
        mbps = json.loads(out)["end"]["sum_received"]["bits_per_second"] / 1e6
        # HTB limits Ethernet frames; iperf3 counts TCP payload (1448 of 1514 bytes).
        goodput = 25 * 1448 / 1514
        assert abs(mbps - goodput) <= 0.1 * goodput, mbps
    finally:
        server.kill()
        server.wait()


def test_moved_ue_reaches_the_other_site_and_the_controller_sees_it(testbed):
    net = testbed.network
    u1 = net.hosts["u1"].node
    assert ping_rtts(u1, net.hosts["c2"].ip, count=3)[0] > 40
    since = max([e["seq"] for e in testbed.nm.events()] or [0])
    event = net.move("u1", "s2")
    try:
        assert event.t_request <= event.t_detached <= event.t_attached
        rtts = ping_rtts(u1, net.hosts["c2"].ip, count=5)
        assert rtts and sorted(rtts)[len(rtts) // 2] < 10, rtts  # was ~50 ms before the move
        locations = [e for e in testbed.nm.events(since=since) if e["type"] == "location"]
        assert locations and locations[-1]["new"]["switch"] == "s2"
    finally:
        net.move("u1", "s1")


def test_a_scripted_schedule_plays_on_time_and_announces_each_move(testbed):
    from mec.core.events import EventLog
    from topologies.mobility import scripted

    net = testbed.network
    log = EventLog()
    net.events, saved = log, net.events
    try:
        player = net.play(scripted("u1", [(0.2, "s2"), (0.6, "s3"), (1.0, "s1")]))
        moves = player.wait(timeout=20)
    finally:
        net.events = saved
    assert not player.errors
    assert [(m.from_site, m.to_site) for m in moves] == [("s1", "s2"), ("s2", "s3"), ("s3", "s1")]
    for move, at in zip(moves, (0.2, 0.6, 1.0)):
        assert 0 <= move.t_request - (player.t0 + at) < 0.25
    attached = [e["to_site"] for e in log.events("move.attached")]
    assert attached == ["s2", "s3", "s1"]
    assert net.ue_site["u1"] == "s1"

