"""Fidelity of the emulated links: what each link profile really delivers.

For each profile a two-site network is built (cloudlet c1 at s1, c2 at s2, the
profile on the s1-s2 link) and measured: TCP throughput with iperf3 (c1 -> c2,
first second omitted; not on the lossy row), and, from one run of 1000 pings
(``--loss-pings``) at a bounded rate (250/s), the median round-trip time and the loss
with its 95% confidence interval (:func:`loss_estimate`: Clopper-Pearson, exact,
on the round-trip loss; the one-way loss and its interval follow from
1 - sqrt(1 - rt), as the link drops with the same probability in each
direction). Then an image is pulled from the cloud registry over a 25 Mbit/s
link by the cloudlet's Edge Manager, timed, reporting the compressed size the
registry declares (``declared_bytes``) beside the bytes counted on the
cloudlet's interface (``wire_bytes``; the interface carries nothing else in the
bench), against size*8/bandwidth.

The 1000 Mbit/s rows (``1g``, ``1g+10ms``, ``1g+50ms``; issue 14) show whether the
delay line keeps up with line rate: ``1g`` has no delay line and measures what the
path itself (veths, userspace OVS, the hop's bridge and shaper) carries in the same
run; ``1g+10ms/direct`` and ``1g+50ms/direct`` measure the same links between two
hosts without switches (the delay line and hop alone); each row names its ``delay_line`` (compiled or python) and the CPU seconds its
delay-line processes used per Gbit carried (``line_cpu_s_per_gbit``, from
/proc/PID/stat of the lines before and after iperf3; ``line_user_s_per_gbit`` is the
part in user space: the rest is kernel time, mostly the forwarding of the released
packets, which runs inside the verdict system call). iperf3 runs ``--repeat`` times
per row: ``measured_mbps`` is the median, ``mbps_runs`` every run (and
``retransmits_runs`` the sender's TCP retransmissions of each), and ``load1`` the
machine's 1-minute load average when the row started (throughput on a shared
2-core machine depends on it).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import re
import statistics
import subprocess
from dataclasses import dataclass
from typing import Any

from mec.core import config
from mec.edge.images import registry_ref
from mec.edge.manager import EdgeManager
from mec.core.proc import wait_until

log = logging.getLogger(__name__)

#: (row name, link profile, overrides) measured by default.
ROWS: list[tuple[str, str, dict]] = [
    ("mec", "mec", {}),
    ("dc", "dc", {}),
    ("wan", "wan", {}),
    ("10mbit", "dc", {"bw_mbps": 10}),
    ("mec+2%loss", "mec", {"loss_pct": 2}),
    ("1g", "lan", {}),
    ("1g+10ms", "lan", {"delay_ms": 10}),
    ("1g+50ms", "lan", {"delay_ms": 50}),
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


def _iperf(src, dst_ip: str, dst, seconds: float) -> tuple[float, float, int | None]:
    """(Mbit/s received, Gbit received, TCP retransmits) of one iperf3 run from SRC to DST."""
    server = dst.popen(["iperf3", "-s", "-1", "-p", "5399"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    try:
        def attempt():
            proc = src.popen(["iperf3", "-c", dst_ip, "-p", "5399", "-t", str(seconds), "-O", "1",
                              "-J"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            out = proc.communicate(timeout=seconds + 30)[0].decode()
            result = json.loads(out) if proc.returncode == 0 else None
            if result is not None and "sum_received" not in result.get("end", {}):
                log.warning("iperf3 run without a result, retried: %s", result.get("error"))
                return None
            return result
        result = wait_until(attempt, timeout=10, interval=0.1, what="iperf3 server")
        received = result["end"]["sum_received"]
        retransmits = result["end"].get("sum_sent", {}).get("retransmits")
        return received["bits_per_second"] / 1e6, received["bytes"] * 8 / 1e9, retransmits
    finally:
        server.kill()
        server.wait(timeout=10)


#: Pings per link row (round trips: each crosses the link twice) and their interval (s).
LOSS_PINGS = 1000
PING_INTERVAL_S = 0.004


@dataclass(frozen=True)
class LossEstimate:
    """Loss measured from SENT pings of which RECEIVED came back, with 95% intervals.

    ``rt_*``: the round-trip loss (a ping or its reply dropped), the quantity
    measured, with its exact (Clopper-Pearson) binomial interval. ``one_way_*``:
    the loss per direction, 1 - sqrt(1 - rt), assuming (as the links are built)
    the same independent drop probability each way; the transform is monotone,
    so the interval's ends map to the one-way interval. All in percent.
    """

    sent: int
    received: int
    rt_pct: float
    rt_ci95_pct: tuple[float, float]
    one_way_pct: float
    one_way_ci95_pct: tuple[float, float]


def _one_way(rt: float) -> float:
    return 1 - math.sqrt(1 - rt)


def loss_estimate(sent: int, received: int, confidence: float = 0.95) -> LossEstimate:
    """Round-trip and one-way loss of SENT pings with RECEIVED replies, with CIs (see above)."""
    from scipy.stats import binomtest

    if sent <= 0 or not 0 <= received <= sent:
        raise ValueError(f"loss of {received} replies to {sent} pings is undefined")
    lost = sent - received
    ci = binomtest(lost, sent).proportion_ci(confidence_level=confidence, method="exact")
    rt = lost / sent
    pct = lambda p: 100 * float(p)  # noqa: E731
    return LossEstimate(sent, received, pct(rt), (pct(ci.low), pct(ci.high)),
                        pct(_one_way(rt)), (pct(_one_way(ci.low)), pct(_one_way(ci.high))))


def _ping(src, ip: str, count: int, interval: float) -> tuple[list[float], int, int]:
    """(round-trip times in ms, pings sent, replies received) of COUNT pings from SRC."""
    out = src.popen(["ping", "-n", "-c", str(count), "-i", str(interval), "-W", "2", ip],
                    stdout=subprocess.PIPE).communicate(timeout=count * interval + 30)[0].decode()
    rtts = [float(x) for x in re.findall(r"time=([\d.]+) ms", out)]
    sent = int(re.search(r"(\d+) packets transmitted", out).group(1))
    received = int(re.search(r"(\d+) received", out).group(1))
    return rtts, sent, received


def _r(value: float) -> float:
    return round(value, 3)


def cpu_seconds(pids: list[int]) -> tuple[float, float] | None:
    """(user, system) CPU seconds the processes PIDS have used (None if one is gone)."""
    user = system = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            return None
        user, system = user + int(fields[11]), system + int(fields[12])  # utime, stime
    tick = os.sysconf("SC_CLK_TCK")
    return user / tick, system / tick


def _throughput(link, src, dst_ip: str, dst, seconds: float, repeat: int) -> dict[str, Any]:
    """iperf3 REPEAT times SRC -> DST through LINK: median, runs, the lines' CPU per Gbit."""
    runs, retransmits, gbits = [], [], 0.0
    before = cpu_seconds(link.pids)
    for _ in range(repeat):
        mbps, gbit, resent = _iperf(src, dst_ip, dst, seconds)
        runs.append(round(mbps, 2))
        retransmits.append(resent)
        gbits += gbit
    after = cpu_seconds(link.pids)
    row: dict[str, Any] = {"measured_mbps": statistics.median(runs), "mbps_runs": runs,
                           "retransmits_runs": retransmits}
    if link.pids and before is not None and after is not None and gbits > 0:
        user, system = after[0] - before[0], after[1] - before[1]
        row.update(line_cpu_s=round(user + system, 2),
                   line_cpu_s_per_gbit=round((user + system) / gbits, 3),
                   line_user_s_per_gbit=round(user / gbits, 3))
    return row


