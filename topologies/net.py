"""The emulated MEC network of one topology, brought up on Mininet and torn down again.

`MecNetwork` turns a validated `Topology` into running parts:

* one userspace OVS switch per site (the access point), OpenFlow 1.3, connected
  to the Network Manager when a controller address is given (else standalone
  learning switches, which only loop-free topologies allow);
* one Mininet host per cloudlet, UE and the cloud, each in its own network
  namespace, also reachable by name with ``ip netns exec PREFIX-NAME ...``;
* every link shaped as the topology says (`topologies.link.add_shaped_link`);
* a Docker engine of its own in every cloudlet (`topologies.engine`), limited
  to the cloudlet's capacity, trusting the cloud registry;
* the image registry in the cloud node (`topologies.registry`);
* UE mobility: each UE is wired to the access points it may use, one link up at a
  time (`topologies.radio`); `move()` hands it over to another site's switch;
* split over servers when given a `topologies.cluster.Split`: each site's switch,
  cloudlets (with their engines), the cloud (with its registry) and links' delay hops
  on its server, links between servers as VXLAN tunnels; the UEs stay on this machine.

Use it as a context manager; everything it started is removed on exit.
"""

from __future__ import annotations

import json
import logging
import socket
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Optional

from mininet.net import Mininet
from mininet.node import Host, OVSSwitch, RemoteController

from mec.core import config
from mec.core.proc import run, wait_until
from mec.core.watchdog import Component, process_component
from topologies.registry import RegistryServer, RemoteRegistry
from topologies.backends import Backend, get_backend
from topologies.cluster import ClusterHost, ClusterSwitch, Split, VxlanLink
from topologies.datapath import ovs_datapath
from topologies.engine import DockerEngine, RemoteEngine
from topologies.link import ShapedLink, add_shaped_link, configure_links, remove_network
from topologies.mobility import MobilityEvent
from topologies.quiet import disable_ipv6_namespaces, disable_ipv6_ports
from topologies.radio import Radio, access_sites, ports_view
from topologies.model import Topology, mac_for

log = logging.getLogger(__name__)

#: Idle time (ms) after which a switch probes its controller connection (OVS: 5000).
INACTIVITY_PROBE_MS = 60_000


@dataclass
class HostInfo:
    """Where a host of the topology sits: what the controller needs to forward to it."""

    name: str  # topology name (e.g. "c1")
    kind: str  # "cloudlet" | "ue" | "cloud"
    ip: str
    mac: str
    site: str
    node: Host = field(repr=False)

    @property
    def netns_path(self) -> str:
        return f"/proc/{self.node.pid}/ns/net"


class _NetworkManager(RemoteController):
    """The Network Manager as Mininet's controller object. Mininet's own check that it
    listens decodes telnet's output as UTF-8, which the binary OpenFlow HELLO breaks now
    and then (UnicodeDecodeError at bring-up): a TCP connect is the check here."""

    def checkListening(self) -> None:  # noqa: N802 (Mininet API)
        socket.create_connection((self.ip, self.port), timeout=5).close()


