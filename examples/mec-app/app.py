#!/usr/bin/env python3
"""An example MEC application written against the ETSI MEC APIs (standard library only).

It serves users over HTTP and keeps, per user, a counter of the requests it served: the
user context. It speaks two ETSI MEC APIs of the platform at $MEC_PLATFORM:

* GS MEC 021 (Application Mobility Service, ``/amsi/v1``): on start it registers
  (``app_mobility_services``, ``serviceConsumerId.appInstanceId = $MEC_INSTANCE``) and
  subscribes to ``MobilityProcedureSubscription`` notifications for itself. On
  ``INTERHOST_MOVEOUT_COMPLETED`` for a user whose context it holds, it sends that
  context to the target instance named in the notification (``targetAppInfo``: the
  application-self-controlled mode), then PUTs its registration with
  ``contextTransferState = USER_CONTEXT_TRANSFER_COMPLETED`` for that user.
* GS MEC 013 (Location API, ``/location/v2``): on every notification, and when it
  receives a user's context, it asks where the user is (``/queries/users``) and logs the
  zone and access point.

The target instance adds the received counter to what it served meanwhile, so the user
sees one counter that continues across instances. A request the old instance still serves
after it handed the context over (a connection opened before the switch) is counted at
the target: the old instance forwards it (``late``) and replies with the target's count.

HTTP endpoints (port $MEC_PORT):
  GET /            count one request of the calling user; reply "INSTANCE COUNT"
  GET /counter     the calling user's count, not counted ("INSTANCE COUNT")
  GET /health      "INSTANCE ok" (the testbed's readiness and health check)
  GET /state       what the app did, as JSON (counters, notifications, transfers, locations)
  POST /notifications   MEC 021 notifications (the subscription's callbackReference)
  POST /context    a user context sent by another instance: {"associateId", "counter"},
                   with "late": true one request served by the sender after it handed
                   the context over; replies {"counter": the user's count here}
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

INSTANCE = os.environ.get("MEC_INSTANCE", "mec-app")
PORT = int(os.environ.get("MEC_PORT", "8000"))
PLATFORM = os.environ.get("MEC_PLATFORM", "").rstrip("/")
AMS = "/amsi/v1"
LOCATION = "/location/v2"
TRIGGERED, COMPLETED, FAILED = ("INTERHOST_MOVEOUT_TRIGGERED", "INTERHOST_MOVEOUT_COMPLETED",
                                "INTERHOST_MOVEOUT_FAILED")
#: MEC 021 v2.1.1 also wrote MobilityStatus as numbers (1, 2, 3)
STATUS_NUMBERS = {1: TRIGGERED, 2: COMPLETED, 3: FAILED}

log = logging.getLogger("mec-app")


class App:
    """The application's state: per-user counters and what it did with the platform."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.base: dict[str, int] = {}  # per user: the count received with its context
        self.local: dict[str, int] = {}  # per user: requests served here since then
        self.moved: dict[str, str] = {}  # per user handed over: the target's /context URL
        self.registration: dict | None = None  # our RegistrationInfo as the platform has it
        self.subscription: str | None = None  # its URL (Location header)
        self.notifications: list[dict] = []
        self.transfers: list[dict] = []
        self.received: list[dict] = []
        self.late: list[dict] = []  # requests served here after a hand-over, forwarded
        self.locations: list[dict] = []
        self.errors: list[str] = []

    def count(self, user: str) -> int:
        """USER's count here."""
        with self.lock:
            return self.base.get(user, 0) + self.local.get(user, 0)

    def serve(self, user: str) -> tuple[int | None, str | None]:
        """Count one request of USER: (its count, None), or (None, the target's /context
        URL) when the context was handed over (the request is the target's to count)."""
        with self.lock:
            if user in self.moved:
                return None, self.moved[user]
            self.local[user] = self.local.get(user, 0) + 1
            return self.base.get(user, 0) + self.local[user], None

    def hand_over(self, user: str, url: str) -> int | None:
        """Take the user's context out (the count) for the target at URL, or None when
        this instance holds none; later requests here are forwarded to URL."""
        with self.lock:
            if user not in self.local and user not in self.base:
                return None
            self.moved[user] = url
            return self.base.pop(user, 0) + self.local.pop(user, 0)

    def take_back(self, user: str, total: int) -> None:
        """A transfer failed: the context stays here."""
        with self.lock:
            self.moved.pop(user, None)
            self.base[user] = self.base.get(user, 0) + total

    def receive(self, user: str, total: int) -> int:
        """Add a count sent by another instance (a context or a late request); the user's
        count here after it."""
        with self.lock:
            self.moved.pop(user, None)
            self.base[user] = self.base.get(user, 0) + total
            return self.base[user] + self.local.get(user, 0)

    def state(self) -> dict:
        with self.lock:
            users = sorted(set(self.base) | set(self.local))
            return {"instance": INSTANCE, "platform": PLATFORM,
                    "counters": {u: self.base.get(u, 0) + self.local.get(u, 0) for u in users},
                    "registration": self.registration, "subscription": self.subscription,
                    "notifications": list(self.notifications), "transfers": list(self.transfers),
                    "received": list(self.received), "late": list(self.late),
                    "locations": list(self.locations),
                    "errors": list(self.errors)}

    def error(self, text: str) -> None:
        log.warning("%s", text)
        with self.lock:
            self.errors.append(text)


