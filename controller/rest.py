"""The Network Manager's JSON REST API on http.server (no Ryu WSGI).

Runs in threads the app starts: native threads under os-ken, green threads
under ryu-manager's eventlet monkey-patching. Bound to 127.0.0.1 by default.
Every client error is a 4xx with ``{"error": "..."}``; an unexpected failure is
a 500 with a message; the server thread never dies from a request.

Bounded by construction: one accept thread hands connections to a fixed pool
of ``workers`` threads through a queue of at most ``backlog`` connections; a
connection beyond that is answered 503 at once. Each connection carries one
request (the answer says ``Connection: close``), so an idle keep-alive client
never holds a worker; a client that stalls while sending its request is cut
after ``read_timeout_s`` of silence (408 when its headers had arrived). A bad
``Content-Length`` (not a decimal number, repeated, or a chunked body) is a
400 and one above ``MAX_BODY`` a 413, before any body byte is read.

Endpoints::

    GET  /health                       line, pid, connected switches
    GET  /switches                     switches (name, dpid, connected)
    GET  /stats/switches               dpids (Ryu ofctl_rest compatible)
    GET  /stats/flow/<dpid>            {"<dpid>": [flows]} (Ryu ofctl_rest fields)
    GET  /mec/topology                 the pushed topology (+ cookie ids)
    PUT  /mec/topology                 push switches, links, hosts
    GET  /mec/services                 services
    POST /mec/services                 add/replace a service
    DELETE /mec/services/<name>
    GET  /mec/services/<name>/connections?ue=UE  the connection ledger: which replica
                                       answered which UE port, when, at which switch
    PUT  /mec/services/<name>/primary  {"replica", "ue"?, "drain_s"?} -> reroute_ms, ...
    GET  /mec/drains                   re-steers whose old connections still drain
    GET  /mec/steering                 per (service, UE): replica and AP
    GET  /mec/locations                where every host is
    GET  /mec/events?since=N           event log with timings
    GET  /mec/policy                   pre-registered replicas per site
    PUT  /mec/policy/<service>         {"sites": {"<switch>": "<replica>"}}
"""

from __future__ import annotations

import json
import logging
import queue
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import TYPE_CHECKING, Any, Callable
from urllib.parse import parse_qs, urlparse

from controller.model import (
    RequestError,
    parse_dpid,
    parse_policy,
    parse_primary,
    parse_service,
    parse_topology,
)

if TYPE_CHECKING:
    from controller.app import NetworkManager

LOG = logging.getLogger("controller.rest")
MAX_BODY = 4 * 1024 * 1024
#: Worker threads that handle requests (the most requests served at once).
WORKERS = 8
#: Accepted connections that may wait for a worker; more are answered 503 at once.
BACKLOG = 64
#: Seconds a worker waits for the next bytes of a request before it drops the connection.
READ_TIMEOUT_S = 5.0
_DIGITS = re.compile(r"[0-9]+")

Route = tuple[str, "re.Pattern[str]", Callable[..., Any]]


