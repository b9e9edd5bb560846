"""``mec bench reroute``: re-steer latency and rate of the Network Manager on real OVS.

Builds a 3-site line (or the 6-site ring) with a real UE and two HTTP replicas
at different sites, plus virtual UEs (declared at unused AP ports) up to
``--ues``; steers the UE, then re-steers it N times between the replicas and
reports the controller's request-to-last-Barrier time; then moves all UEs at
once (one concurrent per-UE re-steer each) for a rate; then moves the real UE
between APs for the location-event time.
"""

from __future__ import annotations

import json
import logging
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from controller.process import ControllerProcess
from controller.testnet import SiteNet
from mec.core import config
from mec.core.stats import percentile

LOG = logging.getLogger(__name__)
PORTS = {"os-ken": (6665, 8195), "ryu": (6666, 8196)}
VIP = "10.77.200.1"


def _summary(xs: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(xs), 3), "p95": round(percentile(xs, 95), 3),
            "max": round(max(xs), 3), "n": len(xs)}


def run(line: str = "os-ken", n: int = 100, ues: int = 100, ring: bool = False,
        moves: int = 10, ofp_port: int | None = None, rest_port: int | None = None) -> dict[str, Any]:
    ofp, rest = PORTS[line]
    ctl = ControllerProcess(line=line, ofp_port=ofp_port or ofp, rest_port=rest_port or rest)
    sites = 6 if ring else 3
    net = SiteNet(n_sites=sites, ring=ring, ofp_port=ctl.ofp_port,
                  replica_sites={"ra": 2, "rb": sites})
    p = config.name()
    try:
        c = ctl.start()
        net.build()
        ctl.wait_switches(sites)
        topo = net.topology()
        for i in range(ues - 1):  # virtual UEs at unused AP ports
            topo["hosts"].append({"name": f"{p}v{i}", "ip": f"10.77.{10 + i // 250}.{i % 250 + 1}",
                                  "mac": f"02:77:00:01:{i // 256:02x}:{i % 256:02x}",
                                  "dpid": net.dpid(i % sites + 1), "port": 1000 + i,
                                  "kind": "ue"})
        c.push_topology(**topo)
        c.add_service("web", VIP, config.SERVICE_PORT, primary=f"{p}ra")
        net.wait_http()
        url = f"http://{VIP}:{config.SERVICE_PORT}/"
        body_first = net.fetch(url)
        lat, touched = [], set()
        for k in range(n):
            r = c.set_primary("web", f"{p}rb" if k % 2 == 0 else f"{p}ra", ue=f"{p}ue1")
            lat.append(r["reroute_ms"])
            touched.add(r["switches_touched"])
        body_last = net.fetch(url)
        # all UEs move at once: one concurrent per-UE re-steer request each
        names = [h["name"] for h in topo["hosts"] if h["kind"] == "ue"]
        target = f"{p}rb" if n % 2 == 0 else f"{p}ra"
        t0 = time.perf_counter()
        with ThreadPoolExecutor(max_workers=16) as pool:
            res = list(pool.map(lambda u: c.set_primary("web", target, ue=u), names))
        wall = time.perf_counter() - t0
        batch = c.set_primary("web", f"{p}ra" if target == f"{p}rb" else f"{p}rb")
        # location events: move the real UE between the first and the last AP
        loc_install, loc_detect = [], []
        since = c.events()[-1]["seq"]
        for k in range(moves):
            to = sites if k % 2 == 0 else 1
            net.move(to, port=60 + k)
            t_send = time.time()
            net.ue().cmd(["busybox", "ping", "-c", "1", "-W", "1", "10.77.1.1"])
            deadline = time.monotonic() + 3
            ev = None
            while ev is None and time.monotonic() < deadline:
                evs = [e for e in c.events(since) if e["type"] == "location"
                       and e.get("install_ms") is not None]
                ev = evs[-1] if evs else None
                if ev is None:
                    time.sleep(0.02)
            if ev is None:
                raise RuntimeError(f"no location event after move {k}")
            since = ev["seq"]
            loc_install.append(ev["install_ms"])
            loc_detect.append((ev["ts_installed"] - t_send) * 1000.0)
        return {
            "controller": line, "topology": f"{sites}-site {'ring' if ring else 'line'}",
            "n": n, "reroute_ms": _summary(lat), "reroute_ms_raw": [round(x, 3) for x in lat], "switches_touched": max(touched),
            "ues": len(names), "events_per_s": round(len(res) / wall, 1),
            "concurrent_wall_s": round(wall, 4),
            "batch_reroute_ms": round(batch["reroute_ms"], 3),
            "batch_ues_per_s": round(len(batch["changed"]) / (batch["reroute_ms"] / 1000.0), 1),
            "location_install_ms": _summary(loc_install),
            "location_event_ms": _summary(loc_detect),
            "served_by": [body_first, body_last],
        }
    finally:
        try:
            net.stop()
        finally:
            ctl.stop()


def add_arguments(r: Any) -> None:
    """Options of `mec bench reroute`."""
    r.add_argument("--n", type=int, default=100, help="re-steers of one UE (default 100)")
    r.add_argument("--ues", type=int, default=100, help="UEs moving at once (default 100)")
    r.add_argument("--moves", type=int, default=10, help="UE moves for location events")
    r.add_argument("--ring", action="store_true", help="6-site ring instead of 3-site line")
    r.add_argument("--line", choices=("os-ken", "ryu", "both"), default="os-ken")


def main(args: Any) -> int:
    lines = ["os-ken", "ryu"] if args.line == "both" else [args.line]
    results = [run(line, n=args.n, ues=args.ues, ring=args.ring, moves=args.moves)
               for line in lines]
    if args.json:
        print(json.dumps(results[0] if len(results) == 1 else results, indent=1))
    else:
        for r in results:
            rm, lm = r["reroute_ms"], r["location_event_ms"]
            print(f"{r['controller']:7s} {r['topology']}: re-steer x{r['n']} median "
                  f"{rm['median']:.2f} ms p95 {rm['p95']:.2f} ms max {rm['max']:.2f} ms "
                  f"({r['switches_touched']} switch); {r['ues']} UEs at once: "
                  f"{r['events_per_s']:.0f} re-steers/s (one request for all: "
                  f"{r['batch_ues_per_s']:.0f}/s); location event median {lm['median']:.2f} ms "
                  f"(install {r['location_install_ms']['median']:.2f} ms)")
    return 0
