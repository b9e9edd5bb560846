"""Run Python code inside another network namespace, without a subprocess.

A network namespace is a per-thread attribute on Linux: a dedicated thread that
calls ``setns(2)`` on a namespace file (e.g. ``/proc/PID/ns/net`` of a Mininet
host) then opens ordinary sockets that live in that namespace. The Service
Manager uses this to health-check replicas across the emulated network from
the cloud node, every few hundred milliseconds, without spawning processes.

The same thread reads a namespace's interface counters over netlink
(:func:`link_counters`, pyroute2); :class:`WireCounter` takes them before and
after a block of code: the bytes that crossed the namespace's links meanwhile.
"""

from __future__ import annotations

import ctypes
import os
import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Optional

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def _setns(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({path}): {os.strerror(err)}")
    finally:
        os.close(fd)


class NamespaceThread:
    """A worker thread living in one network namespace; `call(fn, ...)` runs fn there."""

    def __init__(self, netns_path: str, name: str = "netns"):
        self.netns_path = netns_path
        self._jobs: queue.Queue = queue.Queue()
        self._ready: Future = Future()
        self._thread = threading.Thread(target=self._loop, name=f"{name}@{netns_path}",
                                        daemon=True)
        self._thread.start()
        self._ready.result(timeout=5)  # raises if setns failed

    def _loop(self) -> None:
        try:
            _setns(self.netns_path)
        except BaseException as exc:  # noqa: BLE001 - handed to the creator
            self._ready.set_exception(exc)
            return
        self._ready.set_result(True)
        while True:
            job = self._jobs.get()
            if job is None:
                return
            future, fn, args, kwargs = job
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(*args, **kwargs))
                except BaseException as exc:  # noqa: BLE001 - delivered through the future
                    future.set_exception(exc)

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Future:
        future: Future = Future()
        self._jobs.put((future, fn, args, kwargs))
        return future

    def call(self, fn: Callable[..., Any], *args: Any, timeout: float | None = 30,
             **kwargs: Any) -> Any:
        return self.submit(fn, *args, **kwargs).result(timeout=timeout)

    def close(self) -> None:
        self._jobs.put(None)
        self._thread.join(timeout=5)


@dataclass(frozen=True)
class LinkCounters:
    """Kernel counters of one interface, or the sum over several (frames as the NIC saw them)."""

    rx_bytes: int = 0
    tx_bytes: int = 0
    rx_packets: int = 0
    tx_packets: int = 0

    @property
    def bytes(self) -> int:
        """Bytes in both directions."""
        return self.rx_bytes + self.tx_bytes

    def __add__(self, other: "LinkCounters") -> "LinkCounters":
        return LinkCounters(self.rx_bytes + other.rx_bytes, self.tx_bytes + other.tx_bytes,
                            self.rx_packets + other.rx_packets, self.tx_packets + other.tx_packets)

    def __sub__(self, other: "LinkCounters") -> "LinkCounters":
        return LinkCounters(self.rx_bytes - other.rx_bytes, self.tx_bytes - other.tx_bytes,
                            self.rx_packets - other.rx_packets, self.tx_packets - other.tx_packets)


def _read_links(names: Optional[frozenset[str]]) -> dict[str, LinkCounters]:
    """Counters of this thread's namespace: every interface but ``lo``, or NAMES."""
    from pyroute2 import IPRoute

    out = {}
    with IPRoute() as ipr:
        for link in ipr.get_links():
            name = link.get("IFLA_IFNAME")
            if (name == "lo" and names is None) or (names is not None and name not in names):
                continue
            st = link.get("IFLA_STATS64") or {}
            out[name] = LinkCounters(int(st.get("rx_bytes", 0)), int(st.get("tx_bytes", 0)),
                                     int(st.get("rx_packets", 0)), int(st.get("tx_packets", 0)))
    if names is not None and set(names) - set(out):
        raise LookupError(f"no interface {', '.join(sorted(set(names) - set(out)))} here")
    return out


def link_counters(netns_path: str, ifnames: Optional[Iterable[str]] = None
                  ) -> dict[str, LinkCounters]:
    """Interface name -> counters in the namespace NETNS_PATH (all but ``lo``, or IFNAMES)."""
    thread = NamespaceThread(netns_path, name="counters")
    try:
        return thread.call(_read_links, None if ifnames is None else frozenset(ifnames),
                           timeout=10)
    finally:
        thread.close()


class WireCounter:
    """The bytes that crossed a namespace's interfaces during a ``with`` block.

    ``with WireCounter(netns_path) as wire: ...`` then ``wire.counted`` is the
    difference of the kernel's counters (summed over the namespace's interfaces
    but ``lo``, or over IFNAMES) between entering and leaving the block, both
    directions, in :class:`LinkCounters`; ``wire.bytes`` is rx + tx.

    What it includes: every frame of the interface in the window, i.e. Ethernet,
    IP and TCP headers, retransmissions, ACKs and requests sent back, and any
    OTHER traffic of the namespace during the window (health checks, a probe's
    requests to a service there, a data sync). It is the transfer's wire cost only
    when the interface carries nothing else meanwhile; otherwise an upper bound.
    With NETNS_PATH None nothing is counted (``counted`` and ``bytes`` stay None):
    the root namespace's interfaces carry the whole machine's traffic. If the
    block raises, nothing is counted either.
    """

    def __init__(self, netns_path: Optional[str], ifnames: Optional[Iterable[str]] = None):
        self.netns_path = netns_path
        self.ifnames = None if ifnames is None else frozenset(ifnames)
        self.counted: Optional[LinkCounters] = None
        self._thread: Optional[NamespaceThread] = None
        self._before: dict[str, LinkCounters] = {}

    def _read(self) -> dict[str, LinkCounters]:
        assert self._thread is not None
        return self._thread.call(_read_links, self.ifnames, timeout=10)

    def __enter__(self) -> "WireCounter":
        if self.netns_path:
            self._thread = NamespaceThread(self.netns_path, name="wire")
            try:
                self._before = self._read()
            except BaseException:
                self._thread.close()
                self._thread = None
                raise
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if self._thread is None:
            return
        try:
            if exc_type is None:
                after = self._read()
                total = LinkCounters()
                for name, now in after.items():
                    total += now - self._before.get(name, LinkCounters())
                self.counted = total
        finally:
            self._thread.close()
            self._thread = None

    @property
    def bytes(self) -> Optional[int]:
        """rx + tx bytes counted, None when nothing was counted."""
        return None if self.counted is None else self.counted.bytes
