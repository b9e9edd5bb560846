"""The ETSI MEC server: both APIs on one aiohttp application, on its own event loop thread.

`EtsiServer` serves the Location API (`location_api`) and the Application Mobility
Service (`mobility_api`) on every listening socket it is given (the platform gives two:
the host's loopback and the emulated cloud node's address), and sends their
notifications (`notify.Notifier`). Everything that changes the APIs' state runs on the
server's loop: HTTP requests, and the testbed's events handed in from other threads
through the thread-safe `move`, `procedure` and `replicas_changed`, which return at once
(the testbed never waits for a subscriber).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from typing import Any, Callable, Optional

from aiohttp import web

from mec.core.events import EventLog
from mec.etsi import location_api, mobility_api
from mec.etsi.answers import problem_middleware
from mec.etsi.location import LocationService
from mec.etsi.mobility import API as AMS_API, AppMobilityService, Procedure
from mec.etsi.notify import Notifier, SocketMaker
from mec.etsi.subscriptions import Outgoing, Subscription, SubscriptionStore

log = logging.getLogger(__name__)


def listener(host: str, port: int) -> socket.socket:
    """A listening TCP socket on HOST:PORT (0: a free port), made in the calling thread's
    network namespace (a socket stays in the namespace it was made in)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(128)
    sock.setblocking(False)
    return sock


class EtsiServer:
    """MEC 013 + MEC 021 over LOCATION and MOBILITY, served on SOCKETS."""

    def __init__(self, location: LocationService, mobility: AppMobilityService,
                 store: SubscriptionStore, events: EventLog, sockets: list[socket.socket],
                 emulated_socket: Optional[SocketMaker] = None, attempts: int = 3,
                 timeout_s: float = 1.0, backoff_s: float = 0.1) -> None:
        self.location = location
        self.mobility = mobility
        self.store = store
        self.events = events
        self.sockets = sockets
        self.notifier = Notifier(store, events, emulated_socket, attempts=attempts,
                                 timeout_s=timeout_s, backoff_s=backoff_s,
                                 on_acked=self._acked)
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._thread: Optional[threading.Thread] = None
        self._closing: Optional[asyncio.Event] = None

    # ------------------------------------------------------------------ app
    def app(self) -> web.Application:
        app = web.Application(middlewares=[problem_middleware], client_max_size=256 * 1024)
        app.add_routes(location_api.routes(self.location, self._subscribed))
        app.add_routes(mobility_api.routes(self.mobility, self._subscribed, self._context_done))
        return app

    def _subscribed(self, sub: Subscription) -> None:
        if sub.api == AMS_API and sub.doc.get("requestTestNotification"):
            body = {"notificationType": "TestNotification",
                    "_links": {"subscription": {"href": sub.doc["_links"]["self"]["href"]}}}
            self.notifier.send(Outgoing(sub, "TestNotification", "test", body, None))

    def _acked(self, out: Outgoing, t_acked: float) -> None:
        if out.type_name == "MobilityProcedureNotification":
            self.mobility.acknowledged(out, t_acked)

    def _context_done(self, done: list[dict[str, Any]]) -> None:
        """``etsi.context_transfer``: from the notification the source instance acknowledged
        to its registration saying USER_CONTEXT_TRANSFER_COMPLETED."""
        for item in done:
            n = item["notified"]
            proc = n.procedure if n is not None else None
            self.events.emit(
                "etsi.context_transfer", app_instance=item["app_instance"],
                ue=proc.ue if proc else None, ue_ip=item["ue_ip"],
                service=proc.service if proc else None, status=proc.status if proc else None,
                t_move=proc.t_move if proc else None, t_event=proc.t_event if proc else None,
                t_notified=n.t_acked if n else None, t_completed=item["t_completed"],
                transfer_s=(item["t_completed"] - n.t_acked) if n else None)

    # ------------------------------------------------------------------ events in (any thread)
    def _post(self, fn: Callable[..., list[Outgoing]], *args: Any) -> None:
        def run() -> None:
            try:
                for out in fn(*args):
                    self.notifier.send(out)
            except Exception:  # noqa: BLE001 - one bad event must not stop the others
                log.exception("ETSI notification for %s failed", getattr(fn, "__name__", fn))

        if self._loop is not None:
            self._loop.call_soon_threadsafe(run)

    def move(self, ue: str, site: str, wall: float, t_event: Optional[float]) -> None:
        """The network located UE at SITE at WALL (monotonic T_EVENT): MEC 013's notices."""
        self._post(self.location.move, ue, site, wall, t_event)

    def procedure(self, proc: Procedure) -> None:
        """A mobility procedure's step: MEC 021's MobilityProcedureNotifications."""
        self._post(self.mobility.procedure, proc)

    def replicas_changed(self, service: str, t_event: float) -> None:
        """SERVICE's replica set changed: MEC 021's AdjacentAppInfoNotifications."""
        self._post(self.mobility.adjacent_changed, service, t_event)

    def call(self, fn: Callable[..., Any], *args: Any, timeout: float = 10) -> Any:
        """Run FN(*ARGS) on the server's loop (its state's thread) and return its result."""
        assert self._loop is not None
        async def run() -> Any:
            return fn(*args)
        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout)

    # ------------------------------------------------------------------ running
    async def _run(self, ready: threading.Event) -> None:
        self._closing = asyncio.Event()
        runner = web.AppRunner(self.app(), handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        await self.notifier.start()
        for sock in self.sockets:
            await web.SockSite(runner, sock).start()
        ready.set()
        try:
            await self._closing.wait()
        finally:
            await self.notifier.close()
            await runner.cleanup()

    def start(self) -> "EtsiServer":
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_until_complete,
                                        args=(self._run(ready),), name="etsi-server",
                                        daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the ETSI MEC server did not start within 10 s")
        return self

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        self._loop.call_soon_threadsafe(self._closing.set)
        self._thread.join(timeout=10)
        if self._thread.is_alive():
            log.warning("the ETSI MEC server did not stop within 10 s")
        else:
            self._loop.close()
        for sock in self.sockets:
            sock.close()
        self._loop = self._thread = None
