"""Which link-delay mechanism this kernel supports: ``sch_netem`` or NFQUEUE.

Mininet's TCLink asks ``tc`` for a netem qdisc and, on a kernel without netem,
prints an error and carries on with an undelayed link. The testbed must not be
fooled: :func:`netem_available` really adds a netem qdisc to a veth in
a throw-away network namespace, and :func:`nfqueue_available` really adds the
iptables NFQUEUE + physdev rule the userspace delay hop needs. Both answers are
cached for the life of the process.

``MEC_DELAY_MECHANISM`` (``netem`` | ``nfqueue``) forces a mechanism, e.g. to test
the userspace path on a kernel that has netem; forcing one that does not work is
an error.
"""

from __future__ import annotations

import functools
import logging
import os
import subprocess
from typing import Callable, Optional, Sequence

from mec.core import config

LOG = logging.getLogger(__name__)

MECHANISMS = ("netem", "nfqueue")
ENV_FORCE = "MEC_DELAY_MECHANISM"


class NoDelayMechanism(RuntimeError):
    """Neither netem nor the NFQUEUE delay hop works on this machine."""


def _run(args: Sequence[str]) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=20)


def _probe_in_netns(tag: str, steps: Callable[[str], Optional[str]]) -> bool:
    """Create namespace PREFIX-tag+pid, run ``steps(ns)`` (None = success), delete it."""
    ns = config.name(f"{tag}{os.getpid() % 100000}")
    res = _run(["ip", "netns", "add", ns])
    if res.returncode != 0:
        LOG.warning("cannot create probe namespace %s: %s", ns, res.stderr.strip())
        return False
    try:
        error = steps(ns)
        if error:
            LOG.debug("probe %s failed: %s", tag, error)
        return error is None
    finally:
        _run(["ip", "netns", "del", ns])


def _netem_steps(ns: str) -> Optional[str]:
    for cmd in (
        ["ip", "-n", ns, "link", "add", "probe0", "type", "veth", "peer", "name", "probe1"],
        ["tc", "-n", ns, "qdisc", "add", "dev", "probe0", "root", "netem", "delay", "1ms"],
        ["tc", "-n", ns, "qdisc", "del", "dev", "probe0", "root"],
    ):
        res = _run(cmd)
        if res.returncode != 0:
            return f"{' '.join(cmd)}: {res.stderr.strip()}"
    return None


def _nfqueue_steps(ns: str) -> Optional[str]:
    try:
        import netfilterqueue  # noqa: F401
    except ImportError as exc:  # pragma: no cover - depends on the venv
        return f"python package netfilterqueue missing: {exc}"
    exe = ["ip", "netns", "exec", ns]
    for cmd in (
        exe + ["sysctl", "-q", "-w", "net.bridge.bridge-nf-call-iptables=1"],
        exe + ["iptables", "-A", "FORWARD", "-m", "physdev", "--physdev-in", "probe0",
               "-j", "NFQUEUE", "--queue-num", "1"],
    ):
        res = _run(cmd)
        if res.returncode != 0:
            return f"{' '.join(cmd)}: {res.stderr.strip()}"
    return None


@functools.lru_cache(maxsize=None)
def netem_available() -> bool:
    """True when a netem qdisc can really be added (probed once, then cached)."""
    ok = _probe_in_netns("nm", _netem_steps)
    LOG.debug("sch_netem available: %s", ok)
    return ok


@functools.lru_cache(maxsize=None)
def nfqueue_available() -> bool:
    """True when the NFQUEUE delay hop can be built (bridge netfilter, physdev, NFQUEUE)."""
    ok = _probe_in_netns("nq", _nfqueue_steps)
    LOG.debug("NFQUEUE delay hop available: %s", ok)
    return ok


def delay_mechanism() -> str:
    """``"netem"`` where the kernel has it, else ``"nfqueue"``; honours MEC_DELAY_MECHANISM.

    Raises NoDelayMechanism when the forced or every mechanism is unusable.
    """
    forced = os.environ.get(ENV_FORCE, "").strip().lower()
    if forced:
        if forced not in MECHANISMS:
            raise NoDelayMechanism(f"{ENV_FORCE}={forced!r}: use one of {MECHANISMS}")
        check = netem_available if forced == "netem" else nfqueue_available
        if not check():
            raise NoDelayMechanism(
                f"{ENV_FORCE}={forced} but {forced} does not work on this machine"
                + (" (kernel has no sch_netem)" if forced == "netem" else
                   " (needs iptables NFQUEUE + physdev, br_netfilter, python netfilterqueue)")
            )
        return forced
    if netem_available():
        return "netem"
    if nfqueue_available():
        return "nfqueue"
    raise NoDelayMechanism(
        "links with delay/jitter/loss cannot be emulated: the kernel has no sch_netem and "
        "the NFQUEUE delay hop does not work (needs iptables NFQUEUE + physdev match, "
        "bridge netfilter and the python package netfilterqueue)"
    )
