"""A small network of this process's prefix (MEC_PREFIX), held until stdin closes.

Used by test_clean_prefixes.py to run two prefixes at once (the prefix is read at
import, so each prefix needs its own process). Brings up topologies/line2.yaml in
standalone mode (switches, hosts, delay hops, registry, one engine per cloudlet),
starts a service container on cloudlet c1's engine and a container on the build
engine, prints one JSON line ``{"up": ...}``, then answers each ``check`` line on
stdin with one JSON line saying whether the network still passes traffic.

    sudo MEC_PREFIX=mxbb PYTHONPATH=. .venv/bin/python tests/integration/prefix_net.py
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from mec.core import config
from mec.core.proc import run
from mec.edge.images import registry_ref
from topologies.loader import load
from topologies.net import MecNetwork

REPO = Path(__file__).resolve().parents[2]


def check(net: MecNetwork, container) -> dict:
    """Traffic across the network: u1 -> c2 ping (over the s1-s2 link), u1 -> c1's service."""
    u1 = net.hosts["u1"].node
    out = u1.popen(["ping", "-n", "-c", "3", "-i", "0.2", "-W", "2", net.hosts["c2"].ip],
                   stdout=subprocess.PIPE).communicate(timeout=20)[0].decode()
    replies = len(re.findall(r"time=[\d.]+ ms", out))
    http = u1.popen(["curl", "-sf", "-m", "5", f"http://{net.hosts['c1'].ip}:{config.SERVICE_PORT}/"],
                    stdout=subprocess.PIPE).communicate(timeout=10)[0].decode()
    container.reload()
    return {"ping_replies": replies, "http": http.strip()[:200], "container": container.status}


def main() -> int:
    net = MecNetwork(load(REPO / "topologies" / "line2.yaml"))
    build_container = config.name("bhold")
    net.start()
    try:
        client = net.engine("c1").client()
        ref = registry_ref("busybox", net.registry_addr)
        client.images.pull(ref)
        container = client.containers.run(ref, detach=True, network_mode="host", name=config.name("hold"),
                                          environment={"MEC_INSTANCE": config.name("hold")})
        run(["docker", "run", "-d", "--network", "none", "--name", build_container,
             "--entrypoint", "sleep", f"{config.IMAGE_REPO}/busybox", "3600"], timeout=60)
        print(json.dumps({"up": True, "check": check(net, container)}), flush=True)
        for line in sys.stdin:
            if line.strip() == "check":
                try:
                    print(json.dumps(check(net, container)), flush=True)
                except Exception as exc:  # noqa: BLE001 - reported to the test, which fails on it
                    print(json.dumps({"error": repr(exc)}), flush=True)
    finally:
        run(["docker", "rm", "-f", build_container], check=False, timeout=60)
        net.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
