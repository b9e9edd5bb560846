"""The view's web server: the page, its static files and the pushed stream (aiohttp).

Bound to 127.0.0.1 only. ``GET /`` is the page, ``GET /static/...`` its script
and style, ``GET /api/stream`` the server-sent events: one ``meta`` message
(live or replay, the title), then messages of items (`mec.view.feed`) as they
come (checked every ``POLL_S``) and, for a replay, ``{"complete": true}`` after
the last. At most ``MAX_CLIENTS`` streams at once; more get 503.
The server runs on its own thread with its own event loop (`start` / `stop`),
so a scenario keeps its own thread, or in the foreground (`serve`).
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any, Optional

from aiohttp import web

from mec.view.errors import ViewError
from mec.view.feed import Feed

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
HOST = "127.0.0.1"
#: how often a stream looks for new items (s): the page is at most this much behind the feed
POLL_S = 0.05
#: the longest silence of a live stream (s): then it sends the server's clock
NOW_S = 1.0
MAX_CLIENTS = 8
#: items per server-sent message (a replay's thousands go in several)
BATCH = 500


def bind(port: int) -> socket.socket:
    """A listening socket on 127.0.0.1:PORT (0: a free one); ViewError when PORT is taken."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((HOST, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ViewError(f"port {port} on {HOST} is in use: give another with --view-port/"
                            "--port, or 0 for a free one") from None
        raise ViewError(f"cannot listen on {HOST}:{port}: {exc.strerror or exc}") from None
    sock.listen(64)
    sock.setblocking(False)
    return sock


class ViewServer:
    """Serves FEED (with META: ``mode`` live or replay, ``title``) on 127.0.0.1:PORT."""

    def __init__(self, feed: Feed, meta: dict[str, Any], port: int = 0) -> None:
        self.feed = feed
        self.meta = dict(meta)
        self.sock = bind(port)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://{HOST}:{self.port}/"
        self.clients = 0
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._thread: Optional[threading.Thread] = None
        self._closing: Optional[asyncio.Event] = None

    # ------------------------------------------------------------------ app
    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024)
        app.router.add_get("/", self._index)
        app.router.add_get("/api/stream", self._stream)
        app.router.add_static("/static/", STATIC_DIR, follow_symlinks=False)
        return app

    async def _index(self, _request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC_DIR / "index.html")

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        if self.clients >= MAX_CLIENTS:
            raise web.HTTPServiceUnavailable(text=f"at most {MAX_CLIENTS} pages at once")
        self.clients += 1
        try:
            resp = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                               "Cache-Control": "no-cache"})
            await resp.prepare(request)
            await self._send(resp, {"meta": self.meta})
            await self._pump(resp)
            return resp
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        finally:
            self.clients -= 1

    async def _pump(self, resp: web.StreamResponse) -> None:
        seq, idle = 0, 0.0
        replay = self.meta.get("mode") == "replay"
        while not self._closing.is_set():
            items = self.feed.since(seq)
            for i in range(0, len(items), BATCH):
                await self._send(resp, {"items": items[i:i + BATCH], "now": time.monotonic()})
            if items:
                seq, idle = items[-1]["seq"], 0.0
            if replay:
                await self._send(resp, {"complete": True})
                await self._closing.wait()
                return
            if idle >= NOW_S:  # the page's clock (the strips scroll) when nothing changes
                await self._send(resp, {"now": time.monotonic()})
                idle = 0.0
            try:
                await asyncio.wait_for(self._closing.wait(), POLL_S)
            except asyncio.TimeoutError:
                idle += POLL_S

    @staticmethod
    async def _send(resp: web.StreamResponse, message: dict[str, Any]) -> None:
        data = json.dumps(message, default=str, allow_nan=False, separators=(",", ":"))
        await resp.write(f"data: {data}\n\n".encode())

    # ------------------------------------------------------------------ running
    async def _run(self, ready: threading.Event) -> None:
        self._closing = asyncio.Event()
        runner = web.AppRunner(self.app(), handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        await web.SockSite(runner, self.sock).start()
        ready.set()
        try:
            await self._closing.wait()
        finally:
            await runner.cleanup()

    def start(self) -> str:
        """Serve on a thread of its own; returns the page's address."""
        ready = threading.Event()
        self._pid = os.getpid()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_until_complete, args=(self._run(ready),),
            name="view-server", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise ViewError(f"the view's server did not start on {self.url}")
        log.info("view at %s", self.url)
        return self.url

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        if self._pid != os.getpid():  # a forked child unwinding its parent's stack: not ours
            return
        self._loop.call_soon_threadsafe(self._closing.set)
        self._thread.join(timeout=10)
        if self._thread.is_alive():  # a daemon thread: it ends with the process
            log.warning("the view's server at %s did not stop within 10 s", self.url)
        else:
            self._loop.close()
        self._loop = self._thread = None

    def serve(self) -> None:
        """Serve in the foreground until Ctrl-C (KeyboardInterrupt) or SIGTERM."""
        self.start()
        try:
            self._thread.join()
        finally:
            self.stop()
