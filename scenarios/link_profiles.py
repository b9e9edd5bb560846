"""Measure what the shaped links really give: TCP rate and ping RTT per link profile.

Builds h1 - s1 =[shaped link]= s2 - h2 (userspace OVS, standalone) once per
profile and reports iperf3 TCP throughput (received, first second omitted) and
ping RTT, plus the CPU time the delay lines used. Run as root::

    MEC_PREFIX=md python -m scenarios.link_profiles [--seconds 3] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from typing import Iterator, List, Optional

from mec import config

PROFILES = {
    "mec": (25.0, 50.0),
    "dc": (100.0, 0.0),
    "wan": (100.0, 20.0),
    "10M": (10.0, 0.0),
    "unshaped+50ms": (None, 50.0),
}


@dataclass
class Params:
    bw_mbps: Optional[float] = None
    delay_ms: float = 0
    jitter_ms: float = 0
    loss_pct: float = 0
    queue_pkts: Optional[int] = None


@dataclass
class Result:
    profile: str
    bw_mbps: Optional[float]
    delay_ms: float
    mechanism: str
    tcp_mbps: float
    rtt_median_ms: float
    rtt_min_ms: float
    rtt_max_ms: float
    delayline_cpu_s: Optional[float]


def _cpu_seconds(pids: List[int]) -> float:
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime + stime
    return total / tick


@contextlib.contextmanager
def _topology(params: Params) -> Iterator[tuple]:
    from mininet.net import Mininet
    from mininet.node import OVSSwitch

    from topologies.link import add_shaped_link

    names = (f"{config.PREFIX}s1", f"{config.PREFIX}s2")
    for br in names:
        subprocess.run(["ovs-vsctl", "--if-exists", "del-br", br], check=False)
    net = Mininet(controller=None, build=False, autoSetMacs=True)
    try:
        h1, h2 = net.addHost(f"{config.PREFIX}h1"), net.addHost(f"{config.PREFIX}h2")
        s1, s2 = (net.addSwitch(n, cls=OVSSwitch, datapath="user", protocols="OpenFlow13",
                                failMode="standalone", dpid=f"00000000000fe00{i}")
                  for i, n in enumerate(names, 1))
        net.addLink(h1, s1)
        net.addLink(h2, s2)
        link = add_shaped_link(net, s1, s2, params, name=f"{config.PREFIX}pl1")
        net.start()
        yield h1, h2, link
    finally:
        net.stop()
        for br in names:
            subprocess.run(["ovs-vsctl", "--if-exists", "del-br", br], check=False)


def measure(profile: str, bw: Optional[float], delay: float, seconds: int) -> Result:
    ping = ["ping"] if shutil.which("ping") else ["busybox", "ping"]
    with _topology(Params(bw_mbps=bw, delay_ms=delay)) as (h1, h2, link):
        h1.pexec(ping + ["-c", "2", "-i", "0.05", h2.IP()])
        out, _, _ = h1.pexec(ping + ["-c", "20", "-i", "0.05", h2.IP()])
        rtts = [float(x) for x in re.findall(r"time=([\d.]+) ms", out)]
        srv = h2.popen(["iperf3", "-s", "-1", "-B", h2.IP()])
        time.sleep(0.3)
        cpu0 = _cpu_seconds(link.pids) if link.pids else None
        out, _, _ = h1.pexec(["iperf3", "-c", h2.IP(), "-t", str(seconds), "-O", "1", "-J"])
        cpu1 = _cpu_seconds(link.pids) if link.pids else None
        srv.kill()
        srv.wait()
        mbps = json.loads(out)["end"]["sum_received"]["bits_per_second"] / 1e6
        return Result(profile, bw, delay, link.mechanism, round(mbps, 1),
                      round(statistics.median(rtts), 2), min(rtts), max(rtts),
                      None if cpu0 is None else round(cpu1 - cpu0, 2))


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=3, help="iperf3 -t (after a 1 s omit)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("profiles", nargs="*", default=list(PROFILES))
    args = ap.parse_args(argv)
    results = [measure(p, *PROFILES[p], args.seconds) for p in args.profiles]
    if args.json:
        print(json.dumps([asdict(r) for r in results], indent=1))
    else:
        print(f"{'profile':14} {'bw':>6} {'delay':>6} {'mech':8} {'TCP Mbit/s':>10} "
              f"{'RTT med':>8} {'min':>7} {'max':>7} {'line CPU s':>10}")
        for r in results:
            print(f"{r.profile:14} {str(r.bw_mbps):>6} {r.delay_ms:>6} {r.mechanism:8} "
                  f"{r.tcp_mbps:>10} {r.rtt_median_ms:>8} {r.rtt_min_ms:>7} {r.rtt_max_ms:>7} "
                  f"{str(r.delayline_cpu_s):>10}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