def measure_link(name: str, profile: str, overrides: dict, seconds: float,
                 pings: int = LOSS_PINGS, repeat: int = 1) -> dict[str, Any]:
    from mec.testbed import Testbed

    topo = _topology({"profile": profile, **overrides})
    params = topo.links[0].params
    load1 = round(os.getloadavg()[0], 2)
    with Testbed(topo, controller="os-ken") as tb:
        net = tb.network
        c1, c2 = net.hosts["c1"].node, net.hosts["c2"]
        row = _measure(name, params, net.links[0], c1, c2.ip, c2.node, load1, seconds,
                       pings, repeat)
    return row


def _measure(name: str, params, link, src, dst_ip: str, dst, load1: float, seconds: float,
             pings: int, repeat: int) -> dict[str, Any]:
    """One row: RTT and loss from PINGS pings, then (on a lossless link) TCP throughput."""
    _ping(src, dst_ip, 3, 0.05)  # ARP and the controller's first flows, not counted
    rtts, sent, received = _ping(src, dst_ip, pings, PING_INTERVAL_S)
    loss = loss_estimate(sent, received)
    row: dict[str, Any] = {
        "profile": name, "bw_mbps": params.bw_mbps, "delay_ms": params.delay_ms,
        "loss_pct": params.loss_pct,
        "measured_rtt_ms": round(statistics.median(rtts), 2) if rtts else None,
        "mechanism": link.mechanism, "delay_line": link.delay_line, "load1": load1,
        "pings_sent": sent, "pings_received": received,
        "measured_loss_pct": _r(loss.one_way_pct),
        "loss_ci95_pct": [_r(x) for x in loss.one_way_ci95_pct],
        "rt_loss_pct": _r(loss.rt_pct),
        "rt_loss_ci95_pct": [_r(x) for x in loss.rt_ci95_pct],
        "measured_mbps": None, "mbps_runs": [], "retransmits_runs": [], "line_cpu_s": None,
        "line_cpu_s_per_gbit": None, "line_user_s_per_gbit": None,
    }
    if not params.loss_pct:
        row.update(_throughput(link, src, dst_ip, dst, seconds, repeat))
    return row