class MecNetwork:
    """A running emulated MEC network (see module docstring)."""

    def __init__(self, topology: Topology, controller: Optional[tuple[str, int]] = None,
                 nm_client: Any = None, events: Any = None, seed: int = 1,
                 backend: "str | Backend" = "mininet", split: Optional[Split] = None):
        """controller: (ip, OpenFlow port) of the Network Manager, None = standalone switches;
        nm_client: its client (`controller.client.NetworkManagerClient`), which is given the
        switch graph and host attachments as soon as the switches exist;
        backend: "mininet", "containernet" (UEs are Docker hosts) or "auto", or a
        `topologies.backends.Backend` made by the caller;
        split: where each site runs (None: everything on this machine)."""
        if topology.servers and split is None:
            raise ValueError(f"{topology.source or topology.name}: servers: "
                             f"{', '.join(topology.servers)}: a split network needs its servers' "
                             "access (`mec net up` gives it; docs/scale-out.md)")
        self.backend: Backend = backend if isinstance(backend, Backend) else get_backend(backend)
        if split is not None:
            _check_split(topology, split, self.backend)
        self.split = split
        self.topology = topology
        self.controller = controller
        self.nm_client = nm_client
        self.events = events
        self.seed = seed
        self.net: Optional[Mininet] = None
        self.switches: dict[str, OVSSwitch] = {}
        self.hosts: dict[str, HostInfo] = {}
        self.links: list[ShapedLink] = []
        self.access: dict[str, ShapedLink] = {}  # UE name -> its access link
        self.engines: dict[str, DockerEngine] = {}
        self.registry: Optional[RegistryServer] = None
        self.ue_site: dict[str, str] = {}
        self.radios: dict[str, Radio] = {}  # UE name -> its links to the access points
        self.timings: dict[str, float] = {}
        #: engine starts running in the background while the links are built
        self._engine_starts: dict[str, Future] = {}
        self._pool: Optional[ThreadPoolExecutor] = None

    # ------------------------------------------------------------------ addresses
    @property
    def registry_addr(self) -> str:
        return f"{self.topology.cloud.ip}:{config.REGISTRY_PORT}"

    @property
    def delay_mechanisms(self) -> set[str]:
        return {link.mechanism for link in self.links}

    def host(self, name: str) -> HostInfo:
        try:
            return self.hosts[name]
        except KeyError:
            raise KeyError(f"unknown host {name!r} (hosts: {', '.join(self.hosts)})") from None

    def engine(self, cloudlet: str) -> DockerEngine:
        try:
            return self.engines[cloudlet]
        except KeyError:
            raise KeyError(f"unknown cloudlet {cloudlet!r} (cloudlets: "
                           f"{', '.join(self.engines)})") from None

    def port_of(self, name: str) -> tuple[str, int]:
        """(dpid, OpenFlow port) where host NAME is attached now."""
        self.host(name)
        return self._switch_end(self._host_links[name])

    @staticmethod
    def _switch_end(link: ShapedLink) -> tuple[str, int]:
        """(dpid, OpenFlow port) of LINK's end at a switch."""
        sw = link.intf_b.node
        return sw.dpid, sw.ports[link.intf_b]

    def _wire_ue(self, ue: str, first: ShapedLink) -> None:
        """Wire UE to every access point it may use (`topologies.radio.access_sites`);
        FIRST is its link to its start site. The links come up in `Radio.setup`."""
        info = self.hosts[ue]
        links = {info.site: first}
        for site in access_sites(self.topology, ue)[1:]:
            links[site] = self._access_link(ue, site, running=False)
        self.radios[ue] = Radio(ue, info.node.name, info.ip, self.topology.subnet.prefixlen,
                                info.mac, links, info.site)

    def _access_link(self, ue: str, site: str, running: bool = True) -> ShapedLink:
        """A new link from UE to SITE's switch, shaped as the UE's link."""
        assert self.net is not None
        n = len(self.links)  # grows by one per link: names stay unique
        link = add_shaped_link(self.net, self.hosts[ue].node, self.switches[site],
                               self.topology.node(ue).link, name=config.name(f"a{n}"),
                               seed=self.seed + 5000 + 2 * n, running=running)
        self.links.append(link)
        if running:
            self._silence([link])
        return link

    # ------------------------------------------------------------------ lifecycle
    def _lap(self, key: str, since: float) -> float:
        """Record the phase that began at SINCE as ``timings[key]`` (seconds, measured);
        returns now, the start of the next phase."""
        now = time.perf_counter()
        self.timings[key] = now - since
        return now

    def start(self) -> "MecNetwork":
        """Bring everything up; on any failure, remove what was started and re-raise."""
        t0 = time.perf_counter()
        try:
            self._build()
            self._start_services()
        except BaseException:
            self.stop()
            raise
        self.timings["up_s"] = time.perf_counter() - t0
        log.info("network %s up in %.1f s (delay: %s)", self.topology.name,
                 self.timings["up_s"], ", ".join(sorted(self.delay_mechanisms)) or "none")
        return self

    def _build(self) -> None:
        topo = self.topology
        if not self.controller and topo.graph().number_of_edges() >= len(topo.sites):
            # Standalone switches learn and flood; the delay hops' Linux bridges do not
            # pass spanning-tree frames, so a loop would storm. The controller forwards
            # on shortest paths and never floods.
            raise ValueError(f"{topo.source}: the site graph has a cycle: run it with the "
                             "Network Manager (a controller), not in standalone mode")
        t = time.perf_counter()
        split = {"link": VxlanLink} if self.split else {}  # links between servers: tunnels
        self.net = net = self.backend.net_cls(controller=None, build=False, autoSetMacs=False,
                                              autoStaticArp=False, **split)
        if self.controller:
            ip, port = self.controller
            net.addController(_NetworkManager(config.name("ctl"), ip=ip, port=port))
        for site in topo.sites:
            opts = {"failMode": "secure"} if self.controller else {"failMode": "standalone"}
            self.switches[site.name] = net.addSwitch(
                topo.switch_name(site.name), datapath=ovs_datapath(),
                protocols="OpenFlow13", dpid=topo.dpid(site.name), batch=True,
                **opts, **self._placed(site.name, ClusterSwitch, OVSSwitch))
        prefixlen = topo.subnet.prefixlen
        self._host_links: dict[str, ShapedLink] = {}
        for node, kind in ([(c, "cloudlet") for c in topo.cloudlets]
                           + [(u, "ue") for u in topo.ues] + [(topo.cloud, "cloud")]):
            params = self._placed(node.site, ClusterHost, None) if self.split \
                else self.backend.host(kind)
            mininet_host = net.addHost(topo.host_name(node.name), ip=f"{node.ip}/{prefixlen}",
                                       mac=mac_for(node.ip), **params)
            self.hosts[node.name] = HostInfo(node.name, kind, node.ip, mac_for(node.ip),
                                             node.site, mininet_host)
        t = self._lap("nodes_s", t)
        self._launch_services()
        for i, link in enumerate(topo.links):
            self.links.append(add_shaped_link(
                net, self.switches[link.a], self.switches[link.b], link.params,
                name=config.name(f"l{i}"), seed=self.seed + 2 * i, running=False, defer=True))
        for j, (name, info) in enumerate(self.hosts.items()):
            params = topo.node(name).link
            shaped = add_shaped_link(net, info.node, self.switches[info.site], params,
                                     name=config.name(f"h{j}"), seed=self.seed + 1000 + 2 * j,
                                     running=False, defer=True)
            self.links.append(shaped)
            self._host_links[name] = shaped
            if info.kind == "ue":
                self.access[name] = shaped
                self.ue_site[name] = info.site
                self._wire_ue(name, shaped)
        self._silence(self.links, self.hosts.values())
        t = self._lap("links_s", t)
        # the hops are configured (in their own namespaces) while the switches start
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="hops") as hops:
            configured = hops.submit(configure_links, self.links)
            net.build()
            net.start()
            if self.controller:
                self._reconnect_fast()
            configured.result()
        t = self._lap("switches_s", t)
        for server, infos in self._hosts_by_server().items():  # one process per server
            script = "".join(f"netns attach {i.node.name} {i.node.pid}\n" for i in infos)
            if server is None:
                run(["ip", "-batch", "-"], input=script)
            else:
                infos[0].node.run(["ip", "-batch", "-"], input=script)
        for radio in self.radios.values():
            radio.setup()
        t = self._lap("netns_s", t)
        if self.nm_client is not None:
            self.nm_client.push_topology(**self.controller_view())
            self.nm_client.wait_ready(timeout=30, switches=len(self.switches))
        self._lap("controller_s", t)

    def _silence(self, links: list[ShapedLink], hosts: Any = ()) -> None:
        """IPv6 off on this machine's switch ports and in its hosts' and hops'
        namespaces (`topologies.quiet`): an idle network then sends no packet, each of
        which would wake the shared ovs-vswitchd for work over every port it has.
        Nodes on other servers are left as they are."""
        t = time.perf_counter()
        here = lambda node: not getattr(getattr(node, "site_server", None), "remote", False)  # noqa: E731
        ports = [intf.name for link in links for intf in (link.intf_a, link.intf_b)
                 if hasattr(intf.node, "dpid") and here(intf.node)]
        nodes = [info.node for info in hosts] + [link.hop for link in links if link.hop]
        disable_ipv6_ports(ports)
        disable_ipv6_namespaces(f"/proc/{node.pid}/ns/net" for node in nodes if here(node))
        self.timings["ipv6_off_s"] = self.timings.get("ipv6_off_s", 0.0) \
            + time.perf_counter() - t

    def _placed(self, site: str, cluster_cls: Any, cls: Any) -> dict[str, Any]:
        """The node parameters that put a node of SITE where it runs: on a split network,
        CLUSTER_CLS on the site's server; else CLS (None: the network's default)."""
        if self.split:
            return {"cls": cluster_cls, **self.split.node_params(site)}
        return {"cls": cls} if cls is not None else {}

    def _hosts_by_server(self) -> dict[Optional[str], list[HostInfo]]:
        """The hosts grouped by the remote server they run on (None: this machine)."""
        groups: dict[Optional[str], list[HostInfo]] = {}
        for info in self.hosts.values():
            server = getattr(info.node, "site_server", None)
            groups.setdefault(server.name if server and server.remote else None, []).append(info)
        return groups

    def _reconnect_fast(self) -> None:
        """Switches retry a lost controller every second at most (OVS's default backs off
        to 8 s), so a restarted Network Manager has them back within about a second.
        They probe an idle controller connection every `INACTIVITY_PROBE_MS` instead of
        OVS's 5 s: each probe and its echo reply wake the shared ovs-vswitchd for work
        over every port of the machine (N bridges: N/5 probes a second). A controller
        that dies closes its connections (the kernel does, on loopback), which OVS sees
        at once; the probe would only find a hung one. Switches on other servers keep
        OVS's probe (a lost server closes no connection). One query and one change per
        server's OVS."""
        groups: dict[Optional[str], list[Any]] = {}
        for sw in self.switches.values():
            server = getattr(sw, "site_server", None)
            groups.setdefault(server.name if server and server.remote else None, []).append(sw)
        for server, switches in groups.items():
            ovs = (lambda argv, sw=switches[0]: sw.run(argv, timeout=15)) if server else \
                (lambda argv: run(argv, timeout=15).stdout)
            bridges = [sw.name for sw in switches]
            rows = ovs(["ovs-vsctl", "--timeout=10", "--format=json",
                        "--columns=name,controller", "find", "Bridge"])
            uuids = []
            for name, ctl in json.loads(rows)["data"]:
                if name in bridges:
                    uuids += [u for kind, u in ([ctl] if ctl[0] == "uuid" else ctl[1])]
            args = ["ovs-vsctl", "--timeout=10"]
            for uuid in uuids:
                args += ["--", "set", "Controller", uuid, "max_backoff=1000"]
                if server is None:  # across servers a dead peer closes nothing: OVS's 5 s
                    args.append(f"inactivity_probe={INACTIVITY_PROBE_MS}")
            if uuids:
                ovs(args)

    def controller_view(self) -> dict[str, list[dict[str, Any]]]:
        """The switch graph and host attachments, as the Network Manager's REST API takes them."""
        site_of = {sw: site for site, sw in self.switches.items()}
        switches = [{"name": site, "dpid": int(sw.dpid, 16), "bridge": sw.name}
                    for site, sw in self.switches.items()]
        links, hosts = [], []
        for shaped in self.links:
            a, b = shaped.intf_a, shaped.intf_b
            if a.node in site_of and b.node in site_of:
                links.append({"a_dpid": int(a.node.dpid, 16), "a_port": a.node.ports[a],
                              "b_dpid": int(b.node.dpid, 16), "b_port": b.node.ports[b]})
        for name, info in self.hosts.items():
            dpid, port = self.port_of(name)
            hosts.append({"name": name, "ip": info.ip, "mac": info.mac, "dpid": int(dpid, 16),
                          "port": port, "kind": info.kind})
            if name in self.radios:  # where the UE may attach: the AP ports of its links
                hosts[-1]["ports"] = ports_view(self.radios[name], self._switch_end)
        return {"switches": switches, "links": links, "hosts": hosts}

    def _launch_services(self) -> None:
        """Start the cloud registry and every cloudlet's engine in the background.

        They need only their node's namespace, not the links, so they come up while the
        links are built (an engine's start is mostly waiting for dockerd and containerd);
        `_start_services` waits for them."""
        topo = self.topology
        self._services_t0 = time.perf_counter()
        cloud = self.hosts[topo.cloud.name]
        remote = self.split is not None and self.split.of_site(topo.cloud.site).remote
        self.registry = (RemoteRegistry if remote else RegistryServer)(
            name=cloud.node.name, addr=self.registry_addr, netns_path=cloud.netns_path,
            **({"node": cloud.node} if remote else {})).start()
        # engine starts, then one registry check per cloudlet, all at once
        self._pool = ThreadPoolExecutor(max_workers=max(1, 2 * len(topo.cloudlets)),
                                        thread_name_prefix="engine")
        for c in topo.cloudlets:
            info = self.hosts[c.name]
            remote = self.split is not None and self.split.of_site(c.site).remote
            engine = self.engines[c.name] = (RemoteEngine if remote else DockerEngine)(
                name=info.node.name, netns_path=info.netns_path,
                insecure_registries=(self.registry_addr,), cpus=c.cpus, memory_mb=c.memory_mb,
                **({"node": info.node} if remote else {}))
            self._engine_starts[c.name] = self._pool.submit(self._start_engine, engine)

    def _start_engine(self, engine: DockerEngine) -> float:
        """Start ENGINE; returns when it answered (perf_counter)."""
        engine.start()
        return time.perf_counter()

    def _start_services(self) -> None:
        """Wait for the engines launched by `_launch_services` and check, from every
        cloudlet at once, that the cloud registry answers across the emulated network."""
        t = time.perf_counter()
        url = f"http://{self.registry_addr}/v2/"

        def reach(name: str) -> None:
            node, topo = self.hosts[name].node, self.topology
            cloudlet = topo.cloudlet(name)
            rtt_s = (topo.path_delay_ms(cloudlet.site, topo.cloud.site) + cloudlet.link.delay_ms
                     + topo.cloud.link.delay_ms) / 1000
            limit = f"{2 + 3 * rtt_s:.1f}"  # connect and GET: two round trips, and then some
            wait_until(lambda: node.popen(["curl", "-sf", "-m", limit, url]).wait(
                timeout=10 + 3 * rtt_s) == 0, timeout=30 + 3 * rtt_s, interval=0.1,
                what=f"the cloud registry from cloudlet {name}")

        checks = [self._pool.submit(reach, name) for name in self.engines]
        for future in checks:
            future.result()
        self.timings["reach_s"] = time.perf_counter() - t
        ready = [future.result() for future in self._engine_starts.values()]
        self.timings["engines_s"] = max(ready, default=self._services_t0) - self._services_t0
        self._lap("services_wait_s", t)

    def stop(self) -> None:
        """Tear everything down (engines, registry, links, switches, hosts); idempotent.
        A part that fails to stop does not stop the rest: everything is removed, then the
        first failure is raised."""
        t0 = t = time.perf_counter()
        for radio in self.radios.values():
            radio.close()
        wait(list(self._engine_starts.values()))  # an engine still starting is stopped too
        self._engine_starts.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        with ThreadPoolExecutor(max_workers=max(1, len(self.engines))) as pool:
            stops = [pool.submit(e.stop) for e in self.engines.values()]
        failures = [f.exception() for f in stops if f.exception() is not None]
        self.engines.clear()
        if self.registry:
            try:
                self.registry.stop()
            except Exception as exc:  # noqa: BLE001 - raised once the rest is removed
                failures.append(exc)
            self.registry = None
        for exc in failures:
            log.warning("stopping the network: %s", exc)
        t = self._lap("engines_down_s", t)
        for server, infos in self._hosts_by_server().items():
            script = "".join(f"netns del {info.node.name}\n" for info in infos)
            if server is None:
                run(["ip", "-force", "-batch", "-"], check=False, input=script)
            else:
                infos[0].node.run(["ip", "-force", "-batch", "-"], input=script, check=False)
        t = self._lap("netns_down_s", t)
        if self.net is not None:
            remove_network(self.net, self.links)
            self.net = None
        self._lap("net_down_s", t)
        self.timings["down_s"] = time.perf_counter() - t0
        if failures:
            raise failures[0]

    def __enter__(self) -> "MecNetwork":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------ mobility
    def move(self, ue: str, to_site: str, announce: bool = False) -> MobilityEvent:
        """Hand UE over from its current site's access point to TO_SITE's.

        The UE's radio (`topologies.radio.Radio`) flips which of its links is up, with
        the topology's ``handover`` for this UE (radio time and mode). Timestamps
        (monotonic): request, detached from the old access point, attached to the new
        one; the event carries the radio's time and the emulator's own cost apart.
        The access point sees the link come up (OpenFlow port status): that is how the
        Network Manager learns the new location. ``announce`` additionally sends one
        ping from the UE after the move (an explicit option; nothing needs it).
        """
        self.topology.site(to_site)
        if ue not in self.radios:
            raise KeyError(f"unknown UE {ue!r} (UEs: {', '.join(self.radios)})")
        from_site = self.ue_site[ue]
        event = MobilityEvent(ue=ue, from_site=from_site, to_site=to_site,
                              t_request=time.monotonic())
        self._emit("move.request", ue=ue, from_site=from_site, to_site=to_site)
        radio = self.radios[ue]
        if not radio.attached:
            return self._reattach(ue, radio, to_site, event)
        if to_site == from_site:
            raise ValueError(f"UE {ue} is already at site {to_site}")
        event.prepared = to_site in radio.sites
        if not event.prepared:
            log.warning("UE %s was not wired to site %s in advance: wiring it now (slow)",
                        ue, to_site)
            radio.wire(to_site, self._access_link(ue, to_site))
        radio.handover(to_site, self.topology.handover_of(ue), event)
        self.ue_site[ue] = to_site
        self.access[ue] = self._host_links[ue] = radio.link(to_site)
        self._emit("move.attached", ue=ue, from_site=from_site, to_site=to_site,
                   handover_s=event.t_attached - event.t_request, radio_ms=event.radio_ms,
                   emulator_ms=event.emulator_ms, mode=event.mode, prepared=event.prepared)
        if announce or not event.prepared:
            # a link wired during the move is unknown to the Network Manager as one of the
            # UE's attach ports: the UE's own packet tells it instead
            self.hosts[ue].node.popen(["ping", "-c", "1", "-W", "1", self.topology.cloud.ip])
        return event

    def detach(self, ue: str) -> MobilityEvent:
        """UE leaves every access point's coverage: its link goes down, none comes up
        (the probe sees the outage); its next `move` attaches it again. ``t_detached``
        is when the link went down; ``to_site`` is empty."""
        radio = self.radios[ue]
        if not radio.attached:
            raise ValueError(f"UE {ue} is already detached")
        event = MobilityEvent(ue=ue, from_site=self.ue_site[ue], to_site="", t_request=time.monotonic())
        radio.detach(event)
        self._emit("move.detached", ue=ue, from_site=event.from_site)
        return event

    def _reattach(self, ue: str, radio: Any, to_site: str, event: MobilityEvent) -> MobilityEvent:
        """A detached UE comes back in coverage at TO_SITE (no old link to release)."""
        event.prepared = to_site in radio.sites
        if not event.prepared:
            radio.wire(to_site, self._access_link(ue, to_site))
        event.t_detached = None
        radio.attach(to_site, event)
        self.ue_site[ue] = to_site
        self.access[ue] = self._host_links[ue] = radio.link(to_site)
        self._emit("move.attached", ue=ue, from_site=event.from_site, to_site=to_site,
                   handover_s=event.t_attached - event.t_request, radio_ms=event.radio_ms,
                   emulator_ms=event.emulator_ms, mode="reattach", prepared=event.prepared)
        return event

    def play(self, moves: Any, t0: Optional[float] = None) -> "MobilityPlayer":
        """Execute a schedule of `topologies.mobility.Move` in the background (see MobilityPlayer)."""
        return MobilityPlayer(self, list(moves), t0).start()

    # ------------------------------------------------------------------ watched processes
    def components(self) -> list[Component]:
        """The processes this network depends on, for a `mec.core.watchdog.Watchdog`:
        every delay line, every cloudlet engine (not one crashed on purpose by
        `fail_cloudlet`) and the cloud registry."""
        out = []
        for link in self.links:
            for line in (link.hop.lines if link.hop else []):
                out.append(process_component(
                    f"delay line {link.name} {line.direction} (queue {line.queue})",
                    "delay-line", lambda line=line: line.popen, log_file=line.log_path))
        for name, engine in self.engines.items():
            out.append(Component(
                f"engine {name}", "engine",
                lambda e=engine: e.crashed_on_purpose or (
                    e.process is not None and e.process.poll() is None),
                lambda e=engine: _exit_text(e.process, e.log_file)))
        if self.registry is not None:
            reg = self.registry
            out.append(process_component("registry", "registry", lambda: reg.process))
        return out

    # ------------------------------------------------------------------ failures
    def fail_cloudlet(self, cloudlet: str) -> None:
        """Crash CLOUDLET: its engine and every service container on it die at once.

        An experiment's own failure: the engine is marked as crashed on purpose, so
        a watchdog does not count it as a death of the testbed."""
        engine = self.engine(cloudlet)
        engine.crashed_on_purpose = True
        pids = engine.kill()
        self._emit("cloudlet.failed", cloudlet=cloudlet, processes=len(pids))

    def _emit(self, kind: str, **fields: Any) -> None:
        if self.events is not None:
            self.events.emit(kind, **fields)


