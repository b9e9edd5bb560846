"""The testbed: the Network Manager (SDN controller) and the emulated network, wired together.

This is the object a scenario script starts from::

    with Testbed(load("topologies/paper.yaml")) as tb:
        tb.network.move("u1", "s2")
        tb.nm.locations()

It starts the controller on a chosen line (os-ken or ryu) as a subprocess on free
loopback ports, brings up the `MecNetwork` with its switches connected to it,
and gives the controller the switch graph. ``controller=None`` runs the network
with standalone learning switches instead (loop-free topologies only).
"""

from __future__ import annotations

import logging
import socket
from typing import Any, Optional

from controller.client import NetworkManagerClient
from controller.process import ControllerProcess
from controller.settings import new_run_id
from mec.core import config
from mec.core.watchdog import Watchdog, process_component
from mec.edge.images import ensure_ue_image
from mec.host import servers
from topologies.backends import get_backend
from topologies.cluster import Split
from topologies.model import Topology
from topologies.net import MecNetwork
from topologies.placement import placement_of

log = logging.getLogger(__name__)

CONTROLLER_LINES = ("os-ken", "ryu")
URL_FILE = config.NM_URL_FILE


def split_of(topology: Topology, names: Optional[list[str]]) -> Optional[Split]:
    """Where each site runs: NAMES (``--servers``) partitioned, else the topology's own
    ``server:`` keys, else None (this machine); the servers resolved by `mec.host.servers`."""
    placement = placement_of(topology, names)
    if placement is None:
        return None
    return Split(servers=servers.resolve(list(placement.servers)),
                 site_server=dict(placement.site_server), ssh=tuple(servers.ssh_base()))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Testbed:
    __test__ = False  # not a pytest test class, despite the name

    """Controller + network of one topology; a context manager that removes all it started."""

    def __init__(self, topology: Topology, controller: Optional[str] = "os-ken",
                 events: Any = None, seed: int = 1, rest_port: Optional[int] = None,
                 backend: str = "mininet", servers: Optional[list[str]] = None):
        if controller is not None and controller not in CONTROLLER_LINES:
            raise ValueError(f"unknown controller line {controller!r}: use one of "
                             f"{', '.join(CONTROLLER_LINES)} (or none)")
        self.topology = topology
        self.controller_line = controller
        self.backend = backend  # topologies.backends: mininet | containernet | auto
        #: --servers: split the network over these (None: the topology's own placement)
        self.servers = servers
        self.events = events
        self.seed = seed
        self.rest_port = rest_port
        self.controller: Optional[ControllerProcess] = None
        self.network: Optional[MecNetwork] = None
        #: watches the controller, delay lines, engines and registry while the testbed runs
        #: (a scenario adds its probes); `watchdog.verdict()` says whether a run stayed whole
        self.watchdog = Watchdog(events=events)
        #: how often the Network Manager was restarted after a death (its event numbers
        #: start again from 1 each time: the orchestrator follows this count)
        self.controller_restarts = 0

    @property
    def nm(self) -> NetworkManagerClient:
        """The Network Manager's client (REST)."""
        if self.controller is None:
            raise RuntimeError("this testbed runs without a controller")
        return self.controller.client()

    def start(self) -> "Testbed":
        try:
            addr = None
            client = None
            split = split_of(self.topology, self.servers)
            if self.controller_line:
                run = new_run_id()  # the controller's saved state belongs to this run only
                host = split.controller_host() if split else "127.0.0.1"
                self.controller = ControllerProcess(
                    line=self.controller_line, ofp_host=host, ofp_port=free_port(),
                    rest_port=self.rest_port or free_port(), run_id=run,
                    state_file=str(config.run_dir() / f"nm-state-{self.topology.name}-{run}.json"))
                client = self.controller.start()
                addr = (host, self.controller.ofp_port)
                config.run_dir()
                URL_FILE.write_text(self.controller.url + "\n")  # for `mec flows`
            self.network = MecNetwork(self.topology, controller=addr, nm_client=client,
                                      events=self.events, seed=self.seed,
                                      backend=get_backend(self.backend,
                                                          ue_image=ensure_ue_image),
                                      split=split).start()
            self._watch()
        except BaseException:
            self.stop()
            raise
        return self

    @property
    def split(self) -> Optional[Split]:
        return self.network.split if self.network is not None else None

    def _watch(self) -> None:
        """Start the watchdog over everything this testbed started."""
        if self.controller is not None:
            ctl = self.controller
            self.watchdog.watch(process_component(
                "network-manager", "controller", lambda: ctl.proc, log_file=ctl.log_file,
                restart=self._restart_controller))
        for component in self.network.components():
            self.watchdog.watch(component)
        self.watchdog.start()

    def _restart_controller(self) -> None:
        """Bring a dead Network Manager back on the same ports with this run's state;
        returns once every switch is connected to it again (the app reconciles them)."""
        self.controller.proc = None
        self.controller.start(switches=len(self.network.switches), timeout=30)
        self.controller_restarts += 1

    def stop(self) -> None:
        self.watchdog.stop()  # what is stopped on purpose from here on is no death
        try:
            if self.network is not None:
                self.network.stop()  # removes everything, then raises a failure to stop
        finally:
            self.network = None
            self._stop_controller()

    def _stop_controller(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller.remove_state()  # a clean end of the run: its saved state goes
            if URL_FILE.exists() and URL_FILE.read_text().strip() == self.controller.url:
                URL_FILE.unlink()
            self.controller = None

    def __enter__(self) -> "Testbed":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