APP = App()


# ------------------------------------------------------------------ HTTP client
def call(method: str, url: str, body: dict | None = None,
         timeout: float = 3.0) -> tuple[int, dict | None, dict]:
    """(status, JSON body or None, headers) of one request; HTTPError statuses returned."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json",
                                          "Accept": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
            return resp.status, (json.loads(raw) if raw else None), dict(resp.headers)
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            return exc.code, json.loads(raw) if raw else None, dict(exc.headers)
        except ValueError:
            return exc.code, None, dict(exc.headers)


def own_address() -> str:
    """The address the platform reaches this instance at (the route towards it)."""
    host = urlparse(PLATFORM).hostname or "127.0.0.1"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect((host, 9))
        return s.getsockname()[0]


# ------------------------------------------------------------------ MEC 021
def device(user: str, state: str) -> dict:
    """A RegistrationInfo.deviceInformation entry for USER (its IPv4 address)."""
    return {"associateId": {"type": "UE_IPv4_ADDRESS", "value": user},
            "appMobilityServiceLevel": "APP_MOBILITY_WITHOUT_CONFIRMATION",
            "contextTransferState": state}


def register(retry_s: float = 120.0) -> None:
    """Register with the AMS and subscribe to mobility procedures (retried until it answers)."""
    deadline = time.monotonic() + retry_s
    while True:
        try:
            status, body, _ = call("POST", f"{PLATFORM}{AMS}/app_mobility_services",
                                   {"serviceConsumerId": {"appInstanceId": INSTANCE},
                                    "deviceInformation": [], "expiryTime": 0})
            if status != 201 or not body or "appMobilityServiceId" not in body:
                raise RuntimeError(f"registration answered {status}: {body}")
            with APP.lock:
                APP.registration = body
            callback = f"http://{own_address()}:{PORT}/notifications"
            status, sub, headers = call("POST", f"{PLATFORM}{AMS}/subscriptions", {
                "subscriptionType": "MobilityProcedureSubscription",
                "callbackReference": callback,
                # without mobilityStatus the AMS sends only TRIGGERED (MEC 021 7.3.4)
                "filterCriteria": {"appInstanceId": INSTANCE,
                                   "mobilityStatus": [TRIGGERED, COMPLETED, FAILED]}})
            if status != 201 or not sub:
                raise RuntimeError(f"subscription answered {status}: {sub}")
            link = (sub.get("_links") or {}).get("self", {}).get("href")
            with APP.lock:
                APP.subscription = headers.get("Location") or link
            log.info("registered as %s, subscribed (callback %s)",
                     body["appMobilityServiceId"], callback)
            return
        except (OSError, RuntimeError, ValueError) as exc:
            if time.monotonic() > deadline:
                APP.error(f"could not register with {PLATFORM}: {exc}")
                return
            log.info("platform not ready (%s); retrying", exc)
            time.sleep(0.5)


def put_registration(user: str, state: str) -> int:
    """PUT our registration with USER's contextTransferState; returns the HTTP status."""
    with APP.lock:
        reg = dict(APP.registration or {})
    if not reg:
        raise RuntimeError("not registered")
    others = [d for d in reg.get("deviceInformation") or []
              if d.get("associateId", {}).get("value") != user]
    reg["deviceInformation"] = [*others, device(user, state)]
    status, body, _ = call("PUT", f"{PLATFORM}{AMS}/app_mobility_services/"
                                  f"{reg['appMobilityServiceId']}", reg)
    if status == 200 and body:
        with APP.lock:
            APP.registration = body
    return status