#: Rows measured on two hosts joined by the link alone (no switch, no controller): what
#: the hop and its delay line carry without the userspace OVS path around them.
DIRECT_ROWS: list[tuple[str, dict]] = [
    ("1g+10ms/direct", {"bw_mbps": 1000, "delay_ms": 10}),
    ("1g+50ms/direct", {"bw_mbps": 1000, "delay_ms": 50}),
]


def measure_direct(name: str, overrides: dict, seconds: float, pings: int = LOSS_PINGS,
                   repeat: int = 1) -> dict[str, Any]:
    """A row measured on h1 =[link]= h2 (see DIRECT_ROWS)."""
    from mininet.net import Mininet

    from topologies.link import add_shaped_link
    from topologies.model import LinkParams

    params = LinkParams(**overrides)
    load1 = round(os.getloadavg()[0], 2)
    net = Mininet(controller=None, build=False)
    try:
        a, b = net.addHost(config.name("ba")), net.addHost(config.name("bb"))
        link = add_shaped_link(net, a, b, params, name=config.name("bd"))
        net.build()
        a.setIP("10.255.0.1/30", intf=link.intf_a)
        b.setIP("10.255.0.2/30", intf=link.intf_b)
        return _measure(name, params, link, a, "10.255.0.2", b, load1, seconds, pings, repeat)
    finally:
        net.stop()


