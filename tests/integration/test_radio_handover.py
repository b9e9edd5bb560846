"""The emulated radio (issue 14 items 1-2): a move costs the emulator little, the radio's time is
explicit and real, and the Network Manager learns the new location from the access point's port
status, with no packet from the UE (paper.yaml, os-ken)."""

import dataclasses
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from mec.testbed import Testbed
from topologies.loader import from_dict
from topologies.model import Handover

pytestmark = pytest.mark.integration
PAPER = Path(__file__).resolve().parents[2] / "topologies" / "paper.yaml"
WALK = ["s2", "s3", "s2", "s1"]


@pytest.fixture(scope="module")
def testbed():
    data = yaml.safe_load(PAPER.read_text())
    data["handover"] = {"radio_interruption_ms": 0}
    tb = Testbed(from_dict(data, str(PAPER)), controller="os-ken")
    try:
        tb.start()
        # no IPv6 in the UE: its kernel sends nothing of its own when a link comes up
        tb.network.hosts["u1"].node.cmd("sysctl -qw net.ipv6.conf.all.disable_ipv6=1")
        yield tb
    finally:
        tb.stop()


def with_radio(tb, **handover):
    """The testbed's topology with another radio for every UE (read at each move)."""
    net = tb.network
    net.topology = dataclasses.replace(net.topology, handover=Handover(**handover))


def locations_since(tb, seq):
    return [e for e in tb.nm.events(since=seq) if e["type"] == "location"]


def last_seq(tb):
    return max([e["seq"] for e in tb.nm.events()] or [0])


def test_every_ue_is_wired_to_the_sites_it_may_use_with_one_link_up(testbed):
    net = testbed.network
    assert net.radios["u1"].sites == ["s1", "s2", "s3"]
    view = {h["name"]: h for h in net.controller_view()["hosts"]}
    assert [p["dpid"] for p in view["u1"]["ports"]] == [1, 2, 3]
    u1 = net.hosts["u1"].node
    up = [line.split()[0] for line in u1.cmd("ip -br link show master radio").splitlines()
          if " UP " in f" {line} " and not line.startswith("hold")]
    assert up == [net.radios["u1"].link("s1").intf_a.name + "@" + up[0].split("@")[1]], \
        u1.cmd("ip -br link")


def test_a_move_costs_the_emulator_milliseconds_and_the_ue_is_served_there(testbed):
    """Each move reports the emulator's own cost, and it is a flip of links, not OVSDB
    round trips (those cost 20-36 ms a move, median 28). The target, 2 ms median, is
    measured by ``mec bench scale`` (``move_emulator_ms_median``: 0.3-0.4 ms on a quiet
    machine), not here: the kernel's link down and up took about 2 ms each with the
    CPUs saturated (two busy loops on this 2-core machine: median 4.0 ms a move)."""
    net = testbed.network
    with_radio(testbed, radio_interruption_ms=0)
    events = []
    for site in WALK * 3:
        events.append(net.move("u1", site))
        time.sleep(0.05)  # the Network Manager handles each location before the next move
    for ev in events:
        assert ev.t_request <= ev.t_detached <= ev.t_attached
        assert ev.prepared and ev.mode == "break-before-make"
        assert ev.radio_ms is not None and ev.radio_ms < 1  # no radio time was asked for
    costs = sorted(ev.emulator_ms for ev in events)
    assert statistics.median(costs) <= 10.0, costs
    assert net.ue_site["u1"] == "s1"
    out = net.hosts["u1"].node.cmd(f"ping -n -c 3 -i 0.05 -W 1 {net.hosts['c1'].ip}")
    assert " 0% packet loss" in out, out


def test_the_location_comes_from_the_port_status_without_any_packet_from_the_ue(testbed):
    net = testbed.network
    with_radio(testbed, radio_interruption_ms=0)
    delays = []
    for site in WALK:
        seq = last_seq(testbed)
        wall_minus_mono = time.time() - time.monotonic()
        ev = net.move("u1", site)  # nothing runs in the UE: no packet can tell its location
        time.sleep(0.3)
        locs = locations_since(testbed, seq)
        assert [(e["signal"], e["new"]["switch"]) for e in locs] == [("port_status", site)], locs
        delays.append(locs[0]["ts_signal"] - wall_minus_mono - ev.t_attached)
    # measured 2-8 ms on an idle 2-core machine; a loaded one (other runs) is given room
    # (t_attached is stamped after the netlink call returns: a preempted mover stamps it late)
    assert all(-0.05 < d < 1 for d in delays) and statistics.median(delays) < 0.05, delays


def test_break_before_make_leaves_the_ue_without_a_link_for_the_radio_time(testbed):
    net = testbed.network
    with_radio(testbed, radio_interruption_ms=50)
    try:
        ev = net.move("u1", "s2")
        back = net.move("u1", "s1")
    finally:
        with_radio(testbed, radio_interruption_ms=0)
    for e in (ev, back):
        assert e.radio_ms >= 50 and e.handover_s >= 0.050
        assert e.emulator_ms < e.radio_ms  # the emulator's cost is not hidden in the radio's


