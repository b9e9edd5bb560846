"""Fidelity of the emulated links: what each link profile really delivers.

For each profile a two-site network is built (cloudlet c1 at s1, c2 at s2, the
profile on the s1-s2 link) and measured: TCP throughput with iperf3 (c1 -> c2,
first second omitted), round-trip time with ping, and loss on a lossy variant
(one-way loss estimated from ping's round-trip loss: 1 - sqrt(1 - rt)). Then an
image is pulled from the cloud registry over a 25 Mbit/s link, timed, with the
bytes counted on the cloudlet's interface, against size*8/bandwidth.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import re
import statistics
import subprocess
import time
from typing import Any

from mec.core import config
from mec.edge.images import registry_ref
from mec.core.proc import wait_until

log = logging.getLogger(__name__)

#: (row name, link profile, overrides) measured by default.
ROWS: list[tuple[str, str, dict]] = [
    ("mec", "mec", {}),
    ("dc", "dc", {}),
    ("wan", "wan", {}),
    ("10mbit", "dc", {"bw_mbps": 10}),
    ("mec+2%loss", "mec", {"loss_pct": 2}),
]


def _topology(link: dict, cloud_link: dict | None = None):
    from topologies.loader import from_dict

    data = {
        "name": "bench",
        "sites": [{"name": "s1", "cloudlets": [{"name": "c1"}]},
                  {"name": "s2", "cloudlets": [{"name": "c2"}]}],
        "cloud": {"name": "cloud", "site": "s2", "link": cloud_link or "wan"},
        "ues": [],
        "links": [{"a": "s1", "b": "s2", **link}],
    }
    return from_dict(data, "<bench>")


def _iperf(src, dst_ip: str, dst, seconds: float) -> float:
    server = dst.popen(["iperf3", "-s", "-1", "-p", "5399"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    try:
        def attempt():
            proc = src.popen(["iperf3", "-c", dst_ip, "-p", "5399", "-t", str(seconds), "-O", "1",
                              "-J"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            out = proc.communicate(timeout=seconds + 30)[0].decode()
            return json.loads(out) if proc.returncode == 0 else None
        result = wait_until(attempt, timeout=10, interval=0.1, what="iperf3 server")
        return result["end"]["sum_received"]["bits_per_second"] / 1e6
    finally:
        server.kill()
        server.wait()


def _ping(src, ip: str, count: int, interval: float) -> tuple[list[float], int]:
    out = src.popen(["ping", "-n", "-q" if count > 100 else "-n", "-c", str(count), "-i",
                     str(interval), "-W", "2", ip], stdout=subprocess.PIPE
                    ).communicate(timeout=count * interval + 30)[0].decode()
    rtts = [float(x) for x in re.findall(r"time=([\d.]+) ms", out)]
    received = int(re.search(r"(\d+) received", out).group(1))
    return rtts, received


def _rx_bytes(node, intf: str) -> int:
    out = node.popen(["ip", "-s", "-j", "link", "show", "dev", intf],
                     stdout=subprocess.PIPE).communicate(timeout=10)[0]
    return int(json.loads(out)[0]["stats64"]["rx"]["bytes"])


def measure_link(name: str, profile: str, overrides: dict, seconds: float) -> dict[str, Any]:
    from mec.testbed import Testbed

    topo = _topology({"profile": profile, **overrides})
    params = topo.links[0].params
    with Testbed(topo, controller="os-ken") as tb:
        net = tb.network
        c1, c2 = net.hosts["c1"].node, net.hosts["c2"]
        rtts, _ = _ping(c1, c2.ip, 20, 0.05)
        row: dict[str, Any] = {
            "profile": name, "bw_mbps": params.bw_mbps, "delay_ms": params.delay_ms,
            "loss_pct": params.loss_pct,
            "measured_rtt_ms": round(statistics.median(rtts), 2) if rtts else None,
            "mechanism": net.links[0].mechanism,
        }
        if params.loss_pct:
            count = 1000
            _, received = _ping(c1, c2.ip, count, 0.005)
            rt_loss = 1 - received / count
            row["measured_loss_pct"] = round(100 * (1 - math.sqrt(1 - rt_loss)), 2)
            row["measured_mbps"] = None
        else:
            row["measured_loss_pct"] = 0.0 if rtts and len(rtts) == 20 else None
            row["measured_mbps"] = round(_iperf(c1, c2.ip, c2.node, seconds), 2)
    return row


def measure_pull(image: str, bw_mbps: float) -> dict[str, Any]:
    from mec.testbed import Testbed

    topo = _topology({"profile": "dc"}, cloud_link={"profile": "wan", "bw_mbps": bw_mbps,
                                                      "delay_ms": 0})
    with Testbed(topo, controller="os-ken") as tb:
        net = tb.network
        c2 = net.hosts["c2"].node
        intf = net._host_links["c2"].intf_a.name
        repo, _, tag = registry_ref(image, net.registry_addr).rpartition(":")
        before = _rx_bytes(c2, intf)
        t0 = time.perf_counter()
        downloaded = t0
        for status in net.engine("c2").client().api.pull(repo, tag=tag, stream=True,
                                                        decode=True):
            if status.get("status") == "Download complete":
                downloaded = time.perf_counter()
            if "error" in status:
                raise RuntimeError(f"pull of {repo}:{tag} failed: {status['error']}")
        seconds = time.perf_counter() - t0
        wire = _rx_bytes(c2, intf) - before
    return {"image": image, "bytes": wire, "bw_mbps": bw_mbps, "seconds": round(seconds, 2),
            "download_seconds": round(downloaded - t0, 2),
            "ideal_seconds": round(wire * 8 / (bw_mbps * 1e6), 2)}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seconds", type=float, default=5.0, help="iperf3 run length (default 5)")
    p.add_argument("--image", default="debian", help="image pulled (default debian, ~45 MB "
                   "compressed, 119 MB unpacked)")
    p.add_argument("--pull-mbps", type=float, default=25.0, help="cloud link rate for the pull")
    p.add_argument("--only", metavar="ROWS", help="comma-separated rows: " +
                   ",".join(r[0] for r in ROWS) + ",pull")


def run(args: argparse.Namespace) -> int:
    from mec.host import daemons
    from topologies.netem import delay_mechanism

    daemons.ensure_all()
    only = set(args.only.split(",")) if args.only else None
    rows = []
    for name, profile, overrides in ROWS:
        if only and name not in only:
            continue
        if not args.json:
            print(f"measuring {name} ...", flush=True)
        rows.append(measure_link(name, profile, overrides, args.seconds))
    pull = measure_pull(args.image, args.pull_mbps) if not only or "pull" in only else None
    result = {"links": rows, "pull": pull, "delay_mechanism": delay_mechanism(),
              "prefix": config.PREFIX}
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    print(f"{'profile':<12}{'bw Mbit/s':>10}{'measured':>10}{'delay ms':>10}{'RTT ms':>9}"
          f"{'loss %':>8}{'measured':>10}")
    for r in rows:
        fmt = lambda v: "-" if v is None else f"{v:g}"
        print(f"{r['profile']:<12}{fmt(r['bw_mbps']):>10}{fmt(r['measured_mbps']):>10}"
              f"{fmt(r['delay_ms']):>10}{fmt(r['measured_rtt_ms']):>9}{fmt(r['loss_pct']):>8}"
              f"{fmt(r['measured_loss_pct']):>10}")
    if pull:
        print(f"pull {pull['image']}: {pull['bytes'] / 1e6:.1f} MB on the wire at "
              f"{pull['bw_mbps']:g} Mbit/s: downloaded in {pull['download_seconds']:.1f} s, "
              f"pulled (with unpacking) in {pull['seconds']:.1f} s; "
              f"size*8/bandwidth = {pull['ideal_seconds']:.1f} s")
    print(f"delay mechanism: {result['delay_mechanism']}")
    return 0