def measure_pull(image: str, bw_mbps: float) -> dict[str, Any]:
    """Pull IMAGE on c2 over a BW_MBPS cloud link: declared and wire bytes, times."""
    from mec.testbed import Testbed

    topo = _topology({"profile": "dc"}, cloud_link={"profile": "wan", "bw_mbps": bw_mbps,
                                                      "delay_ms": 0})
    with Testbed(topo, controller="os-ken") as tb:
        net = tb.network
        c2 = net.hosts["c2"]
        em = EdgeManager.for_engine(net.engine("c2"), c2.ip)
        pull = em.pull(registry_ref(image, net.registry_addr))
    return {"image": image, "declared_bytes": pull.declared_bytes, "wire_bytes": pull.wire_bytes,
            "wire_overhead": (round(pull.wire_bytes / pull.declared_bytes, 4)
                              if pull.wire_bytes is not None and pull.declared_bytes else None),
            "bw_mbps": bw_mbps, "seconds": round(pull.seconds, 2),
            "download_seconds": (round(pull.download_s, 2) if pull.download_s is not None
                                 else None),
            "ideal_seconds": round(pull.declared_bytes * 8 / (bw_mbps * 1e6), 2)}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seconds", type=float, default=5.0, help="iperf3 run length (default 5)")
    p.add_argument("--image", default="debian", help="image pulled (default debian, ~45 MB "
                   "compressed, 119 MB unpacked)")
    p.add_argument("--pull-mbps", type=float, default=25.0, help="cloud link rate for the pull")
    p.add_argument("--loss-pings", type=int, default=LOSS_PINGS,
                   help=f"pings per link for RTT and loss (default {LOSS_PINGS}, "
                        f"{1 / PING_INTERVAL_S:g}/s)")
    p.add_argument("--repeat", type=int, default=1,
                   help="iperf3 runs per row (median reported, every run listed)")
    p.add_argument("--only", metavar="ROWS", help="comma-separated rows: " +
                   ",".join([r[0] for r in ROWS] + [r[0] for r in DIRECT_ROWS]) + ",pull")


def run(args: argparse.Namespace) -> int:
    from mec.host import daemons
    from topologies.netem import delay_mechanism

    daemons.ensure_all()
    fmt = lambda v: "-" if v is None else f"{v:g}"  # noqa: E731
    only = set(args.only.split(",")) if args.only else None
    rows = []
    for name, profile, overrides in ROWS:
        if only and name not in only:
            continue
        if not args.json:
            print(f"measuring {name} ...", flush=True)
        rows.append(measure_link(name, profile, overrides, args.seconds, args.loss_pings,
                                 args.repeat))
    for name, overrides in DIRECT_ROWS:
        if only and name not in only:
            continue
        if not args.json:
            print(f"measuring {name} ...", flush=True)
        rows.append(measure_direct(name, overrides, args.seconds, args.loss_pings, args.repeat))
    pull = measure_pull(args.image, args.pull_mbps) if not only or "pull" in only else None
    result = {"links": rows, "pull": pull, "delay_mechanism": delay_mechanism(),
              "prefix": config.PREFIX}
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    print(f"{'profile':<16}{'bw Mbit/s':>10}{'measured':>10}{'delay ms':>10}{'RTT ms':>9}"
          f"{'loss %':>8}{'measured (95% CI)':>26}{'line CPU s/Gbit':>17}")
    for r in rows:
        lo, hi = r["loss_ci95_pct"]
        print(f"{r['profile']:<16}{fmt(r['bw_mbps']):>10}{fmt(r['measured_mbps']):>10}"
              f"{fmt(r['delay_ms']):>10}{fmt(r['measured_rtt_ms']):>9}{fmt(r['loss_pct']):>8}"
              f"{fmt(r['measured_loss_pct']):>10} [{lo:.2f}, {hi:.2f}]"
              f"{fmt(r['line_cpu_s_per_gbit']):>9}"
              f"  ({r['pings_sent']} pings; {r['delay_line'] or 'no'} line; load {r['load1']})")
    if pull:
        wire = pull["wire_bytes"]
        print(f"pull {pull['image']} at {pull['bw_mbps']:g} Mbit/s: "
              f"{pull['declared_bytes'] / 1e6:.2f} MB declared, "
              f"{'-' if wire is None else f'{wire / 1e6:.2f}'} MB on the wire; "
              f"downloaded in {fmt(pull['download_seconds'])} s, "
              f"pulled (with unpacking) in {pull['seconds']:.1f} s; "
              f"declared size*8/bandwidth = {pull['ideal_seconds']:.1f} s")
    print(f"delay mechanism: {result['delay_mechanism']}")
    return 0
