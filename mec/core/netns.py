"""Run Python code inside another network namespace, without a subprocess.

A network namespace is a per-thread attribute on Linux: a dedicated thread that
calls ``setns(2)`` on a namespace file (e.g. ``/proc/PID/ns/net`` of a Mininet
host) then opens ordinary sockets that live in that namespace. The Service
Manager uses this to health-check replicas across the emulated network from
the cloud node, every few hundred milliseconds, without spawning processes.
"""

from __future__ import annotations

import ctypes
import os
import queue
import threading
from concurrent.futures import Future
from typing import Any, Callable

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
