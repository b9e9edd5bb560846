"""Delivering notifications: POST to the subscriber's callback, retried with a bound, never blocking.

Each subscription has its own queue and one sender task on the platform's event loop,
so a subscriber's notifications arrive in the order they were made (TRIGGERED before
COMPLETED) and a subscriber that does not answer holds up only its own. A POST is
tried up to ``attempts`` times (each within ``timeout_s``, ``backoff_s`` between); a
2xx is an acknowledgement. After the last failed attempt the subscription is dropped
(`SubscriptionStore.drop`) with a log line, and the notifications still queued for it
are reported unsent. At most ``max_parallel`` POSTs are under way at once.

Where a callback is: a loopback address (``127.0.0.1``, ``localhost``) is reached
from the host's namespace; any other address is one of the emulated network, reached
from the emulated cloud node's namespace (a socket made there: ``emulated_socket``).

Every notification is an ``etsi.notify`` event: ``api, type, status, subscription,
callback, t_event, t_sent, t_acked, attempts, ok`` (monotonic times; ``t_acked`` None
when it was not acknowledged) and the notification's own fields (``ue``, ``service``,
``t_move``...), and ``delay_s`` = ``t_acked - t_move`` (or ``- t_event``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import socket
import time
from typing import Any, Callable, Optional
from urllib.parse import urlsplit

import aiohttp

from mec.core.events import EventLog
from mec.etsi import schema
from mec.etsi.subscriptions import Outgoing, SubscriptionStore

log = logging.getLogger(__name__)

#: makes a TCP socket of (family, type, proto) in the emulated cloud node's namespace
SocketMaker = Callable[[int, int, int], socket.socket]


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Notifier:
    """Sends `Outgoing` notifications for the subscriptions of STORE (event loop thread only)."""

    def __init__(self, store: SubscriptionStore, events: EventLog,
                 emulated_socket: Optional[SocketMaker] = None, attempts: int = 3,
                 timeout_s: float = 1.0, backoff_s: float = 0.1, max_parallel: int = 8,
                 on_acked: Optional[Callable[[Outgoing, float], None]] = None) -> None:
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        self.store = store
        self.events = events
        self.emulated_socket = emulated_socket
        self.attempts = attempts
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.backoff_s = backoff_s
        self.max_parallel = max_parallel
        self.on_acked = on_acked
        self._queues: dict[str, asyncio.Queue] = {}
        self._tasks: dict[str, asyncio.Task] = {}
        self._sem: Optional[asyncio.Semaphore] = None
        self._host: Optional[aiohttp.ClientSession] = None
        self._emulated: Optional[aiohttp.ClientSession] = None

    async def start(self) -> None:
        self._sem = asyncio.Semaphore(self.max_parallel)
        self._host = aiohttp.ClientSession(timeout=self.timeout)
        if self.emulated_socket is not None:
            maker = self.emulated_socket

            def in_namespace(addr_info: Any) -> socket.socket:
                family, kind, proto = addr_info[0], addr_info[1], addr_info[2]
                return maker(family, kind, proto)

            self._emulated = aiohttp.ClientSession(
                timeout=self.timeout, connector=aiohttp.TCPConnector(socket_factory=in_namespace))

    async def close(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        for task in list(self._tasks.values()):
            try:
                await task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - closing anyway
                pass
        for session in (self._host, self._emulated):
            if session is not None:
                await session.close()

    def send(self, out: Outgoing) -> None:
        """Queue OUT for its subscription's sender (made on first use)."""
        sub_id = out.sub.id
        queue = self._queues.get(sub_id)
        if queue is None:
            queue = self._queues[sub_id] = asyncio.Queue()
            self._tasks[sub_id] = asyncio.get_running_loop().create_task(
                self._sender(sub_id, queue), name=f"notify-{sub_id}")
        queue.put_nowait(out)

    async def _sender(self, sub_id: str, queue: asyncio.Queue) -> None:
        try:
            await self._send_all(sub_id, queue)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - a defect here must show, not end silently
            log.exception("the sender of subscription %s failed", sub_id)

    async def _send_all(self, sub_id: str, queue: asyncio.Queue) -> None:
        while True:
            out = await queue.get()
            if await self._deliver(out):
                continue
            reason = (f"{out.sub.callback} did not acknowledge {out.type_name} "
                      f"in {self.attempts} attempts")
            if self.store.drop(sub_id, reason) is not None:
                log.warning("subscription %s (%s %s) dropped: %s", sub_id, out.sub.api,
                            out.sub.kind, reason)
                self.events.emit("etsi.subscription.dropped", api=out.sub.api,
                                 subscription=sub_id, subscription_kind=out.sub.kind,
                                 callback=out.sub.callback, reason=reason)
            while not queue.empty():  # what was still queued for it is never sent
                self._record(queue.get_nowait(), None, None, 0, "subscription dropped")
            del self._queues[sub_id], self._tasks[sub_id]
            return

    async def _deliver(self, out: Outgoing) -> bool:
        bad = schema.problem(out.sub.api, out.type_name, out.payload)
        if bad is not None:  # a defect of the testbed: named, never sent half-right
            log.error("notification for %s is invalid: %s", out.sub.id, bad)
            self._record(out, None, None, 0, f"invalid: {bad}")
            return True
        session = self._host if is_loopback(out.sub.callback) else self._emulated
        if session is None:
            self._record(out, None, None, 0, "no emulated namespace to reach the callback from")
            return False
        data = json.dumps(out.payload)
        t_sent: Optional[float] = None
        error = ""
        for attempt in range(1, self.attempts + 1):
            async with self._sem:
                if t_sent is None:
                    t_sent = time.monotonic()
                try:
                    async with session.post(out.sub.callback, data=data,
                                            headers={"Content-Type": "application/json"}) as r:
                        await r.read()
                        if 200 <= r.status < 300:
                            t_acked = time.monotonic()
                            self._record(out, t_sent, t_acked, attempt, "")
                            if self.on_acked is not None:
                                self.on_acked(out, t_acked)
                            return True
                        error = f"HTTP {r.status}"
                except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
                    error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            if attempt < self.attempts:
                await asyncio.sleep(self.backoff_s * attempt)
        self._record(out, t_sent, None, self.attempts, error)
        return False

    def _record(self, out: Outgoing, t_sent: Optional[float], t_acked: Optional[float],
                attempts: int, error: str) -> None:
        fields = {k: v for k, v in out.fields.items() if k != "procedure"}
        start = fields.get("t_move") if fields.get("t_move") is not None else out.t_event
        self.events.emit(
            "etsi.notify", api=out.sub.api, type=out.type_name, status=out.label,
            subscription=out.sub.id, callback=out.sub.callback, t_event=out.t_event,
            t_sent=t_sent, t_acked=t_acked, attempts=attempts, ok=t_acked is not None,
            delay_s=(t_acked - start) if t_acked is not None and start is not None else None,
            error=error or None, **fields)