def on_notification(note: dict, t_received: float) -> None:
    """Handle one MobilityProcedureNotification (after it was acknowledged)."""
    status = note.get("mobilityStatus")
    status = STATUS_NUMBERS.get(status, status)
    users = [a.get("value") for a in note.get("associateId") or [] if a.get("value")]
    target = note.get("targetAppInfo") or {}
    entry = {"t": t_received, "mobilityStatus": status, "users": users,
             "target": target.get("appInstanceId")}
    with APP.lock:
        APP.notifications.append(entry)
    log.info("notification %s for %s, target %s", status, users, entry["target"])
    for user in users:
        where = locate(user)
        log.info("MEC 013: user %s is at %s", user, where)
        if status == COMPLETED and target.get("appInstanceId") not in (None, INSTANCE):
            transfer(user, target)


def locate(user: str) -> dict | None:
    """Where USER is, by the Location API (/queries/users): zone and access point."""
    try:
        status, body, _ = call("GET", f"{PLATFORM}{LOCATION}/queries/users")
    except OSError as exc:
        APP.error(f"MEC 013 query failed: {exc}")
        return None
    found = None
    for info in ((body or {}).get("userList") or {}).get("user") or []:
        if info.get("address") in (user, f"acr:{user}"):
            found = {"address": info.get("address"), "zoneId": info.get("zoneId"),
                     "accessPointId": info.get("accessPointId")}
    with APP.lock:
        APP.locations.append({"t": time.time(), "user": user, "status": status, "found": found})
    return found


def transfer(user: str, target: dict) -> None:
    """Send USER's context to TARGET (application self-controlled), then tell the AMS."""
    addresses = (target.get("commInterface") or {}).get("ipAddresses") or []
    if not addresses:
        APP.error(f"no address for the target {target.get('appInstanceId')}")
        return
    url = f"http://{addresses[0]['host']}:{addresses[0]['port']}/context"
    total = APP.hand_over(user, url)
    if total is None:
        log.info("no context of %s here: nothing to transfer", user)
        return
    t0 = time.time()
    try:
        status, _, _ = call("POST", url, {"associateId": {"type": "UE_IPv4_ADDRESS",
                                                           "value": user},
                                          "counter": total, "source": INSTANCE})
        if status != 200:
            raise RuntimeError(f"{url} answered {status}")
    except (OSError, RuntimeError) as exc:
        APP.take_back(user, total)
        APP.error(f"context of {user} not transferred to {url}: {exc}")
        return
    t_sent = time.time()
    try:
        put = put_registration(user, "USER_CONTEXT_TRANSFER_COMPLETED")
    except (OSError, RuntimeError) as exc:
        put = None
        APP.error(f"registration update failed: {exc}")
    with APP.lock:
        APP.transfers.append({"user": user, "counter": total,
                              "target": target.get("appInstanceId"), "t_start": t0,
                              "t_sent": t_sent, "put_status": put})
    log.info("context of %s (counter %d) sent to %s; registration PUT %s", user, total,
             target.get("appInstanceId"), put)