class _Handler(BaseHTTPRequestHandler):
    server: "_Server"
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        self.timeout = self.server.read_timeout_s  # StreamRequestHandler applies it to the socket
        super().setup()

    def log_message(self, fmt: str, *args: Any) -> None:  # route access log to logging
        LOG.debug("%s " + fmt, self.address_string(), *args)

    def _send(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")  # one request per connection: see the module doc
        self.close_connection = True
        self.end_headers()
        self.wfile.write(data)

    def _content_length(self) -> int:
        """The declared body length, checked before any body byte is read."""
        if self.headers.get("Transfer-Encoding") is not None:
            raise RequestError("Transfer-Encoding is not supported: send a Content-Length", 411)
        values = {v.strip() for v in self.headers.get_all("Content-Length") or []}
        if not values:
            return 0
        if len(values) > 1:
            raise RequestError(f"conflicting Content-Length headers: {sorted(values)}")
        value = values.pop()
        if not _DIGITS.fullmatch(value):
            raise RequestError(f"bad Content-Length {value!r}: expected a decimal byte count")
        if len(value) > len(str(MAX_BODY)) or int(value) > MAX_BODY:
            raise RequestError(f"request body too large ({value} > {MAX_BODY} bytes)", 413)
        return int(value)

    def _read_raw(self) -> None:
        """Read the whole request body up front (within the connection's read timeout)."""
        self._raw = b""
        length = self._content_length()
        if not length:
            return
        try:
            self._raw = self.rfile.read(length)
        except (TimeoutError, socket.timeout):
            raise RequestError(f"request body not received within "
                               f"{self.server.read_timeout_s:g} s", 408) from None
        if len(self._raw) < length:
            raise RequestError(f"request body ended after {len(self._raw)} of {length} bytes")

    def _body(self) -> Any:
        if not self._raw.strip():
            raise RequestError("request body must be JSON, got nothing")
        try:
            return json.loads(self._raw)
        except (ValueError, UnicodeDecodeError) as e:
            raise RequestError(f"malformed JSON: {e}") from None

    def _dispatch(self, method: str) -> None:
        t0 = time.perf_counter()
        url = urlparse(self.path)
        try:
            self._read_raw()
            for m, rx, fn in self.server.routes:
                match = rx.fullmatch(url.path)
                if match and m == method:
                    result = fn(self, t0, parse_qs(url.query), *match.groups())
                    status = 201 if method == "POST" else 200
                    self._send(status, result)
                    return
            if any(rx.fullmatch(url.path) for _, rx, _ in self.server.routes):
                raise RequestError(f"method {method} not allowed on {url.path}", 405)
            raise RequestError(f"no such endpoint: {url.path}", 404)
        except RequestError as e:
            self._send(e.status, {"error": e.message})
        except Exception as e:  # noqa: BLE001 - never let a request kill the server
            LOG.exception("REST %s %s failed", method, self.path)
            self._send(500, {"error": f"internal error: {type(e).__name__}: {e}"})

    def do_GET(self) -> None:  # noqa: N802
        self._dispatch("GET")

    def do_PUT(self) -> None:  # noqa: N802
        self._dispatch("PUT")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch("DELETE")


def _busy_answer() -> bytes:
    """The raw 503 a connection gets when every worker is busy and the queue is full."""
    body = json.dumps({"error": "too many connections waiting: try again"}).encode()
    head = ("HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n")
    return head.encode() + body


_BUSY = _busy_answer()


class _Server(HTTPServer):
    """HTTPServer whose accepted connections go to a fixed pool of worker threads."""

    allow_reuse_address = True
    request_queue_size = 128  # the kernel's listen backlog (socketserver's 5 overflows)
    routes: list[Route]

    def __init__(self, address: tuple[str, int], workers: int = WORKERS,
                 backlog: int = BACKLOG, read_timeout_s: float = READ_TIMEOUT_S) -> None:
        super().__init__(address, _Handler)
        self.read_timeout_s = read_timeout_s
        self.refused = 0  # connections answered 503 because the pool and queue were full
        self._pending: "queue.Queue[tuple[socket.socket, Any] | None]" = queue.Queue(backlog)
        self._workers = [threading.Thread(target=self._work, name=f"mec-rest-{i}", daemon=True)
                         for i in range(workers)]

    def start_workers(self) -> None:
        for t in self._workers:
            t.start()

    def process_request(self, request: Any, client_address: Any) -> None:
        """Queue the connection for a worker, or answer 503 when the queue is full."""
        try:
            self._pending.put_nowait((request, client_address))
        except queue.Full:
            self.refused += 1
            LOG.warning("REST: %d connections waiting, refusing %s", self._pending.qsize(),
                        client_address)
            try:
                request.setblocking(False)
                request.recv(65536)  # what already came: closing with unread bytes resets
            except OSError:
                pass
            try:
                request.settimeout(0.5)
                request.sendall(_BUSY)
            except OSError:
                pass
            self.shutdown_request(request)

    def _work(self) -> None:
        while True:
            item = self._pending.get()
            if item is None:
                return
            request, client_address = item
            try:
                self.finish_request(request, client_address)
            except Exception:  # noqa: BLE001 - a broken connection must not end the worker
                self.handle_error(request, client_address)
            finally:
                self.shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        LOG.warning("REST connection from %s failed", client_address, exc_info=True)

    def server_close(self) -> None:
        super().server_close()
        for _ in self._workers:
            try:
                self._pending.put_nowait(None)
            except queue.Full:
                break  # daemon workers end with the process


class RestServer:
    """Owns the HTTP server thread and maps endpoints to NetworkManager methods."""

    def __init__(self, app: "NetworkManager", host: str = "127.0.0.1", port: int = 8190,
                 workers: int = WORKERS, backlog: int = BACKLOG,
                 read_timeout_s: float = READ_TIMEOUT_S) -> None:
        self.app = app
        self.httpd = _Server((host, port), workers, backlog, read_timeout_s)
        self.httpd.routes = self._routes()
        self.port = self.httpd.server_address[1]
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.httpd.start_workers()
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="mec-rest",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _routes(self) -> list[Route]:
        app = self.app

        def r(method: str, pattern: str, fn: Callable[..., Any]) -> Route:
            return method, re.compile(pattern), fn

        def body_json(h: _Handler) -> Any:
            return h._body()

        def topology_get(h, t0, q):
            with app.lock:
                doc = app.state.topology.to_json()
                for host in doc["hosts"]:
                    host["id"] = app.state.host_id(host["name"])
                return doc

        def events(h, t0, q):
            since = q.get("since", ["0"])[0]
            try:
                n = int(since)
            except ValueError:
                raise RequestError(f"since must be an integer, got {since!r}") from None
            return app.events_since(n)

        def flow(h, t0, q, dpid):
            d = parse_dpid(int(dpid) if dpid.isdigit() else dpid)
            return {str(d): app.flow_stats(d)}

        def services_get(h, t0, q):
            with app.lock:
                return [app.service_json(s) for s in app.state.services.values()]

        def primary(h, t0, q, name):
            replica, ue, drain_s = parse_primary(body_json(h))
            return app.set_primary(name, replica, ue, t0=t0, drain_s=drain_s)

        def connections(h, t0, q, name):
            ue = q.get("ue", [None])[0]
            return app.connections(name, ue or None)

        def policy_get(h, t0, q):
            with app.lock:
                return {s: {app.state.switch_name(d): rep for d, rep in m.items()}
                        for s, m in app.state.policy.items()}

        def steering(h, t0, q):
            with app.lock:
                return app.state.steering_table()

        return [
            r("GET", r"/health", lambda h, t0, q: app.health()),
            r("GET", r"/switches", lambda h, t0, q: app.switches()),
            r("GET", r"/stats/switches", lambda h, t0, q: [s["dpid"] for s in app.switches()
                                                           if s["connected"]]),
            r("GET", r"/stats/flow/([^/]+)", flow),
            r("GET", r"/mec/topology", topology_get),
            r("PUT", r"/mec/topology",
              lambda h, t0, q: app.set_topology(parse_topology(body_json(h)))),
            r("GET", r"/mec/services", services_get),
            r("POST", r"/mec/services", lambda h, t0, q: app.add_service(parse_service(body_json(h)))),
            r("DELETE", r"/mec/services/([^/]+)", lambda h, t0, q, n: app.remove_service(n)),
            r("PUT", r"/mec/services/([^/]+)/primary", primary),
            r("GET", r"/mec/services/([^/]+)/connections", connections),
            r("GET", r"/mec/steering", steering),
            r("GET", r"/mec/locations", lambda h, t0, q: app.locations()),
            r("GET", r"/mec/drains", lambda h, t0, q: app.drains()),
            r("GET", r"/mec/events", events),
            r("GET", r"/mec/policy", policy_get),
            r("PUT", r"/mec/policy/([^/]+)",
              lambda h, t0, q, n: app.set_policy(n, parse_policy(body_json(h)))),
        ]