class MobilityPlayer:
    """Plays a mobility schedule (scripted, trace or random walk) on a running network.

    Move *i* is made at ``t0 + moves[i].at_s`` (monotonic; ``t0`` defaults to the
    start), in a background thread; moves that fall due late are made at once.
    Each produces a `MobilityEvent` (in ``events``) and the network's
    ``move.request`` / ``move.attached`` events, which other components subscribe to.
    """

    def __init__(self, network: MecNetwork, moves: list, t0: Optional[float] = None):
        import threading

        self.network = network
        self.moves = sorted(moves)
        self.t0 = t0
        self.events: list[MobilityEvent] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mobility", daemon=True)

    def start(self) -> "MobilityPlayer":
        if self.t0 is None:
            self.t0 = time.monotonic()
        self._thread.start()
        return self

    def _run(self) -> None:
        for move in self.moves:
            if self._stop.wait(max(0.0, self.t0 + move.at_s - time.monotonic())):
                return
            try:
                self.events.append(self.network.detach(move.ue) if move.to_site == "" else
                                   self.network.move(move.ue, move.to_site))
            except Exception as exc:  # noqa: BLE001 - recorded, the schedule goes on
                self.errors.append(f"move at {move.at_s:g} s of {move.ue} to {move.to_site}: "
                                   f"{exc}")
                log.warning("%s", self.errors[-1])

    def wait(self, timeout: Optional[float] = None) -> list[MobilityEvent]:
        """Wait for the schedule to finish; returns the executed moves."""
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError("the mobility schedule is still running")
        return self.events

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)



