"""A Docker engine of a cloudlet's own, running inside the cloudlet's network namespace.

Each cloudlet of the emulated MEC network is a real Docker host: its engine has
its own data root (so its own image cache: "pre-cached" and "not cached at this
edge" are real states), exec root, pid file and socket, and it is started with
``nsenter --net`` into the cloudlet's namespace (not ``ip netns exec``, which
remounts /sys and hides the cgroup mounts). Its pulls from the cloud registry
therefore cross the emulated, shaped links. Containers it runs with
``network_mode="host"`` share the cloudlet's namespace and address.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import docker

from mec.core import config
from mec.core.proc import have, run, terminate, wait_until

log = logging.getLogger(__name__)


def engine_dirs(name: str) -> tuple[Path, Path]:
    """(data root, exec root) of the engine of cloudlet NAME."""
    return config.ENGINES_DIR / name, config.RUN_DIR / "engines" / name


@dataclass
class DockerEngine:
    """One dockerd process serving one cloudlet; `client()` gives a Docker SDK client."""

    name: str
    netns_path: str
    insecure_registries: tuple[str, ...] = ()
    cpus: float | None = None  # capacity of the cloudlet, enforced on all its containers
    memory_mb: int | None = None
    process: subprocess.Popen | None = field(default=None, repr=False)
    #: set by an experiment that crashes this cloudlet on purpose (not a testbed fault)
    crashed_on_purpose: bool = False
    _client: docker.DockerClient | None = field(default=None, repr=False)

    @property
    def data_root(self) -> Path:
        return engine_dirs(self.name)[0]

    @property
    def exec_root(self) -> Path:
        return engine_dirs(self.name)[1]

    @property
    def socket(self) -> Path:
        return self.exec_root / "docker.sock"

    @property
    def log_file(self) -> Path:
        return self.exec_root / "dockerd.log"

    @property
    def base_url(self) -> str:
        return f"unix://{self.socket}"

    @property
    def cgroup_parent(self) -> str:
        """Parent cgroup of this engine's containers: named by us, so clean-up can find them."""
        return f"{self.name}-containers"

    @property
    def pidfile(self) -> Path:
        return self.exec_root / "docker.pid"

    def argv(self) -> list[str]:
        dockerd = have("dockerd")
        if not dockerd:
            raise RuntimeError("dockerd not found: install Debian package docker.io")
        argv = [
            "nsenter", f"--net={self.netns_path}",
            dockerd,
            f"--data-root={self.data_root}",
            f"--exec-root={self.exec_root}",
            f"--pidfile={self.pidfile}",
            f"--host={self.base_url}",
            "--bridge=none", "--iptables=false", "--ip-masq=false", "--ip-forward=false",
            f"--cgroup-parent={self.cgroup_parent}",
            # Explicit: under systemd (the Vagrant VM) dockerd would default to the
            # systemd driver, which only takes "*.slice" parents.
            "--exec-opt=native.cgroupdriver=cgroupfs",
            "--log-level=warn",
        ]
        for reg in self.insecure_registries:
            argv.append(f"--insecure-registry={reg}")
        return argv

    def apply_capacity(self) -> None:
        """Limit the cloudlet's containers together to its CPU and memory capacity.

        The limits sit on the engine's cgroup parent, so every container the
        engine starts is inside them (the kernel enforces them, not the scheduler).
        """
        if self.cpus is None and self.memory_mb is None:
            return
        cg = Path("/sys/fs/cgroup")
        if (cg / "cpu").is_dir() and (cg / "memory").is_dir():  # cgroup v1 (hybrid)
            if self.cpus is not None:
                cpu = cg / "cpu" / self.cgroup_parent
                cpu.mkdir(exist_ok=True)
                (cpu / "cpu.cfs_period_us").write_text("100000")
                (cpu / "cpu.cfs_quota_us").write_text(str(int(self.cpus * 100000)))
            if self.memory_mb is not None:
                mem = cg / "memory" / self.cgroup_parent
                mem.mkdir(exist_ok=True)
                (mem / "memory.limit_in_bytes").write_text(str(self.memory_mb * 2**20))
        else:  # cgroup v2
            group = cg / self.cgroup_parent
            group.mkdir(exist_ok=True)
            if self.cpus is not None:
                (group / "cpu.max").write_text(f"{int(self.cpus * 100000)} 100000")
            if self.memory_mb is not None:
                (group / "memory.max").write_text(str(self.memory_mb * 2**20))

    def start(self, timeout: float = 60.0) -> "DockerEngine":
        """Start dockerd; returns once the engine answers a ping."""
        self.apply_capacity()
        self.data_root.mkdir(parents=True, exist_ok=True)
        self.exec_root.mkdir(parents=True, exist_ok=True)
        logpath = self.log_file
        with open(logpath, "ab") as logfile:
            self.process = subprocess.Popen(
                self.argv(), stdout=logfile, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True)
        wait_until(self.answers, timeout, interval=0.05,
                   what=f"Docker engine of {self.name} (log: {logpath})")
        return self

    def answers(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            tail = (self.exec_root / "dockerd.log").read_text(errors="replace")[-800:]
            raise RuntimeError(f"dockerd of {self.name} exited ({self.process.returncode}): {tail}")
        if not self.socket.exists():
            return False
        return self.client().ping()

    def client(self) -> docker.DockerClient:
        if self._client is None:
            self._client = docker.DockerClient(base_url=self.base_url, timeout=600)
        return self._client

    def kill(self) -> list[int]:
        """Crash the engine: SIGKILL dockerd, its containerd and every container process.

        This is a cloudlet failure as the rest of the system sees it (nothing
        answers any more); `stop()` afterwards still removes the state.
        """
        import os
        import signal

        from mec.core.proc import cmdline

        pids = [int(p.name) for p in Path("/proc").iterdir()
                if p.name.isdigit() and str(self.exec_root) in cmdline(int(p.name))]
        for procs in Path("/sys/fs/cgroup").glob(f"*/{self.cgroup_parent}/*/cgroup.procs"):
            pids += [int(x) for x in procs.read_text().split()]
        for pid in set(pids):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.process is not None:
            self.process.wait(timeout=10)
        return sorted(set(pids))

    def stop(self, remove_data: bool = True) -> None:
        """Remove the engine's containers, stop dockerd, and drop its data root."""
        if self.process is not None and self.process.poll() is None:
            try:
                for container in self.client().containers.list(all=True):
                    container.remove(force=True)
            except Exception as exc:  # noqa: BLE001 - the engine is going away anyway
                log.warning("engine %s: could not remove containers: %s", self.name, exc)
            terminate(self.process.pid, str(self.exec_root), timeout=15)
            self.process.wait(timeout=5)
        if self._client is not None:
            self._client.close()
            self._client = None
        self.process = None
        if remove_data:
            remove_engine_state(self.name)


def _mounts_under(path: Path) -> list[str]:
    prefix = str(path).rstrip("/") + "/"
    mounts = []
    for line in Path("/proc/mounts").read_text().splitlines():
        target = line.split()[1].replace("\\040", " ")
        if target.startswith(prefix) or target == str(path):
            mounts.append(target)
    return sorted(mounts, key=len, reverse=True)


def remove_engine_state(name: str) -> None:
    """Unmount and delete the data and exec roots of engine NAME (after it stopped)."""
    for root in engine_dirs(name):
        for mount in _mounts_under(root):
            run(["umount", "-l", mount], check=False)
        shutil.rmtree(root, ignore_errors=True)
