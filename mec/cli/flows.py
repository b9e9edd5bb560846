"""``mec flows``: the Network Manager's flow tables, decoded (raw with ``--raw``)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from typing import Any

from controller import cookies
from controller.client import NetworkManagerClient, NetworkManagerError
from controller.settings import ControllerSettings
from mec.core.config import NM_URL_FILE


def _default_url() -> str:
    """MEC_CTL_URL, else the running testbed's Network Manager, else the default REST port."""
    if os.environ.get("MEC_CTL_URL"):
        return os.environ["MEC_CTL_URL"]
    try:
        return NM_URL_FILE.read_text().strip()
    except OSError:
        return ControllerSettings().url


DEFAULT_URL = _default_url()


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("flows", help="show the Network Manager's flows, decoded")
    p.add_argument("--switch", help="only this switch (name or dpid)")
    p.add_argument("--service", help="only steering flows of this service")
    p.add_argument("--raw", action="store_true", help="also print ovs-ofctl dump-flows")
    p.add_argument("--url", default=DEFAULT_URL, help="controller REST URL (default: "
                   f"$MEC_CTL_URL, else the running testbed's, now {DEFAULT_URL})")
    p.set_defaults(func=cmd_flows)



def decode_rows(flows: list[dict[str, Any]], hosts: dict[int, str],
                services: dict[int, str]) -> list[dict[str, Any]]:
    """Turn ofctl-style flow stats into rows: kind, host/UE, service, replica, counters."""
    rows = []
    for f in flows:
        c = cookies.decode(int(f["cookie"]))
        if c is None:
            continue
        rows.append({
            "table": f["table_id"], "priority": f["priority"], "kind": c.kind.name,
            "host": hosts.get(c.host, "") if c.host else "",
            "service": services.get(c.service, "") if c.service else "",
            "replica": hosts.get(c.replica, "") if c.replica else "",
            "packets": f["packet_count"], "bytes": f["byte_count"],
            "match": ",".join(f"{k}={v}" for k, v in f["match"].items()),
            "actions": ",".join(str(a) for a in f["actions"]),
        })
    return rows


def cmd_flows(args: argparse.Namespace) -> int:
    c = NetworkManagerClient(args.url)
    try:
        topo = c.topology()
        hosts = {h["id"]: h["name"] for h in topo["hosts"]}
        services = {s["id"]: s["name"] for s in c.services()}
        switches = [s for s in c.switches() if s["connected"]]
        if args.switch:
            switches = [s for s in switches
                        if args.switch in (s["name"], str(s["dpid"]), s["dpid_str"])]
            if not switches:
                print(f"no connected switch {args.switch!r}", file=sys.stderr)
                return 1
        for s in switches:
            rows = decode_rows(c.flows(s["dpid"]), hosts, services)
            if args.service:
                rows = [r for r in rows if r["service"] == args.service]
            print(f"== {s['name']} (dpid {s['dpid']}): {len(rows)} flows")
            print(f"  {'tbl':>3} {'prio':>4} {'kind':<9} {'host/UE':<10} {'service':<8} "
                  f"{'replica':<10} {'packets':>8} {'bytes':>9}  match -> actions")
            for r in rows:
                print(f"  {r['table']:>3} {r['priority']:>4} {r['kind']:<9} {r['host']:<10} "
                      f"{r['service']:<8} {r['replica']:<10} {r['packets']:>8} {r['bytes']:>9}  "
                      f"{r['match']} -> {r['actions']}")
            if args.raw:
                bridge = s.get("bridge") or s["name"]
                out = subprocess.run(["ovs-ofctl", "--timeout=10", "-O", "OpenFlow13", "dump-flows",
                                      bridge], capture_output=True, text=True, timeout=15)
                print(f"-- ovs-ofctl -O OpenFlow13 dump-flows {bridge}")
                print(out.stdout if out.returncode == 0 else out.stderr, end="")
    except NetworkManagerError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0