def forward_late(user: str, url: str) -> int | None:
    """Count at the target (URL) a request of USER served here after the hand-over; the
    user's count there, or None when the target could not count it (not counted at all)."""
    try:
        status, body, _ = call("POST", url, {"associateId": {"type": "UE_IPv4_ADDRESS",
                                                             "value": user},
                                             "counter": 1, "late": True, "source": INSTANCE})
        if status != 200 or not isinstance((body or {}).get("counter"), int):
            raise RuntimeError(f"{url} answered {status}: {body}")
    except (OSError, RuntimeError, ValueError) as exc:
        APP.error(f"late request of {user} not forwarded to {url}: {exc}")
        return None
    with APP.lock:
        APP.late.append({"t": time.time(), "user": user, "target": url, "now": body["counter"]})
    return body["counter"]


# ------------------------------------------------------------------ HTTP server
class Handler(BaseHTTPRequestHandler):
    """The app's HTTP endpoints (see the module's docstring)."""

    protocol_version = "HTTP/1.0"

    def log_message(self, fmt: str, *args) -> None:  # requests are not logged one by one
        return

    def _send(self, status: int, text: str, ctype: str = "text/plain") -> None:
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        user = self.client_address[0]
        path = urlparse(self.path).path
        if path == "/health":
            self._send(200, f"{INSTANCE} ok\n")
        elif path == "/state":
            self._send(200, json.dumps(APP.state()), "application/json")
        elif path == "/counter":
            self._send(200, f"{INSTANCE} {APP.count(user)}\n")
        else:
            count, target = APP.serve(user)
            if target is not None:
                count = forward_late(user, target)
            if count is None:  # not counted anywhere: the user is told so
                self._send(503, f"{INSTANCE} context moved, not counted\n")
            else:
                self._send(200, f"{INSTANCE} {count}\n")

    def do_POST(self) -> None:  # noqa: N802
        path = urlparse(self.path).path
        try:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0))
                              or b"{}")
        except ValueError:
            self._send(400, "not JSON\n")
            return
        if path == "/notifications":
            t = time.time()
            self.send_response(204)  # acknowledged at once; the work is done after
            self.end_headers()
            if body.get("notificationType") == "MobilityProcedureNotification":
                threading.Thread(target=on_notification, args=(body, t), daemon=True).start()
        elif path == "/context":
            user = (body.get("associateId") or {}).get("value")
            if not user or not isinstance(body.get("counter"), int):
                self._send(400, "associateId.value and counter wanted\n")
                return
            now = APP.receive(user, body["counter"])
            self._send(200, json.dumps({"counter": now}), "application/json")
            if body.get("late"):
                return
            with APP.lock:
                APP.received.append({"t": time.time(), "user": user, "counter": body["counter"],
                                     "source": body.get("source"), "now": now})
            log.info("context of %s received from %s: counter %d (now %d)", user,
                     body.get("source"), body["counter"], now)
            if PLATFORM:  # the new instance asks where its user is (MEC 013)
                threading.Thread(target=locate, args=(user,), daemon=True).start()
        else:
            self._send(404, "no such endpoint\n")


def main() -> None:
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {INSTANCE} %(message)s")
    server = ThreadingHTTPServer(("0.0.0.0", PORT), Handler)
    server.daemon_threads = True
    if PLATFORM:
        threading.Thread(target=register, daemon=True).start()
    else:
        log.warning("no MEC_PLATFORM: serving without the ETSI APIs")
    log.info("serving on port %d", PORT)
    server.serve_forever()


if __name__ == "__main__":
    main()
