"""`mec doctor`: check every prerequisite of the testbed, one line each, with a fix.

Each check returns a `Check` (status ok/warn/info/fail, detail, fix). The exit
code is non-zero when a required check fails. Checks never change anything.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from mec.core import config
from mec.core.proc import have

SETUP_FIX = "sudo make setup"


@dataclass
class Check:
    """The outcome of one prerequisite check."""

    name: str
    status: str  # "ok", "fail" (required and missing), "warn", "info"
    detail: str
    fix: str = ""


def _binary(name: str, program: str, package: str) -> Check:
    path = have(program)
    if path:
        return Check(name, "ok", path)
    return Check(name, "fail", f"{program} not found", f"apt-get install {package} ({SETUP_FIX})")


def check_root() -> Check:
    if os.geteuid() == 0:
        return Check("root", "ok", "running as root")
    return Check("root", "fail", "not root: namespaces, OVS and engines need it", "run with sudo")


def check_binaries() -> list[Check]:
    return [
        _binary("mnexec", "mnexec", "mininet"),
        _binary("ovs-vsctl", "ovs-vsctl", "openvswitch-switch"),
        _binary("dockerd", "dockerd", "docker.io"),
        _binary("registry", "docker-registry", "docker-registry"),
        _binary("iperf3", "iperf3", "iperf3"),
        _binary("nsenter", "nsenter", "util-linux"),
        _binary("debootstrap", "debootstrap", "debootstrap"),
        _binary("iptables", "iptables", "iptables"),
        _binary("curl", "curl", "curl"),
        _binary("rsync", "rsync", "rsync"),
    ]


def check_mininet() -> Check:
    try:
        mod = importlib.import_module("mininet.net")
        VERSION = getattr(mod, "VERSION", "?")
    except ImportError as exc:
        return Check("mininet module", "fail", str(exc), SETUP_FIX)
    return Check("mininet module", "ok", f"{VERSION} at {Path(mod.__file__).parent}")


def check_ovs() -> list[Check]:
    from mec.host import daemons

    db, vsd = daemons.ovsdb_pid(), daemons.vswitchd_pid()
    if not (db and vsd):
        return [Check("openvswitch", "fail",
                      f"ovsdb-server {'pid %s' % db if db else 'not running'}, "
                      f"ovs-vswitchd {'pid %s' % vsd if vsd else 'not running'}",
                      "mec setup --services (or sudo make setup)")]
    checks = [Check("openvswitch", "ok", f"ovsdb-server pid {db}, ovs-vswitchd pid {vsd}")]
    if daemons.ovs_tso_enabled():
        checks.append(Check("ovs userspace TSO", "ok", "other_config:userspace-tso-enable=true"))
    else:
        checks.append(Check("ovs userspace TSO", "fail",
                            "not set: TCP through userspace bridges over veths gets bad checksums",
                            "mec setup --services (sets it and restarts ovs-vswitchd)"))
    idle = daemons.ovs_max_idle_ms()
    if idle == daemons.DATAPATH_MAX_IDLE_MS:
        checks.append(Check("ovs datapath flow idle time", "ok", f"other_config:max-idle={idle}"))
    else:
        checks.append(Check("ovs datapath flow idle time", "warn",
                            f"max-idle {idle if idle is not None else 'OVS default 10000'} ms: "
                            "each move revalidates thousands of idle per-connection flows "
                            "(proactive interruption median 15.0 vs 12.8 ms, docs/design.md)",
                            "mec setup --services"))
    from topologies.datapath import kernel_datapath_available, ovs_datapath

    try:
        datapath = ovs_datapath()
    except (ValueError, RuntimeError) as exc:  # a bad MEC_OVS_DATAPATH
        checks.append(Check("ovs datapath", "fail", str(exc), "unset MEC_OVS_DATAPATH"))
        return checks
    kernel = kernel_datapath_available()
    checks.append(Check("ovs datapath", "info",
                        f"switches use datapath={datapath} ("
                        + ("OVS kernel module loaded" if kernel else
                           "no OVS kernel module: userspace datapath, netdev") + ")"))
    return checks


def check_docker() -> Check:
    from mec.host import daemons

    if daemons.docker_engine_running():
        return Check("docker engine", "ok", f"answers on {daemons.DOCKER_SOCK}")
    return Check("docker engine", "fail", "the build engine does not answer",
                 "mec setup --services (or sudo make setup)")


def check_images() -> list[Check]:
    from mec.edge import images

    checks = []
    try:
        published = images.published()
        for name, recipe in images.RECIPES.items():
            label = images.image_label(recipe.tag)
            if label is None:
                checks.append(Check(f"image {name}", "fail", f"{recipe.tag} not built",
                                    "mec setup --images (or sudo make setup)"))
            elif published.get(name) != label:
                checks.append(Check(f"image {name}", "fail",
                                    f"{recipe.tag} built but not published to {config.REGISTRY_DIR}",
                                    "mec setup --images"))
            else:
                size = images.image_size(recipe.tag) / 1e6
                checks.append(Check(f"image {name}", "ok", f"{recipe.tag}, {size:.1f} MB, published"))
    except Exception as exc:  # noqa: BLE001 - e.g. docker CLI missing
        checks.append(Check("images", "fail", str(exc), SETUP_FIX))
    return checks


def check_delay() -> list[Check]:
    try:
        from topologies.netem import delay_mechanism, netem_available
    except ImportError as exc:
        return [Check("link delay", "fail", f"delay support not importable: {exc}", SETUP_FIX)]
    checks = []
    if netem_available():
        checks.append(Check("netem", "ok", "sch_netem present: links use tc netem"))
    else:
        checks.append(Check("netem", "info", "sch_netem absent: delay, jitter and loss use the "
                            "userspace NFQUEUE delay line"))
    try:
        importlib.import_module("netfilterqueue")
        checks.append(Check("nfqueue", "ok" if delay_mechanism() == "nfqueue" else "info",
                            f"netfilterqueue importable; delay mechanism: {delay_mechanism()}"))
    except ImportError as exc:
        status = "info" if netem_available() else "fail"
        checks.append(Check("nfqueue", status, str(exc), "apt-get install "
                            "libnetfilter-queue-dev, then " + SETUP_FIX))
    checks.append(_check_delay_line(needed=not netem_available()))
    return checks


def _check_delay_line(needed: bool) -> Check:
    """Which NFQUEUE delay line links start: the compiled one (line rate) or the Python one."""
    from topologies.delayline import NoDelayLine, compiled_problem, line_kind

    try:
        kind = line_kind()
    except NoDelayLine as exc:
        return Check("delay line", "fail", str(exc), SETUP_FIX)
    problem = compiled_problem()
    if kind == "compiled":
        return Check("delay line", "ok", "compiled line (mec-delayline, built from the current "
                     "source): ~1 Gbit/s per link direction")
    detail = (f"Python line (topologies/delayline.py, ~350 Mbit/s at most): "
              f"{problem or 'forced by MEC_DELAYLINE=python'}")
    return Check("delay line", "warn" if needed and problem else "info", detail,
                 SETUP_FIX if problem else "")


def check_controllers() -> list[Check]:
    checks = []
    for module, name, required in (("os_ken", "os-ken", True), ("ryu", "ryu", False)):
        try:
            mod = importlib.import_module(module)
            version = getattr(mod, "__version__", "")
            checks.append(Check(f"controller {name}", "ok", f"importable {version}".strip()))
        except Exception as exc:  # noqa: BLE001 - ryu fails in several ways on new Pythons
            checks.append(Check(f"controller {name}", "fail" if required else "warn",
                                f"not importable: {exc}", SETUP_FIX))
    return checks


def check_servers() -> Check:
    """The test servers (this prefix's sshd on loopback addresses, mec.host.servers)."""
    from mec.host import servers

    if not (have("sshd") or Path("/usr/sbin/sshd").exists()):
        return Check("test servers", "warn", "sshd not found: no split over servers here",
                     "apt-get install openssh-server (" + SETUP_FIX + ")")
    pid = servers.sshd_pid()
    if pid is None:
        return Check("test servers", "info", "sshd installed, not started",
                     "mec setup --servers")
    answered = [a for a in servers.DEFAULT_ADDRESSES if servers.reachable(a, timeout=10)]
    missing = [a for a in servers.DEFAULT_ADDRESSES if a not in answered]
    if missing:
        return Check("test servers", "fail", f"sshd pid {pid}; no SSH answer from "
                     f"{', '.join(missing)}", "mec clean, then mec setup --servers")
    if not servers.underlay_ready():
        return Check("test servers", "fail", f"sshd pid {pid}; their underlay namespaces are "
                     "missing (no VXLAN between them)", "mec setup --servers")
    return Check("test servers", "ok", f"sshd pid {pid}: root@{', root@'.join(answered)} "
                 "answer with the project's key")


CHECKS: list[Callable[[], Check | list[Check]]] = [
    check_root, check_binaries, check_mininet, check_ovs, check_docker, check_images,
    check_delay, check_controllers, check_servers,
]


def run_checks() -> list[Check]:
    results: list[Check] = []
    for check in CHECKS:
        outcome = check()
        results.extend(outcome if isinstance(outcome, list) else [outcome])
    return results
