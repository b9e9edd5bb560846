"""The emulator under the MEC network: plain Mininet, or Containernet with Docker UEs.

``MecNetwork(..., backend=NAME)`` asks :func:`get_backend` for a :class:`Backend`:
the Mininet class to build the network with and, per node kind, the host class
and its extra ``addHost`` parameters.

* ``"mininet"`` (always available): every node is a Mininet ``Host``, a shell in
  its own network namespace that sees the machine's file system.
* ``"containernet"`` (where the Containernet fork of Mininet is the ``mininet``
  module, see docs/containernet.md): UEs become Containernet ``Docker`` hosts,
  containers of the machine's (build) Docker engine made from a UE image that the
  caller supplies (``get_backend(..., ue_image=...)``: the testbed passes
  ``mec.edge.images.ensure_ue_image``, which builds it once), with the checkout mounted read-only at the same
  path and on ``PYTHONPATH`` so that ``python3 -m mec.measure.probe`` runs in them.
  Cloudlets and the cloud stay plain hosts: each cloudlet runs its own dockerd
  (own image cache, pulls crossing the emulated links), which Containernet's
  Docker hosts cannot give, since they all share the one engine and its cache.
* ``"auto"``: Containernet where importable, else Mininet.

Containernet names its containers ``mn.<host name>``; host names carry the
project prefix, so :func:`ue_containers` finds ours (for ``mec clean``). It also
puts every container under the cgroup parent ``/docker``, which an engine using
the systemd cgroup driver refuses (containernet issue 259): :func:`get_backend`
checks the engine's driver first and says how to switch it to cgroupfs.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from mec.core import config

log = logging.getLogger(__name__)

BACKENDS = ("mininet", "containernet", "auto")
#: Containernet's container name prefix (``Docker.dnameprefix``).
CONTAINER_PREFIX = "mn."


def containernet_available() -> bool:
    """True when the ``mininet`` module is Containernet's (it has ``Containernet`` and ``Docker``)."""
    try:
        from mininet.net import Containernet  # noqa: F401
        from mininet.node import Docker  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass
class Backend:
    """One emulator: its network class and how each kind of node is created."""

    name: str  # "mininet" | "containernet"
    net_cls: type
    #: kind ("cloudlet" | "ue" | "cloud") -> host class; kinds not listed use Mininet's Host
    host_classes: dict[str, type] = field(default_factory=dict)
    #: the Python a UE runs the probe with
    ue_python: str = sys.executable
    #: gives the name of the UE image (building it if needed); Docker UEs only
    ue_image: Optional[Callable[[], str]] = None
    _ue_params: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def docker_ues(self) -> bool:
        return "ue" in self.host_classes

    def host(self, kind: str) -> dict[str, Any]:
        """Extra ``net.addHost`` keyword arguments (``cls`` and its parameters) for a node kind."""
        if kind == "ue" and self.docker_ues:
            if self._ue_params is None:
                if self.ue_image is None:
                    raise RuntimeError(f"backend {self.name}: no UE image given "
                                       "(get_backend(..., ue_image=...))")
                self._ue_params = _docker_ue_params(self.ue_image())
            return {"cls": self.host_classes["ue"], **self._ue_params}
        return {}


def _docker_ue_params(image: str) -> dict[str, Any]:
    """Containernet ``Docker`` parameters of a UE made from IMAGE."""
    repo = str(config.REPO_DIR)
    return {
        "dimage": image,
        "dcmd": "/bin/bash",
        # Only the emulated network: no eth0 on the engine's default bridge.
        "network_mode": "none",
        "publish_all_ports": False,
        "volumes": [f"{repo}:{repo}:ro"],
        "environment": {"PYTHONPATH": repo, "MEC_PREFIX": config.PREFIX},
    }


def engine_cgroup_driver() -> str:
    """The cgroup driver of the machine's (build) Docker engine, '' if it does not answer."""
    proc = subprocess.run(["docker", "info", "--format", "{{.CgroupDriver}}"],
                          capture_output=True, text=True, timeout=30)
    return proc.stdout.strip() if proc.returncode == 0 else ""


def get_backend(name: str = "mininet", ue_image: Optional[Callable[[], str]] = None) -> Backend:
    """The backend called NAME (one of BACKENDS); a clear error if it is not installed.

    UE_IMAGE gives the image of Docker UEs (Containernet), called when the first UE
    is made."""
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}: use one of {', '.join(BACKENDS)}")
    if name == "auto":
        name = "containernet" if containernet_available() else "mininet"
    if name == "containernet":
        if not containernet_available():
            raise RuntimeError("backend containernet: the mininet module here is not "
                               "Containernet's (install it into a separate venv: "
                               "docs/containernet.md)")
        driver = engine_cgroup_driver()
        if driver == "systemd":
            raise RuntimeError(
                "backend containernet: the Docker engine uses the systemd cgroup driver, and "
                "Containernet's fixed cgroup parent '/docker' is not a systemd slice: set "
                '{"exec-opts": ["native.cgroupdriver=cgroupfs"]} in /etc/docker/daemon.json '
                "and restart the engine (the Vagrantfile's containernet step does this)")
        from mininet.net import Containernet
        from mininet.node import Docker

        return Backend("containernet", Containernet, {"ue": Docker}, ue_python="python3",
                       ue_image=ue_image)
    from mininet.net import Mininet

    return Backend("mininet", Mininet)


def ue_containers() -> list[str]:
    """Names of this prefix's Containernet UE containers on the build engine (for clean-up)."""
    proc = subprocess.run(["docker", "ps", "-a", "--filter", "label=com.containernet",
                           "--format", "{{.Names}}"], capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        return []
    return [n for n in proc.stdout.split()
            if n.startswith(CONTAINER_PREFIX) and config.is_ours(n[len(CONTAINER_PREFIX):])]


def remove_ue_containers() -> list[str]:
    """Remove this prefix's leftover Containernet UE containers; returns their names."""
    names = ue_containers()
    if names:
        subprocess.run(["docker", "rm", "-f", *names], capture_output=True, text=True, timeout=60)
    return names
