"""Shaped links on the real machine: h1 - s1 =[shaped link]= s2 - h2.

Userspace OVS switches in standalone fail mode; the shaped link is whatever
``topologies.link.add_shaped_link`` builds here (a delay hop with NFQUEUE delay
lines where the kernel has no netem). Needs root, OVS running, iperf3.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Iterator, List, Optional

import pytest

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
]

from mec.core import config
from topologies.model import LinkParams  # noqa: E402 (after the root check)

P = config.name()
SWITCHES = (f"{P}s1", f"{P}s2")



def _del_bridges() -> None:
    for br in SWITCHES:
        subprocess.run(["ovs-vsctl", "--if-exists", "del-br", br], check=False)


@contextlib.contextmanager
def two_hosts_over(params: Params, seed: int = 1) -> Iterator[tuple]:
    from mininet.net import Mininet
    from mininet.node import OVSSwitch

    from topologies.link import add_shaped_link

    _del_bridges()  # a stale bridge of a killed run loses all traffic
    net = Mininet(controller=None, build=False, autoSetMacs=True)
    try:
        h1, h2 = net.addHost(f"{P}h1"), net.addHost(f"{P}h2")
        sw = [net.addSwitch(n, cls=OVSSwitch, datapath="user", protocols="OpenFlow13",
                            failMode="standalone", dpid=f"00000000000fd00{i}")
              for i, n in enumerate(SWITCHES, 1)]
        net.addLink(h1, sw[0])
        net.addLink(h2, sw[1])
        link = add_shaped_link(net, sw[0], sw[1], params, name=f"{P}tl1", seed=seed)
        net.start()
        ping(h1, h2.IP(), count=2, interval=0.05)  # ARP + MAC learning done before measuring
        yield net, h1, h2, link
    finally:
        net.stop()
        _del_bridges()


def _ping_cmd() -> List[str]:
    return ["ping"] if shutil.which("ping") else ["busybox", "ping"]


def ping(src, dst_ip: str, count: int, interval: float) -> tuple:
    """(rtts in ms of the replies, packets sent) from a ping run in node ``src``."""
    out, _, _ = src.pexec(_ping_cmd() + ["-c", str(count), "-i", str(interval), "-W", "2", dst_ip])
    rtts = [float(m) for m in re.findall(r"time=([\d.]+) ms", out)]
    sent = re.search(r"(\d+) packets transmitted", out)
    return rtts, int(sent.group(1)) if sent else 0


def iperf3_mbps(client, server, seconds: int = 3) -> float:
    srv = server.popen(["iperf3", "-s", "-1", "-B", server.IP()])
    try:
        time.sleep(0.3)  # iperf3 -s has no readiness signal; the client retries below
        for _ in range(5):
            out, err, rc = client.pexec(["iperf3", "-c", server.IP(), "-t", str(seconds),
                                         "-O", "1", "-J"])
            if rc == 0:
                break
            time.sleep(0.3)
        assert rc == 0, f"iperf3 failed: {out[-500:]} {err[-500:]}"
        return json.loads(out)["end"]["sum_received"]["bits_per_second"] / 1e6
    finally:
        srv.kill()
        srv.wait()


def test_mec_profile_rtt_and_throughput():
    """(a) 50 ms round trip added, (b) 25 Mbit/s TCP, on the paper's `mec` link."""
    if not shutil.which("iperf3"):
        pytest.skip("iperf3 missing")
    with two_hosts_over(LinkParams(bw_mbps=25, delay_ms=50)) as (net, h1, h2, link):
        assert link.mechanism in ("netem", "nfqueue")
        rtts, sent = ping(h1, h2.IP(), count=20, interval=0.05)
        assert len(rtts) == sent == 20
        # median: the shared ovs-vswitchd (other runs on this machine) can stall a ping
        med = statistics.median(rtts)
        assert abs(med - 50) <= max(0.10 * 50, 2), f"RTT median {med:.2f} ms, wanted 50: {rtts}"
        mbps = iperf3_mbps(h1, h2)
        # The shaper counts Ethernet frames (1514 B), iperf3 counts TCP payload (1448 B)
        goodput = 25 * 1448 / 1514
        assert goodput * 0.9 <= mbps <= goodput * 1.1, f"TCP {mbps:.1f} Mbit/s, wanted {goodput:.1f}"
        if link.mechanism == "nfqueue":  # the delay lines survived the load
            assert all(line.popen.poll() is None for line in link.hop.lines)


