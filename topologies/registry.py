"""The image registry: Debian's ``docker-registry`` (CNCF distribution) run by the project.

One class serves two uses: publishing the locally built service images into
the registry storage directory (a short-lived server on loopback), and the
emulated cloud node's registry (a server inside the cloud's network namespace,
started with ``nsenter --net``). Both read and write the same storage folder.
"""

from __future__ import annotations

import logging
import subprocess
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mec.core import config
from mec.core.proc import PidRecord, have, stop_child, wait_until, write_record
from topologies.cluster import RemoteProcess

log = logging.getLogger(__name__)

REGISTRY_BIN = "docker-registry"


def registry_config(storage: Path, addr: str) -> str:
    """A registry configuration: no auth, explicit listen address, our own storage."""
    return (
        "version: 0.1\n"
        "log:\n  level: warn\n"
        "storage:\n"
        f"  filesystem:\n    rootdirectory: {storage}\n"
        "  delete:\n    enabled: true\n"
        "http:\n"
        f"  addr: {addr}\n"
    )


@dataclass
class RegistryServer:
    """A running ``docker-registry serve`` process, optionally inside a network namespace."""

    name: str
    addr: str  # "IP:PORT" it listens on
    storage: Path = config.REGISTRY_DIR
    netns_path: str | None = None  # e.g. /proc/PID/ns/net or /var/run/netns/NAME
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://{self.addr}/v2/"

    def start(self, timeout: float = 20.0) -> "RegistryServer":
        binary = have(REGISTRY_BIN)
        if not binary:
            raise RuntimeError("docker-registry not found: install Debian package docker-registry")
        self.storage.mkdir(parents=True, exist_ok=True)
        rundir = config.run_dir()
        conf = rundir / f"registry-{self.name}.yml"
        conf.write_text(registry_config(self.storage, self.addr))
        argv = [binary, "serve", str(conf)]
        if self.netns_path:
            argv = ["nsenter", f"--net={self.netns_path}", *argv]
        logfile = open(rundir / f"registry-{self.name}.log", "ab")
        self.process = subprocess.Popen(argv, stdout=logfile, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, start_new_session=True)
        logfile.close()
        write_record(rundir / f"registry-{self.name}.pid",
                     PidRecord(f"registry-{self.name}", self.process.pid, str(conf), "registry"))
        if not self.netns_path:
            wait_until(self.answers, timeout, what=f"registry {self.name} at {self.url}")
        return self

    def answers(self) -> bool:
        """True when GET /v2/ returns 200 (only usable from the namespace it listens in)."""
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"registry {self.name} exited with {self.process.returncode}; "
                               f"see {config.run_dir() / f'registry-{self.name}.log'}")
        with urllib.request.urlopen(self.url, timeout=2) as resp:
            return resp.status == 200

    def stop(self) -> None:
        if self.process is not None:
            stop_child(self.process, str(config.run_dir() / f"registry-{self.name}.yml"))
            self.process = None
        (config.run_dir() / f"registry-{self.name}.pid").unlink(missing_ok=True)

    def __enter__(self) -> "RegistryServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


@dataclass
class RemoteRegistry(RegistryServer):
    """The cloud's registry on another server of a split network (`topologies.cluster`):
    its configuration written there, ``docker-registry serve`` started there by ssh in the
    cloud's network namespace (``nsenter --net``), stopped there by its pid. Its storage is
    the server's ``REGISTRY_DIR``: `mec setup --images` must have published the images
    there (on this machine's test servers it is this machine's)."""

    node: Any = field(default=None, repr=False)  # the cloud's ClusterHost

    def start(self, timeout: float = 20.0) -> "RemoteRegistry":
        conf = config.RUN_DIR / f"registry-{self.name}.yml"
        self.node.run(["sh", "-c", 'mkdir -p "${0%/*}" "$1" && cat > "$0"', str(conf),
                       str(self.storage)], input=registry_config(self.storage, self.addr))
        logfile = open(config.run_dir() / f"registry-{self.name}.log", "ab")
        self.process = RemoteProcess(
            self.node, ["nsenter", f"--net={self.netns_path}", REGISTRY_BIN, "serve", str(conf)],
            in_node=False, stdout=logfile, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        logfile.close()
        # recorded like the local registry, so that `mec clean` after a killed run stops it
        # (on this machine's test servers; on a real server, `mec clean` there)
        write_record(config.run_dir() / f"registry-{self.name}.pid",
                     PidRecord(f"registry-{self.name}", self.process.pid, str(conf), "registry"))
        return self  # it answers in the cloud's namespace only: the network's check asks there

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(timeout=10)
            self.process = None
        (config.run_dir() / f"registry-{self.name}.pid").unlink(missing_ok=True)
