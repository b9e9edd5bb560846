"""`mec smoke`: the smallest end-to-end check that the machine can run the testbed.

Builds one userspace OVS switch with a UE, a cloudlet running its own Docker
engine and a cloud node running the image registry; the cloudlet pulls the
busybox service image from the cloud across the emulated network, runs it, and
the UE fetches a page that names the instance. Everything is removed at the end.
"""

from __future__ import annotations

import logging
import time

from mec.core import config
from mec.core.proc import wait_until

log = logging.getLogger(__name__)


def run_smoke(image: str = "busybox", hold_s: float = 0.0) -> dict:
    """Run the smoke check; returns measured timings. Raises on any failure."""
    from mininet.net import Mininet
    from mininet.node import OVSSwitch

    from mec.edge.images import registry_ref
    from topologies.registry import RegistryServer
    from topologies.engine import DockerEngine

    p = config.name()
    net = Mininet(controller=None, build=False, autoSetMacs=False)
    engine = registry = None
    timings: dict[str, float] = {}
    try:
        sw = net.addSwitch(f"{p}sw0", cls=OVSSwitch, datapath="user", failMode="standalone",
                           protocols="OpenFlow13", dpid="00000000000000f0")
        ue = net.addHost(f"{p}ue0", ip="10.9.0.1/24")
        edge = net.addHost(f"{p}c0", ip="10.9.0.2/24")
        cloud = net.addHost(f"{p}cl0", ip="10.9.0.3/24")
        for host in (ue, edge, cloud):
            net.addLink(host, sw)
        t0 = time.perf_counter()
        net.build()
        net.start()
        timings["network_up_s"] = time.perf_counter() - t0
        registry_addr = f"10.9.0.3:{config.REGISTRY_PORT}"
        registry = RegistryServer(name=f"{p}cl0", addr=registry_addr,
                                  netns_path=f"/proc/{cloud.pid}/ns/net").start()
        t0 = time.perf_counter()
        engine = DockerEngine(name=f"{p}c0", netns_path=f"/proc/{edge.pid}/ns/net",
                              insecure_registries=(registry_addr,)).start()
        timings["engine_up_s"] = time.perf_counter() - t0
        client = engine.client()
        ref = registry_ref(image, registry_addr)
        t0 = time.perf_counter()
        wait_until(lambda: edge.popen(["curl", "-sf", "-m", "2", f"http://{registry_addr}/v2/"])
                   .wait(timeout=10) == 0, timeout=20, what="the cloud registry")
        client.images.pull(ref)
        timings["pull_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        client.containers.run(ref, detach=True, network_mode="host", name=f"{p}smoke",
                              environment={"MEC_INSTANCE": f"{p}c0/smoke"})
        url = f"http://10.9.0.2:{config.SERVICE_PORT}/"

        def fetch() -> str:
            proc = ue.popen(["curl", "-s", "-m", "2", url])
            out, _ = proc.communicate(timeout=5)
            return out.decode().strip() if proc.returncode == 0 else ""

        body = wait_until(fetch, timeout=20, interval=0.02, what=f"the service at {url}")
        timings["launch_to_answer_s"] = time.perf_counter() - t0
        if hold_s > 0:
            print(f"smoke: holding the network for {hold_s:.0f} s (Ctrl-C to stop)", flush=True)
            time.sleep(hold_s)
        return {"ok": True, "answer": body, "image": ref, **timings}
    finally:
        if engine:
            engine.stop()
        if registry:
            registry.stop()
        net.stop()