def test_loss_is_applied_in_each_direction():
    """(c) 10 % per direction: a ping round trip is lost with 1-(0.9)^2 = 19 %."""
    with two_hosts_over(LinkParams(loss_pct=10), seed=5) as (net, h1, h2, link):
        rtts, sent = ping(h1, h2.IP(), count=500, interval=0.005)
        lost = 1 - len(rtts) / sent
        assert sent == 500
        assert 0.12 <= lost <= 0.26, f"round-trip loss {lost:.1%}, expected ~19%"
        link.stop()
        if link.mechanism == "nfqueue":
            for direction, st in link.stats.items():
                assert 0.06 <= st["dropped"] / st["received"] <= 0.14, (direction, st)


RECEIVER = textwrap.dedent("""
    import socket, sys
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((sys.argv[1], 9999)); s.settimeout(1.5)
    print("READY", flush=True)
    seqs = []
    try:
        while True:
            seqs.append(int(s.recv(64)))
    except socket.timeout:
        pass
    print(" ".join(map(str, seqs)), flush=True)
""")
SENDER = textwrap.dedent("""
    import socket, sys, time
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for i in range(int(sys.argv[2])):
        s.sendto(str(i).encode(), (sys.argv[1], 9999)); time.sleep(0.001)
""")


def test_jitter_spreads_rtt_without_reordering():
    """(d) jitter 10 ms on a 40 ms link: RTTs spread, a 1 ms-spaced stream stays in order."""
    with two_hosts_over(LinkParams(delay_ms=40, jitter_ms=10), seed=3) as (net, h1, h2, link):
        rtts, _ = ping(h1, h2.IP(), count=40, interval=0.05)
        assert len(rtts) == 40
        q1, med, q3 = statistics.quantiles(rtts, n=4)
        # RTT sd 10 ms gives an inter-quartile range of ~13 ms (0.3 ms without jitter)
        assert q3 - q1 > 4, f"RTT IQR {q3 - q1:.2f} ms: no jitter? {rtts}"
        assert 35 <= med <= 48, f"RTT median {med:.2f} ms, wanted ~41"
        rx = h2.popen([sys.executable, "-c", RECEIVER, h2.IP()], text=True)
        assert rx.stdout.readline().strip() == "READY"
        h1.pexec([sys.executable, "-c", SENDER, h2.IP(), "400"])
        seqs = [int(x) for x in rx.communicate(timeout=10)[0].split()]
        assert len(seqs) >= 390
        assert seqs == sorted(seqs), "delay line reordered packets"
        if link.mechanism == "nfqueue":
            from topologies.delayline import line_kind

            assert link.delay_line == line_kind()


def _answered_seqs(src, dst_ip: str, count: int) -> List[int]:
    out, _, _ = src.pexec(_ping_cmd() + ["-c", str(count), "-i", "0.005", "-W", "2", dst_ip])
    return [int(m) for m in re.findall(r"icmp_seq=(\d+)", out)]


def test_loss_is_reproducible_with_a_seed():
    """The same seed drops the same pings (the delay line's draws are seeded), another
    seed others; each run loses about the asked 10 % per direction."""
    runs = {}
    for seed in (11, 11, 12):
        with two_hosts_over(LinkParams(loss_pct=10), seed=seed) as (net, h1, h2, link):
            runs.setdefault(seed, []).append(_answered_seqs(h1, h2.IP(), 300))
    first, again = runs[11]
    assert 0.6 * 300 <= len(first) <= 0.95 * 300, f"{300 - len(first)} of 300 round trips lost"
    assert first == again, "the same seed dropped different pings"
    assert runs[12][0] != first, "another seed dropped the same pings"


def test_1000mbit_10ms_link_is_not_capped_by_the_delay_line():
    """A 1000 Mbit/s link with 10 ms RTT between two hosts (no switch: the hop and its
    delay line alone, as `mec bench links` row 1g+10ms/direct) carries TCP far above the
    Python line's 350-570 Mbit/s, with its delay, on the compiled line, which spends
    under a CPU second per Gbit (the Python line 2.5-4.8 s). Floors hold on a 2-core
    machine at load 18 (measured 920-932 Mbit/s, 0.12-0.29 s/Gbit); the benchmark holds
    the 900 Mbit/s target."""
    from mec.bench.links import measure_direct
    from topologies.delayline import compiled_problem

    if not shutil.which("iperf3"):
        pytest.skip("iperf3 missing")
    row = measure_direct("test", {"bw_mbps": 1000, "delay_ms": 10}, seconds=3, pings=20,
                         repeat=2)
    if row["mechanism"] == "netem":
        pytest.skip("the kernel has netem: no delay line")
    assert row["delay_line"] == "compiled", compiled_problem()
    assert 10 <= row["measured_rtt_ms"] <= 11.5, row
    assert max(row["mbps_runs"]) >= 800, row
    assert row["line_cpu_s_per_gbit"] < 1.0, row