def _check_split(topology: Topology, split: Split, backend: Backend) -> None:
    """What a split network cannot run yet, refused before anything starts: the UEs'
    radios and probes work on this machine only."""
    where = topology.source or topology.name
    missing = [s.name for s in topology.sites if s.name not in split.site_server]
    if missing:
        raise ValueError(f"{where}: sites {', '.join(missing)} are placed on no server")
    remote = set(split.remote_sites())
    local = sorted({split.site_server[s] for s in split.site_server if s not in remote})
    here = f"server {local[0]}" if local else "a server that is this machine (localhost)"
    for ue in topology.ues:
        if ue.site in remote:
            raise ValueError(f"{where}: UE {ue.name} starts at site {ue.site} on server "
                             f"{split.site_server[ue.site]}: UEs run on this machine only for "
                             f"now: place {ue.site} on {here}")
    if backend.docker_ues:
        raise ValueError(f"{where}: a split network runs Mininet hosts only, not the "
                         f"{backend.name} backend's Docker UEs")


def _exit_text(process: Any, log_file: Any) -> str:
    code = None if process is None else process.poll()
    what = "not running" if process is None else (
        f"pid {process.pid} exited with {code}" if code is not None else f"pid {process.pid}")
    return f"{what}; log {log_file}" if log_file else what
