"""What a link between two servers costs, measured on the test servers.

Two small networks are built on Mininet Cluster Edition (`topologies.cluster`), both
host h1 - switch s1 - switch s2 - host h2, switches standalone (no controller):

* ``local``: every node on the first server; the s1-s2 link is a veth pair there;
* ``cross``: s2 and h2 on the second server; the s1-s2 link is a VXLAN tunnel between
  the two servers' underlays (mec.host.servers): the path a cut link of a split
  network takes.

Each is brought up (``up_s``: the four nodes' shells started over SSH, the links, the
switches; ``up_s`` counts from nothing to a ping answered), measured (``rtt_ms``: the
median of ``--pings`` pings at 50/s, with min and max; ``tcp_mbps``: iperf3 h1 -> h2,
``--seconds`` long, first second omitted) and taken down (``down_s``), ``--repeat``
times. ``added_rtt_ms`` and ``rate_ratio`` compare the medians of ``cross`` with
``local``, from the same run. Needs the test servers (`mec setup --servers`).
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import statistics
import time
from contextlib import contextmanager
from typing import Any, Iterator, Optional

from mininet.net import Mininet

from mec.core import config
from mec.core.proc import wait_until
from mec.host import servers
from topologies.cluster import ClusterHost, ClusterSwitch, Server, VxlanLink
from topologies.datapath import ovs_datapath

log = logging.getLogger(__name__)

CASES = ("local", "cross")
SUBNET = "10.93.0"


@contextmanager
def pair_network(first: Server, second: Server) -> Iterator[Mininet]:
    """h1 - s1 on FIRST, s2 - h2 on SECOND, s1 - s2 linked (see module doc); removed
    on exit, whatever happened."""
    ssh = servers.ssh_base()
    net = Mininet(controller=None, build=False, autoSetMacs=False, autoStaticArp=False,
                  host=ClusterHost, switch=ClusterSwitch, link=VxlanLink)
    try:
        s1, s2 = (net.addSwitch(config.name(f"cs{i}"), site_server=srv, ssh=ssh,
                                datapath=ovs_datapath(), failMode="standalone",
                                dpid=f"{0xc100 + i:x}")
                  for i, srv in ((1, first), (2, second)))
        h1, h2 = (net.addHost(config.name(f"ch{i}"), site_server=srv, ssh=ssh,
                              ip=f"{SUBNET}.{i}/24")
                  for i, srv in ((1, first), (2, second)))
        net.addLink(h1, s1)
        net.addLink(h2, s2)
        net.addLink(s1, s2)
        net.build()
        net.start()
        yield net
    finally:
        net.stop()


def _pings(net: Mininet, count: int) -> list[float]:
    h1 = net.get(config.name("ch1"))
    out = h1.cmd(f"ping -n -c {count} -i 0.02 {SUBNET}.2")
    return [float(x) for x in re.findall(r"time=([\d.]+) ms", out)]


def _tcp_mbps(net: Mininet, seconds: int) -> Optional[float]:
    h1, h2 = net.get(config.name("ch1")), net.get(config.name("ch2"))
    server = h2.popen(["iperf3", "-s", "-1", "-p", "5291"])
    try:
        wait_until(lambda: "5291" in h2.cmd("ss -ltnH sport = :5291"), timeout=10,
                   what="iperf3 to listen on h2")
        out = h1.cmd(f"iperf3 -c {SUBNET}.2 -p 5291 -t {seconds + 1} -O 1 -J")
    finally:
        server.kill()
        server.wait(timeout=10)
    try:
        return json.loads(out)["end"]["sum_received"]["bits_per_second"] / 1e6
    except (ValueError, KeyError):
        log.warning("iperf3 gave no result: %s", out[-400:])
        return None


def measure(case: str, pings: int, seconds: int) -> dict[str, Any]:
    """One bring-up, measurement and teardown of CASE."""
    test = servers.test_servers()
    first, second = test[0], test[1] if case == "cross" else test[0]
    t0 = time.perf_counter()
    row: dict[str, Any] = {"case": case, "servers": [first.name, second.name]}
    with pair_network(first, second) as net:
        wait_until(lambda: "1 received" in net.get(config.name("ch1")).cmd(
            f"ping -c 1 -W 1 {SUBNET}.2"), timeout=20, what=f"{case}: h1 to reach h2")
        row["up_s"] = time.perf_counter() - t0
        rtts = _pings(net, pings)
        row["rtt_ms"] = statistics.median(rtts) if rtts else None
        row["rtt_min_max_ms"] = [min(rtts), max(rtts)] if rtts else None
        row["pings_lost"] = pings - len(rtts)
        row["tcp_mbps"] = _tcp_mbps(net, seconds)
        t_down = time.perf_counter()
    row["down_s"] = time.perf_counter() - t_down
    return row


def _median(rows: list[dict[str, Any]], key: str) -> Optional[float]:
    values = [r[key] for r in rows if r.get(key) is not None]
    return statistics.median(values) if values else None


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"runs": runs, "cases": {}}
    for case in CASES:
        rows = [r for r in runs if r["case"] == case]
        out["cases"][case] = {key: _median(rows, key) for key in ("up_s", "down_s", "rtt_ms",
                                                                   "tcp_mbps")}
        out["cases"][case]["n"] = len(rows)
        out["cases"][case]["tcp_mbps_min_max"] = \
            [min(v), max(v)] if (v := [r["tcp_mbps"] for r in rows if r["tcp_mbps"]]) else None
    local, cross = out["cases"]["local"], out["cases"]["cross"]
    out["added_rtt_ms"] = (cross["rtt_ms"] - local["rtt_ms"]) \
        if None not in (cross["rtt_ms"], local["rtt_ms"]) else None
    out["rate_ratio"] = (cross["tcp_mbps"] / local["tcp_mbps"]) \
        if cross["tcp_mbps"] and local["tcp_mbps"] else None
    return out


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--repeat", type=int, default=3, help="runs per case (default 3)")
    p.add_argument("--pings", type=int, default=50, help="pings per run (default 50)")
    p.add_argument("--seconds", type=int, default=4, help="iperf3 seconds per run (default 4)")


def run(args: argparse.Namespace) -> int:
    if servers.sshd_pid() is None or not servers.underlay_ready():
        print("the test servers are not running: sudo mec setup --servers")
        return 2
    runs = []
    for i in range(args.repeat):
        for case in CASES:  # alternated, so both see the same moments of the machine
            log.info("run %d/%d: %s", i + 1, args.repeat, case)
            runs.append(measure(case, args.pings, args.seconds))
    result = summarize(runs)
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    for case, c in result["cases"].items():
        print(f"{case:6} up {c['up_s']:.2f} s  down {c['down_s']:.2f} s  "
              f"RTT {c['rtt_ms']:.3f} ms  TCP {c['tcp_mbps'] or 0:.0f} Mbit/s  (n={c['n']})")
    print(f"crossing servers adds {result['added_rtt_ms']:.3f} ms RTT; "
          f"TCP rate x{result['rate_ratio'] or 0:.2f}")
    return 0