def _ours_in_root_ns(stem: str) -> List[str]:
    return [d for d in os.listdir("/sys/class/net") if d.startswith(stem)]


def test_clean_up_leaves_nothing():
    """(e) after net.stop(): no hop interface, process, record or bridge left."""
    from topologies.link import records_dir

    with two_hosts_over(LinkParams(delay_ms=10)) as (net, h1, h2, link):
        pids, hop_pid, hop = link.pids, link.hop.pid, link.hop.name
        assert len(pids) == 2 and all(Path(f"/proc/{p}").exists() for p in pids)
        assert (records_dir() / f"{hop}.json").exists()
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() for p in pids + [hop_pid]):
        time.sleep(0.05)
    assert not [p for p in pids + [hop_pid] if Path(f"/proc/{p}").exists()]
    assert not (records_dir() / f"{hop}.json").exists()
    assert _ours_in_root_ns(hop) == []
    assert _ours_in_root_ns(f"{P}s") == []
    brs = subprocess.run(["ovs-vsctl", "list-br"], capture_output=True, text=True).stdout.split()
    assert not set(brs) & set(SWITCHES)


KILLED_RUN = textwrap.dedent("""
    import sys
    from mininet.net import Mininet
    from topologies.link import add_shaped_link
    from topologies.model import LinkParams

    net = Mininet(controller=None, build=False)
    a, b = net.addHost(sys.argv[1] + "ka"), net.addHost(sys.argv[1] + "kb")
    link = add_shaped_link(net, a, b, LinkParams(delay_ms=20), name=sys.argv[1] + "kl")
    print(" ".join(map(str, link.pids + [link.hop.pid, a.pid, b.pid])), flush=True)
    sys.stdin.read()  # wait to be killed
""")


def test_cleanup_leftovers_after_a_killed_run():
    """A run killed with SIGKILL leaves hop shell and delay lines: cleanup_leftovers removes them."""
    from topologies.link import cleanup_leftovers

    env = dict(os.environ, PYTHONPATH=str(config.REPO_DIR))
    proc = subprocess.Popen([sys.executable, "-c", KILLED_RUN, P], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=env)
    extra: List[int] = []
    try:
        *pids, hop_pid, pa, pb = map(int, proc.stdout.readline().split())
        extra = [pa, pb]
        proc.kill()
        proc.wait()
        assert all(Path(f"/proc/{p}").exists() for p in pids + [hop_pid]), "nothing was left?"
        done = cleanup_leftovers()
        assert any(f"pid {pids[0]}" in d for d in done), done
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() for p in pids + [hop_pid]):
            time.sleep(0.05)
        assert not [p for p in pids + [hop_pid] if Path(f"/proc/{p}").exists()]
        assert cleanup_leftovers() == []  # idempotent, nothing else touched
    finally:
        for pid in extra:  # the killed run's two host shells (ours, by recorded pid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_host_switch_link_added_after_start():
    """A shaped host-switch link added to a running network: port attached, delay there."""
    from mininet.net import Mininet
    from mininet.node import OVSSwitch

    from topologies.link import add_shaped_link

    _del_bridges()
    net = Mininet(controller=None, build=False, autoSetMacs=True)
    try:
        h1, h2 = net.addHost(f"{P}h1"), net.addHost(f"{P}h2")
        s1 = net.addSwitch(SWITCHES[0], cls=OVSSwitch, datapath="user", protocols="OpenFlow13",
                           failMode="standalone", dpid="00000000000fd001")
        net.addLink(h2, s1)
        net.start()
        link = add_shaped_link(net, h1, s1, LinkParams(bw_mbps=50, delay_ms=20), name=f"{P}tl2")
        assert link.intf_a.node is h1 and link.intf_b.node is s1
        h1.setIP("10.0.0.1/8", intf=link.intf_a)
        ports = subprocess.run(["ovs-vsctl", "list-ports", SWITCHES[0]], capture_output=True,
                               text=True).stdout.split()
        assert link.intf_b.name in ports
        ping(h1, h2.IP(), count=2, interval=0.05)
        rtts, sent = ping(h1, h2.IP(), count=10, interval=0.05)
        assert len(rtts) == sent == 10
        assert abs(statistics.median(rtts) - 20) <= 2, rtts
    finally:
        net.stop()
        _del_bridges()


