"""``mec bench reroute``: re-steer latency and rate of the Network Manager on real OVS.

Builds a 3-site line (or the 6-site ring) with a real UE and two HTTP replicas
at different sites, plus virtual UEs (declared at unused AP ports) up to
``--ues``; steers the UE, then re-steers it N times between the replicas and
reports the controller's request-to-last-Barrier time. After every re-steer a
request from the UE to the virtual IP must be answered by the TARGET replica:
the answers are counted (right / wrong replica / none). Then ``--drains``
re-steers with the controller's default drain, each waited out: beside the
switch of new connections (``reroute_ms``) it reports when the established
ones moved (the drain's end, confirmed by its Barrier). Then all UEs move at
once (one concurrent per-UE re-steer each) for a rate, and the real UE moves
between APs for the location-event time.
"""

from __future__ import annotations

import json
import logging
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

from controller.client import NetworkManagerClient
from controller.process import ControllerProcess
from controller.testnet import SiteNet
from mec.core import config
from mec.core.stats import percentile

LOG = logging.getLogger(__name__)
PORTS = {"os-ken": (6665, 8195), "ryu": (6666, 8196)}
VIP = "10.77.200.1"
URL = f"http://{VIP}:{config.SERVICE_PORT}/"


def _summary(xs: list[float]) -> dict[str, float | None]:
    if not xs:
        return {"median": None, "p95": None, "max": None, "n": 0}
    return {"median": round(statistics.median(xs), 3), "p95": round(percentile(xs, 95), 3),
            "max": round(max(xs), 3), "n": len(xs)}


@dataclass
class Answers:
    """Who answered the request made through the virtual IP after each re-steer."""

    n: int = 0
    right: int = 0  # the re-steer's target replica
    wrong: int = 0  # another replica
    none: int = 0  # no answer within the fetch timeout

    def check(self, net: SiteNet, target: str) -> bool:
        """One request from the UE; True when the ``target`` replica (short name) answered."""
        body = net.fetch(URL)
        self.n += 1
        if body == f"replica {target}":
            self.right += 1
            return True
        if body:
            self.wrong += 1
            LOG.warning("re-steer to %s answered by %r", target, body)
        else:
            self.none += 1
            LOG.warning("re-steer to %s: no answer", target)
        return False


def _wait_event(c: NetworkManagerClient, since: int, pred: Any,
                timeout: float) -> dict[str, Any] | None:
    """The first event after ``since`` that ``pred`` accepts (None after ``timeout`` s)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        evs = [e for e in c.events(since) if pred(e)]
        if evs:
            return evs[0]
        time.sleep(0.02)
    return None


def _drain_phase(c: NetworkManagerClient, net: SiteNet, ue: str, k: int,
                 answers: Answers) -> dict[str, Any]:
    """``k`` re-steers with the default drain, each waited out: new-connection switch
    and drain end (established connections moved), both from the request's start."""
    new_ms: list[float] = []
    end_ms: list[float] = []
    missing = 0
    drain_s = None
    for i in range(k):
        short = "ra" if c.replica_of("web", ue) == net.host_name("rb") else "rb"
        since = c.events()[-1]["seq"]
        t_wall = time.time()
        r = c.set_primary("web", net.host_name(short), ue=ue)
        drain_s = r["changed"][0]["drain_s"] if r["changed"] else drain_s
        new_ms.append(r["reroute_ms"])
        answers.check(net, short)
        ev = _wait_event(c, since, lambda e: e["type"] == "drain_end" and e["ue"] == ue
                         and e.get("install_ms") is not None, timeout=(drain_s or 0) + 5)
        if ev is None:
            missing += 1  # counted, never averaged in
            continue
        end_ms.append((ev["ts"] - t_wall) * 1000.0 + ev["install_ms"])
        answers.check(net, short)  # after the drain every packet goes to the target
    return {"drain_s": drain_s, "new_connections_ms": _summary(new_ms),
            "drain_end_ms": _summary(end_ms), "drain_end_missing": missing}


def _location_phase(c: NetworkManagerClient, net: SiteNet, sites: int,
                    moves: int) -> tuple[list[float], list[float], int]:
    """Move the real UE between the first and the last AP; a ping from its new port makes
    the location event (re-sent while none came: the new port may not be up yet)."""
    loc_install, loc_detect, resent = [], [], 0
    since = c.events()[-1]["seq"]
    for k in range(moves):
        net.move(sites if k % 2 == 0 else 1, port=60 + k)
        sent: list[float] = []
        ev = None
        deadline = time.monotonic() + 5
        while ev is None and time.monotonic() < deadline:
            sent.append(time.time())
            net.ue().cmd(["busybox", "ping", "-c", "1", "-W", "1", "10.77.1.1"])
            ev = _wait_event(c, since, lambda e: e["type"] == "location"
                             and e.get("install_ms") is not None, timeout=0.5)
        if ev is None:
            raise RuntimeError(f"no location event after move {k}")
        resent += len(sent) - 1
        since = ev["seq"]
        t_send = max([t for t in sent if t <= ev["ts_packet_in"]] or sent[:1])
        loc_install.append(ev["install_ms"])
        loc_detect.append((ev["ts_installed"] - t_send) * 1000.0)
    return loc_install, loc_detect, resent


