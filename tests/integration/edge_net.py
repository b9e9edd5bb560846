"""A small emulated network for Edge Manager / data sync integration tests.

Two cloudlets (each with its own Docker engine) and a cloud node running the
image registry, plus a UE, all on one userspace OVS switch in standalone mode.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field

from mec.core import config
from mec.core.proc import run, wait_until

SUBNET = "10.9.7"


@dataclass
class EdgeNet:
    net: object
    ue: object
    cloud: object
    cloudlets: dict = field(default_factory=dict)  # name -> Mininet host
    engines: dict = field(default_factory=dict)  # name -> DockerEngine
    registry: object = None
    registry_addr: str = ""

    def netns(self, host) -> str:
        return f"/proc/{host.pid}/ns/net"


@contextmanager
def edge_net(n_cloudlets: int = 2, engines: bool = True, link=None):
    """Yield an EdgeNet; everything is stopped and removed on exit.

    LINK (``topologies.model.LinkParams``) shapes every host's link to the switch
    (``topologies.link.add_shaped_link``); None: plain veth links.
    """
    from mininet.net import Mininet
    from mininet.node import OVSSwitch

    from topologies.registry import RegistryServer
    from topologies.engine import DockerEngine

    p = config.name()
    sw_name = f"{p}esw0"
    run(["ovs-vsctl", "--timeout=10", "--if-exists", "del-br", sw_name], check=False)
    net = Mininet(controller=None, build=False, autoSetMacs=False)
    env = None
    try:
        sw = net.addSwitch(sw_name, cls=OVSSwitch, datapath="user", failMode="standalone",
                           protocols="OpenFlow13", dpid="00000000000000e7")
        ue = net.addHost(f"{p}eue", ip=f"{SUBNET}.1/24")
        cloud = net.addHost(f"{p}ecl", ip=f"{SUBNET}.3/24")
        hosts = {f"c{i}": net.addHost(f"{p}ec{i}", ip=f"{SUBNET}.{10 + i}/24")
                 for i in range(n_cloudlets)}
        for i, h in enumerate((ue, cloud, *hosts.values())):
            if link is None:
                net.addLink(h, sw)
            else:
                from topologies.link import add_shaped_link
                add_shaped_link(net, h, sw, link, name=f"{p}eh{i}")
        net.build()
        net.start()
        env = EdgeNet(net, ue, cloud, hosts)
        env.registry_addr = f"{SUBNET}.3:{config.REGISTRY_PORT}"
        env.registry = RegistryServer(name=f"{p}ecl", addr=env.registry_addr,
                                      netns_path=env.netns(cloud)).start()
        if engines:
            for name, h in hosts.items():
                env.engines[name] = DockerEngine(
                    name=f"{p}e{name}", netns_path=env.netns(h),
                    insecure_registries=(env.registry_addr,)).start()
            first = next(iter(hosts.values()))
            wait_until(lambda: first.popen(["curl", "-sf", "-m", "2",
                                            f"http://{env.registry_addr}/v2/"]).wait(timeout=10) == 0,
                       timeout=20, what="the cloud registry")
        yield env
    finally:
        if env is not None:
            for engine in env.engines.values():
                engine.stop()
            if env.registry:
                env.registry.stop()
        net.stop()
        run(["ovs-vsctl", "--timeout=10", "--if-exists", "del-br", sw_name], check=False)