#: Raw Ethernet frames of an experimental EtherType, sent and caught in a node's namespace.
_SEND_FRAME = """import socket, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((sys.argv[1], 0))
dst, src = (bytes.fromhex(m.replace(":", "")) for m in sys.argv[2:4])
s.send(dst + src + bytes.fromhex("88b5") + b"mec-test".ljust(46, b"\\0"))
"""
_CATCH_FRAMES = """import socket, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x88b5))
s.bind((sys.argv[1], 0))
s.settimeout(float(sys.argv[2]))
print("READY", flush=True)
try:
    while True:
        print(s.recv(2048)[:6].hex(), flush=True)
except socket.timeout:
    pass
"""


def test_a_delay_hop_is_a_wire_whatever_addresses_it_saw():
    """A frame crosses a shaped link even when its destination was last seen on the
    sender's side. The hop's bridge used to learn addresses: after a UE moved, its
    traffic had crossed a backbone hop from the other side, and replies to it that
    entered that hop from there were dropped for the bridge's 300 s ageing time (the
    orchestrator stress test's 'UE without any connectivity')."""
    from mininet.net import Mininet

    from topologies.link import add_shaped_link

    net = Mininet(controller=None, build=False, autoSetMacs=True)
    try:
        h1, h2 = net.addHost(f"{P}h1"), net.addHost(f"{P}h2")
        net.start()
        link = add_shaped_link(net, h1, h2, LinkParams(delay_ms=4), name=f"{P}tl3")
        rx = h1.popen([sys.executable, "-c", _CATCH_FRAMES, link.intf_a.name, "2"],
                      stdout=subprocess.PIPE, text=True)
        assert rx.stdout.readline().strip() == "READY"
        moved, h2_mac = "02:00:00:00:0a:03", link.intf_b.MAC()
        for dst, src in (("ff:ff:ff:ff:ff:ff", moved),  # MOVED seen on h2's side ...
                         (moved, h2_mac)):  # ... and a frame to it from that side
            out, err, rc = h2.pexec([sys.executable, "-c", _SEND_FRAME, link.intf_b.name, dst, src])
            assert rc == 0, err
        caught = rx.communicate(timeout=10)[0].split()
        assert caught == ["ffffffffffff", moved.replace(":", "")], caught
    finally:
        net.stop()


def test_bench_links_short_reports_loss_with_ci_and_pull_declared_and_wire_bytes(capsys):
    """`mec bench links --only mec+2%loss,pull --image busybox --json`: the short version.

    Loss comes from 1000 pings with its 95% interval, which holds the configured 2%;
    the pull over the 25 Mbit/s cloud link reports the layers' declared size and the
    bytes counted on the cloudlet's link: at least the layers, at most 25% more.
    """
    import argparse

    from mec.bench import links as bench

    parser = argparse.ArgumentParser()
    parser.add_argument("--json", action="store_true")
    bench.add_arguments(parser)
    args = parser.parse_args(["--json", "--only", "mec+2%loss,pull", "--image", "busybox"])
    assert bench.run(args) == 0
    result = json.loads(capsys.readouterr().out)
    (row,) = result["links"]
    assert row["pings_sent"] >= 1000 and row["pings_received"] <= row["pings_sent"]
    lo, hi = row["loss_ci95_pct"]
    assert lo <= row["measured_loss_pct"] <= hi and hi - lo < 3, row
    assert lo <= 2.0 <= hi, f"configured 2% outside the measured interval: {row}"
    rt_lo, rt_hi = row["rt_loss_ci95_pct"]
    assert rt_lo <= row["rt_loss_pct"] <= rt_hi and rt_hi > hi, row
    pull = result["pull"]
    assert pull["declared_bytes"] > 0.2e6, pull
    assert pull["declared_bytes"] < pull["wire_bytes"] <= 1.25 * pull["declared_bytes"], pull