def run(line: str = "os-ken", n: int = 100, ues: int = 100, ring: bool = False,
        moves: int = 10, drains: int = 3, ofp_port: int | None = None,
        rest_port: int | None = None) -> dict[str, Any]:
    ofp, rest = PORTS[line]
    ctl = ControllerProcess(line=line, ofp_port=ofp_port or ofp, rest_port=rest_port or rest)
    sites = 6 if ring else 3
    net = SiteNet(n_sites=sites, ring=ring, ofp_port=ctl.ofp_port,
                  replica_sites={"ra": 2, "rb": sites})
    ue1 = net.host_name("ue1")
    try:
        c = ctl.start()
        net.build()
        ctl.wait_switches(sites)
        topo = net.topology()
        for i in range(ues - 1):  # virtual UEs at unused AP ports
            topo["hosts"].append({"name": config.name(f"v{i}"), "ip": f"10.77.{10 + i // 250}.{i % 250 + 1}",
                                  "mac": f"02:77:00:01:{i // 256:02x}:{i % 256:02x}",
                                  "dpid": net.dpid(i % sites + 1), "port": 1000 + i,
                                  "kind": "ue"})
        c.push_topology(**topo)
        c.add_service("web", VIP, config.SERVICE_PORT, primary=net.host_name("ra"))
        net.wait_http()
        answers = Answers()
        answers.check(net, "ra")  # the initial steering
        lat, touched = [], set()
        for k in range(n):
            short = "rb" if k % 2 == 0 else "ra"
            r = c.set_primary("web", net.host_name(short), ue=ue1)
            lat.append(r["reroute_ms"])
            touched.add(r["switches_touched"])
            answers.check(net, short)
        deadline = time.monotonic() + 10  # the back-to-back re-steers' drain ends first
        while c.drains() and time.monotonic() < deadline:
            time.sleep(0.05)
        drain = _drain_phase(c, net, ue1, drains, answers)
        # all UEs move at once: one concurrent per-UE re-steer request each
        names = [h["name"] for h in topo["hosts"] if h["kind"] == "ue"]
        target = "ra" if c.replica_of("web", ue1) == net.host_name("rb") else "rb"
        t0 = time.perf_counter()
        with ThreadPoolExecutor(max_workers=16) as pool:
            res = list(pool.map(lambda u: c.set_primary("web", net.host_name(target), ue=u), names))
        wall = time.perf_counter() - t0
        answers.check(net, target)
        other = "ra" if target == "rb" else "rb"
        batch = c.set_primary("web", net.host_name(other))
        answers.check(net, other)
        loc_install, loc_detect, resent = _location_phase(c, net, sites, moves)
        return {
            "controller": line, "topology": f"{sites}-site {'ring' if ring else 'line'}",
            "n": n, "reroute_ms": _summary(lat), "reroute_ms_raw": [round(x, 3) for x in lat],
            "switches_touched": max(touched),
            "dataplane": asdict(answers),
            "drain": drain,
            "ues": len(names), "events_per_s": round(len(res) / wall, 1),
            "concurrent_wall_s": round(wall, 4),
            "batch_reroute_ms": round(batch["reroute_ms"], 3),
            "batch_ues_per_s": round(len(batch["changed"]) / (batch["reroute_ms"] / 1000.0), 1),
            "location_install_ms": _summary(loc_install),
            "location_event_ms": _summary(loc_detect),
            "location_pings_resent": resent,
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
    r.add_argument("--drains", type=int, default=3,
                   help="re-steers with the default drain, each waited out (default 3)")
    r.add_argument("--ring", action="store_true", help="6-site ring instead of 3-site line")
    r.add_argument("--line", choices=("os-ken", "ryu", "both"), default="os-ken")


def _ms(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f} ms"


def _line(r: dict[str, Any]) -> str:
    rm, lm, dp, dr = r["reroute_ms"], r["location_event_ms"], r["dataplane"], r["drain"]
    return (f"{r['controller']:7s} {r['topology']}: re-steer x{r['n']} median "
            f"{_ms(rm['median'])} p95 {_ms(rm['p95'])} max {_ms(rm['max'])} "
            f"({r['switches_touched']} switch); answered by the target {dp['right']}/{dp['n']} "
            f"(wrong replica {dp['wrong']}, none {dp['none']}); drain {dr['drain_s']} s: new "
            f"connections {_ms(dr['new_connections_ms']['median'])}, established moved at "
            f"{_ms(dr['drain_end_ms']['median'])} (n={dr['drain_end_ms']['n']}, missing "
            f"{dr['drain_end_missing']}); {r['ues']} UEs at once: {r['events_per_s']:.0f} "
            f"re-steers/s (one request for all: {r['batch_ues_per_s']:.0f}/s); location event "
            f"median {_ms(lm['median'])} (install {_ms(r['location_install_ms']['median'])})")


def main(args: Any) -> int:
    lines = ["os-ken", "ryu"] if args.line == "both" else [args.line]
    results = [run(line, n=args.n, ues=args.ues, ring=args.ring, moves=args.moves,
                   drains=args.drains) for line in lines]
    if args.json:
        print(json.dumps(results[0] if len(results) == 1 else results, indent=1))
    else:
        for r in results:
            print(_line(r))
    bad = sum(r["dataplane"]["n"] - r["dataplane"]["right"] + r["drain"]["drain_end_missing"]
              for r in results)
    if bad:
        print(f"{bad} re-steers not answered by their target or drains never ended",
              file=sys.stderr)
    return 1 if bad else 0
