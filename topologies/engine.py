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
from typing import Any

import docker

from mec.core import config
from mec.core.proc import have, run, terminate, wait_until
from topologies.cluster import RemoteProcess

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
    def url(self) -> str:
        """Where this machine reaches the engine (``docker -H URL``)."""
        return self.base_url

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
            self._end_dockerd()
        if self._client is not None:
            self._client.close()
            self._client = None
        self._stopped(remove_data)

    def _end_dockerd(self) -> None:
        assert self.process is not None
        terminate(self.process.pid, str(self.exec_root), timeout=15)
        self.process.wait(timeout=5)

    def _stopped(self, remove_data: bool) -> None:
        """What is left to do once dockerd ended: forget it, drop its state."""
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


#: Run on a cloudlet's server (one argument list, no local file): the pids of an engine
#: (dockerd, containerd and shims name its exec root) and of its containers (its cgroup).
_ENGINE_PIDS = r'''
for p in /proc/[0-9]*; do
  pid=${p#/proc/}
  [ "$pid" = $$ ] || [ "$pid" = $PPID ] && continue
  tr '\0' ' ' < "$p/cmdline" 2>/dev/null | grep -qF -- "$0" && echo "$pid"
done
cat /sys/fs/cgroup/*/"$1"/*/cgroup.procs /sys/fs/cgroup/"$1"/*/cgroup.procs 2>/dev/null
exit 0
'''
#: Run on a cloudlet's server: unmount what the engine mounted under its roots, delete them.
_REMOVE_STATE = r'''
for root in "$@"; do
  awk -v r="$root" '$2 == r || index($2, r "/") == 1 {print $2}' /proc/mounts | sort -r |
    while read -r m; do umount -l "$m"; done
  rm -rf "$root"
done
'''
#: Run on a cloudlet's server: the capacity limits of the engine's cgroup parent (v2 or v1).
_CAPACITY = r'''
g=/sys/fs/cgroup
if [ -d $g/cpu ] && [ -d $g/memory ]; then
  [ -n "$1" ] && mkdir -p $g/cpu/$0 && echo 100000 > $g/cpu/$0/cpu.cfs_period_us && echo "$1" > $g/cpu/$0/cpu.cfs_quota_us
  [ -n "$2" ] && mkdir -p $g/memory/$0 && echo "$2" > $g/memory/$0/memory.limit_in_bytes
else
  mkdir -p $g/$0
  [ -n "$1" ] && echo "$1 100000" > $g/$0/cpu.max
  [ -n "$2" ] && echo "$2" > $g/$0/memory.max
fi
exit 0
'''


@dataclass
class RemoteEngine(DockerEngine):
    """A cloudlet's engine on another server of a split network (`topologies.cluster`).

    dockerd is started on the cloudlet's server by ssh, in the cloudlet's network
    namespace (``nsenter --net``, as on this machine); its folders, cgroup limits, kill and clean-up are commands run
    there. This machine drives it with the Docker SDK over SSH: ``ssh -L`` forwards a
    local socket (``forward_socket``) to the engine's socket on the server."""

    node: Any = field(default=None, repr=False)  # the cloudlet's ClusterHost
    forward: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def forward_socket(self) -> Path:
        return config.RUN_DIR / "engines" / f"{self.name}.ssh.sock"

    @property
    def forward_log(self) -> Path:
        return config.RUN_DIR / "engines" / f"{self.name}.ssh.log"

    @property
    def url(self) -> str:
        return f"unix://{self.forward_socket}"

    def start(self, timeout: float = 60.0) -> "RemoteEngine":
        cpu = "" if self.cpus is None else str(int(self.cpus * 100000))
        mem = "" if self.memory_mb is None else str(self.memory_mb * 2**20)
        self.node.run(["sh", "-c", _CAPACITY, self.cgroup_parent, cpu, mem])
        self.node.run(["mkdir", "-p", str(self.data_root), str(self.exec_root)])
        self.forward_socket.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "ab") as logfile:  # nsenter --net, as here: /sys and its
            # cgroups stay the server's (a node's own mount namespace remounts /sys)
            self.process = RemoteProcess(self.node, self.argv(), in_node=False, stdout=logfile,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        server = self.node.site_server
        self.forward_socket.unlink(missing_ok=True)
        forward_log = open(self.forward_log, "ab")
        self.forward = subprocess.Popen(
            [*self.node.ssh, "-N", "-T", "-S", "none", "-o", "ExitOnForwardFailure=yes",
             "-o", "StreamLocalBindUnlink=yes", "-L", f"{self.forward_socket}:{self.socket}",
             f"root@{server.address}"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=forward_log, start_new_session=True)  # a file: a pipe could fill up
        forward_log.close()
        wait_until(self.answers, timeout, interval=0.1,
                   what=f"Docker engine of {self.name} on server {server.name}")
        return self

    @property
    def log_file(self) -> Path:
        """dockerd's output, brought to this machine by ssh."""
        return self.forward_socket.parent / f"{self.name}.log"

    def answers(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            tail = self.log_file.read_text(errors="replace")[-800:]
            raise RuntimeError(f"dockerd of {self.name} on server "
                               f"{self.node.site_server.name} exited: {tail}")
        if self.forward is not None and self.forward.poll() is not None:
            raise RuntimeError(f"the SSH forward to engine {self.name} exited: "
                               f"{self.forward_log.read_text(errors='replace')[-400:]}")
        if not self.forward_socket.exists():
            return False
        try:
            return self.client().ping()
        except Exception:  # noqa: BLE001 - dockerd not listening yet behind the forward
            self._client = None
            return False

    def client(self) -> docker.DockerClient:
        if self._client is None:
            self._client = docker.DockerClient(base_url=self.url, timeout=600)
        return self._client

    def kill(self) -> list[int]:
        out = self.node.run(["sh", "-c", _ENGINE_PIDS, str(self.exec_root), self.cgroup_parent])
        pids = sorted({int(p) for p in out.split() if p.isdigit()})
        if pids:
            self.node.run(["kill", "-9", *map(str, pids)], check=False)
        if self.process is not None:
            self.process.wait(timeout=10)
        return pids

    def _end_dockerd(self) -> None:
        assert self.process is not None
        self.process.stop(timeout=15)  # on its server, by its pid there

    def _stopped(self, remove_data: bool) -> None:
        if self.forward is not None:
            self.forward.terminate()
            try:
                self.forward.wait(timeout=5)
            except subprocess.TimeoutExpired:  # seen once under load: it did not end
                log.warning("engine %s: the SSH forward did not end on SIGTERM: killed",
                            self.name)
                self.forward.kill()
                self.forward.wait(timeout=10)
            self.forward = None
        self.forward_socket.unlink(missing_ok=True)
        self.forward_log.unlink(missing_ok=True)
        self.process = None
        if remove_data:  # its state there, its log here (as a local engine's goes with it)
            self.node.run(["sh", "-c", _REMOVE_STATE, "sh", str(self.data_root),
                           str(self.exec_root)], check=False)
            self.log_file.unlink(missing_ok=True)
