"""The machine-wide services the testbed stands on: Open vSwitch and the build Docker engine.

Neither is started by an init system here (no systemd), so the set-up starts
them itself and detects ones that already run (no duplicates). Both are shared
machine services, not per-run resources: ``mec clean`` leaves them running.
"""

from __future__ import annotations

import logging
import os
import subprocess
from pathlib import Path

from mec.core.proc import CommandError, alive, have, run, wait_until

log = logging.getLogger(__name__)

OVS_CTL = "/usr/share/openvswitch/scripts/ovs-ctl"
OVS_RUN = Path("/run/openvswitch")
DOCKER_SOCK = Path("/var/run/docker.sock")
LOG_DIR = Path("/var/log/mec")
#: How long ovs-vswitchd keeps an idle datapath flow (OVS's default: 10 000 ms). The
#: switches make each TCP connection and each UDP source port a datapath flow of its own
#: (controller.plan: PER_CONNECTION_IN), so a probe at 200 connections/s left ~2 000 of
#: them, and every flow-table change (each move) has OVS revalidate them all: 7-15 ms of
#: a revalidator on this 2-core machine, in the very milliseconds a moved user opens its
#: first connection at the new access point (proactive interruption with radio 0,
#: median of 30 moves: 15.0 ms with 10 s, 12.8 ms with 1 s; docs/design.md "Mobility").
#: Read at once, no restart needed.
DATAPATH_MAX_IDLE_MS = 1000


def _pid_from(path: Path) -> int | None:
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if alive(pid) else None


def ovsdb_pid() -> int | None:
    return _pid_from(OVS_RUN / "ovsdb-server.pid")


def vswitchd_pid() -> int | None:
    return _pid_from(OVS_RUN / "ovs-vswitchd.pid")


def _ovs_other_config(key: str) -> str | None:
    """A key of OVS's machine-wide ``other_config`` (None: not set)."""
    proc = run(["ovs-vsctl", "--timeout=5", "get", "Open_vSwitch", ".",
                f"other_config:{key}"], check=False)
    return proc.stdout.strip().strip('"') if proc.returncode == 0 else None


def ovs_tso_enabled() -> bool:
    """Whether userspace TSO is configured (needed for TCP through netdev bridges + veths)."""
    return _ovs_other_config("userspace-tso-enable") == "true"


def ovs_max_idle_ms() -> int | None:
    """ovs-vswitchd's idle time of datapath flows as configured (None: OVS's default)."""
    value = _ovs_other_config("max-idle")
    return int(value) if value is not None and value.isdigit() else None


def ovs_running() -> bool:
    return ovsdb_pid() is not None and vswitchd_pid() is not None


def start_ovs() -> str:
    """Start ovsdb-server and ovs-vswitchd if they are not running; returns what was done.

    ``other_config:userspace-tso-enable=true`` is set before ovs-vswitchd
    starts (it is read only at start): without it TCP through the userspace
    datapath over veths carries bad checksums (see docs/platform notes).
    """
    actions = []
    if ovsdb_pid() is None:
        run([OVS_CTL, "start", "--system-id=random", "--no-ovs-vswitchd"], timeout=60)
        actions.append("started ovsdb-server")
    if not ovs_tso_enabled():
        run(["ovs-vsctl", "--timeout=10", "--no-wait", "init"], timeout=15)
        run(["ovs-vsctl", "--timeout=10", "--no-wait", "set", "Open_vSwitch", ".",
             "other_config:userspace-tso-enable=true"])
        actions.append("set userspace-tso-enable=true")
        if vswitchd_pid() is not None:
            # The setting is read at start: a running vswitchd must restart.
            run([OVS_CTL, "restart", "--no-ovsdb-server", "--system-id=random"], timeout=60)
            actions.append("restarted ovs-vswitchd to apply it")
    if vswitchd_pid() is None:
        run([OVS_CTL, "start", "--system-id=random", "--no-ovsdb-server"], timeout=60)
        actions.append("started ovs-vswitchd")
    wait_until(lambda: run(["ovs-vsctl", "--timeout=2", "show"], check=False).returncode == 0,
               timeout=20, what="ovs-vsctl to answer")
    if ovs_max_idle_ms() != DATAPATH_MAX_IDLE_MS:
        run(["ovs-vsctl", "--timeout=10", "set", "Open_vSwitch", ".",
             f"other_config:max-idle={DATAPATH_MAX_IDLE_MS}"])
        actions.append(f"set max-idle={DATAPATH_MAX_IDLE_MS}")
    return ", ".join(actions) or "already running"


def docker_engine_running() -> bool:
    """Whether the build engine (default socket) answers."""
    if not DOCKER_SOCK.exists():
        return False
    try:
        import docker

        client = docker.DockerClient(base_url=f"unix://{DOCKER_SOCK}", timeout=5)
        client.ping()
        client.close()
        return True
    except Exception:  # noqa: BLE001 - any failure means "not usable"
        return False


def start_docker_engine() -> str:
    """Start the machine's default Docker engine (used to build images) unless it answers."""
    if docker_engine_running():
        return "already running"
    dockerd = have("dockerd")
    if not dockerd:
        raise RuntimeError("dockerd not found: install Debian package docker.io")
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    logfile = open(LOG_DIR / "dockerd.log", "ab")
    subprocess.Popen([dockerd], stdout=logfile, stderr=subprocess.STDOUT,
                     stdin=subprocess.DEVNULL, start_new_session=True, close_fds=True)
    logfile.close()
    wait_until(docker_engine_running, timeout=60, what="the Docker engine to answer "
               f"(log: {LOG_DIR / 'dockerd.log'})")
    return "started dockerd"


def ensure_all() -> dict[str, str]:
    """Start every machine-wide service the testbed needs; report what was done."""
    if os.geteuid() != 0:
        raise PermissionError("starting OVS and dockerd needs root (run with sudo)")
    try:
        return {"openvswitch": start_ovs(), "docker": start_docker_engine()}
    except CommandError as exc:
        raise RuntimeError(f"could not start a service: {exc}") from exc
