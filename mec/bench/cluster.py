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
``local``, from the same run. ``--paper`` adds the paper topology split over this machine
and the second test server: its shaped mec link within this machine (c1 -> c2) against
the same profile across the servers (c2 -> c3), and the split network's bring-up time.
Needs the test servers (`mec setup --servers`).
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


def _pings(src: Any, dst_ip: str, count: int) -> list[float]:
    out = src.cmd(f"ping -n -c {count} -i 0.02 {dst_ip}")
    return [float(x) for x in re.findall(r"time=([\d.]+) ms", out)]


def _tcp_mbps(src: Any, dst: Any, dst_ip: str, seconds: int) -> Optional[float]:
    server = dst.popen(["iperf3", "-s", "-1", "-p", "5291"])
    try:
        wait_until(lambda: "5291" in dst.cmd("ss -ltnH sport = :5291"), timeout=10,
                   what=f"iperf3 to listen on {dst.name}")
        out = src.cmd(f"iperf3 -c {dst_ip} -p 5291 -t {seconds + 1} -O 1 -J")
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
        h1, h2 = net.get(config.name("ch1")), net.get(config.name("ch2"))
        wait_until(lambda: "1 received" in h1.cmd(f"ping -c 1 -W 1 {SUBNET}.2"), timeout=20,
                   what=f"{case}: h1 to reach h2")
        row["up_s"] = time.perf_counter() - t0
        row.update(_path(h1, h2, f"{SUBNET}.2", pings, seconds))
        t_down = time.perf_counter()
    row["down_s"] = time.perf_counter() - t_down
    return row


def _path(src: Any, dst: Any, dst_ip: str, pings: int, seconds: int) -> dict[str, Any]:
    """RTT (median, min and max of PINGS pings, the lost ones) and TCP rate SRC -> DST."""
    rtts = _pings(src, dst_ip, pings)
    return {"rtt_ms": statistics.median(rtts) if rtts else None,
            "rtt_min_max_ms": [min(rtts), max(rtts)] if rtts else None,
            "pings_lost": pings - len(rtts), "tcp_mbps": _tcp_mbps(src, dst, dst_ip, seconds)}


def measure_paper(pings: int, seconds: int) -> list[dict[str, Any]]:
    """The paper topology split over this machine and the first test server (s3 there):
    one shaped mec link (25 Mbit/s, 50 ms) within this machine, c1 -> c2 over s1-s2,
    against the same profile across the servers, c2 -> c3 over the cut link s2-s3."""
    from mec.testbed import Testbed
    from topologies.loader import load

    topo = load(config.REPO_DIR / "topologies" / "paper.yaml")
    rows = []
    with Testbed(topo, servers=[servers.LOCAL, servers.test_servers()[1].name]) as tb:
        net = tb.network
        for case, a, b in (("mec-local", "c1", "c2"), ("mec-cross", "c2", "c3")):
            src, dst = net.hosts[a].node, net.hosts[b].node
            rows.append({"case": case, "path": f"{a}->{b}",
                         **_path(src, dst, topo.cloudlet(b).ip, pings, seconds)})
        rows.append({"case": "paper-up", "up_s": net.timings["up_s"],
                     "timings": {k: round(v, 3) for k, v in net.timings.items()}})
    return rows


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
    p.add_argument("--paper", action="store_true",
                   help="also: the paper topology split over localhost and 127.0.0.3, its "
                        "shaped mec link within this machine against the one across servers")


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
    if args.paper:
        result["paper"] = measure_paper(args.pings, args.seconds)
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    for case, c in result["cases"].items():
        print(f"{case:6} up {c['up_s']:.2f} s  down {c['down_s']:.2f} s  "
              f"RTT {c['rtt_ms']:.3f} ms  TCP {c['tcp_mbps'] or 0:.0f} Mbit/s  (n={c['n']})")
    print(f"crossing servers adds {result['added_rtt_ms']:.3f} ms RTT; "
          f"TCP rate x{result['rate_ratio'] or 0:.2f}")
    for row in result.get("paper", []):
        if "path" in row:
            print(f"{row['case']:9} {row['path']}: RTT {row['rtt_ms']} ms, "
                  f"TCP {row['tcp_mbps'] or 0:.1f} Mbit/s, {row['pings_lost']} pings lost")
        else:
            print(f"paper split up in {row['up_s']:.2f} s")
    return 0
