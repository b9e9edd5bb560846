"""The Network Manager's JSON REST API on http.server (no Ryu WSGI).

Runs in a thread the app starts: a native thread under os-ken, a green thread
under ryu-manager's eventlet monkey-patching. Bound to 127.0.0.1 by default.
Every client error is a 4xx with ``{"error": "..."}``; an unexpected failure is
a 500 with a message; the server thread never dies from a request.

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
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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

Route = tuple[str, "re.Pattern[str]", Callable[..., Any]]


class _Handler(BaseHTTPRequestHandler):
    server: "_Server"
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt: str, *args: Any) -> None:  # route access log to logging
        LOG.debug("%s " + fmt, self.address_string(), *args)

    def _send(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _read_raw(self) -> None:
        """Read the request body up front so errors never desync keep-alive."""
        self._raw = b""
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.close_connection = True
            raise RequestError("bad Content-Length") from None
        if length > MAX_BODY:
            self.close_connection = True
            raise RequestError("request body too large", 413)
        if length:
            self._raw = self.rfile.read(length)

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


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    routes: list[Route]


class RestServer:
    """Owns the HTTP server thread and maps endpoints to NetworkManager methods."""

    def __init__(self, app: "NetworkManager", host: str = "127.0.0.1", port: int = 8190) -> None:
        self.app = app
        self.httpd = _Server((host, port), _Handler)
        self.httpd.routes = self._routes()
        self.port = self.httpd.server_address[1]
        self._thread: threading.Thread | None = None

    def start(self) -> None:
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
            r("GET", r"/mec/steering", steering),
            r("GET", r"/mec/locations", lambda h, t0, q: app.locations()),
            r("GET", r"/mec/drains", lambda h, t0, q: app.drains()),
            r("GET", r"/mec/events", events),
            r("GET", r"/mec/policy", policy_get),
            r("PUT", r"/mec/policy/([^/]+)",
              lambda h, t0, q, n: app.set_policy(n, parse_policy(body_json(h)))),
        ]