# Was a known case (the Network Manager located the UE back at the old port once in the
# overlap, 1 of 4 full runs); not seen since the prepared attach and the delay hops that
# no longer learn addresses: 0 of 36 runs of this file, 0 of 30 of this test alone, and
# the last three CI runs. A flap fails it again.
def test_make_before_break_attaches_first_and_does_not_flap_back(testbed):
    net = testbed.network
    with_radio(testbed, radio_interruption_ms=200, mode="make-before-break")
    u1 = net.hosts["u1"].node
    seq = last_seq(testbed)
    # the UE's own traffic throughout: packets leaving by the old link must not move it back
    pinger = u1.popen(["ping", "-n", "-c", "100", "-i", "0.005", "-W", "1", net.hosts["c2"].ip])
    try:
        ev = net.move("u1", "s2")
        pinger.wait(timeout=10)
    finally:
        with_radio(testbed, radio_interruption_ms=0)
    try:
        assert ev.t_attached < ev.t_detached and ev.handover_s == 0
        assert ev.radio_ms >= 200
        locs = locations_since(testbed, seq)
        assert [e["new"]["switch"] for e in locs] == ["s2"], locs
        out = u1.cmd(f"ping -n -c 3 -i 0.05 -W 1 {net.hosts['c2'].ip}")
        assert " 0% packet loss" in out, out
    finally:
        net.move("u1", "s1")  # the next test starts where the others do


def test_a_burst_of_moves_ends_with_the_network_where_the_ue_is(testbed):
    net = testbed.network
    with_radio(testbed, radio_interruption_ms=0)
    seq = last_seq(testbed)
    for site in WALK * 3:  # back to back: the switches' reports may reach the manager in any order
        net.move("u1", site)
    time.sleep(0.5)
    where = {h["name"]: (h["switch"], h["port"]) for h in testbed.nm.locations()}["u1"]
    assert where == ("s1", net.port_of("u1")[1]), [
        e["new"]["switch"] for e in locations_since(testbed, seq)]
    out = net.hosts["u1"].node.cmd(f"ping -n -c 5 -i 0.05 -W 1 {net.hosts['c1'].ip}")
    assert " 0% packet loss" in out, out


#: Listens on a port and never accepts: the kernel completes each handshake by itself.
LISTEN = "import socket, sys, time; s = socket.socket(); s.bind(('', 7777)); s.listen(1024); time.sleep(600)"
#: Connects to the address of each line read, at once, and prints the time it took in ms
#: (or 'timeout' after 0.9 s: before the kernel's first SYN retransmission, 1 s).
CONNECT = """import socket, sys, time
for line in sys.stdin:
    s = socket.socket(); s.settimeout(0.9); t = time.monotonic()
    try:
        s.connect((line.strip(), 7777)); print(round((time.monotonic() - t) * 1000, 1), flush=True)
    except OSError:
        print('timeout', flush=True)
    s.close()
"""


def test_a_connection_opened_right_after_a_move_is_answered_at_once(testbed):
    """The UE's SYN reaches the new access point before its flows (and often before the
    switch's port status): the Network Manager holds it and re-injects it once the flows are
    confirmed, with its checksum completed. Before, it was dropped (held from a port last
    reported down, admitted into a table that did not steer it yet, or re-injected with the
    veth's unfinished checksum and dropped by the receiver), the replica's SYN-ACK followed
    the UE's old path (a cached datapath flow), or the UE's bridge flooded the SYN before the
    new link was operational: the connection waited for the SYN's retransmission, 1 s later."""
    net = testbed.network
    with_radio(testbed, radio_interruption_ms=0)
    u1 = net.hosts["u1"].node
    servers = [net.hosts[c].node.popen([sys.executable, "-c", LISTEN]) for c in ("c1", "c2", "c3")]
    client = u1.popen([sys.executable, "-c", CONNECT], stdin=subprocess.PIPE,
                      stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(0.5)
        for c in ("c1", "c2", "c3"):  # the UE knows every cloudlet's MAC before it moves
            assert " 0% packet loss" in u1.cmd(f"ping -n -c 1 -W 1 {net.hosts[c].ip}")
        client.stdin.write(net.hosts["c1"].ip + "\n")  # where it is: no move
        client.stdin.flush()
        assert client.stdout.readline().strip() != "timeout"
        took = []
        for site in WALK * 2:
            net.move("u1", site)
            client.stdin.write(net.hosts["c" + site[1:]].ip + "\n")  # the site's cloudlet
            client.stdin.flush()
            took.append(client.stdout.readline().strip())
            time.sleep(0.2)
    finally:
        client.kill()
        for s in servers:
            s.kill()
    assert "timeout" not in took, " ".join(took)
