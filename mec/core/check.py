"""One check of a service instance: a request and whether its answer counts (blocking, one shot).

The Edge Manager's readiness wait and the Service Manager's health checks ask a
replica what a service file says (:class:`mec.core.servicefile.Exchange`): an
HTTP request with an expected status, a TCP or UDP request whose reply must be
any bytes or an echo of the request, or a bare TCP connect. They run in the
namespace of whoever asks (a `mec.core.netns.NamespaceThread`). The user's
probe (`mec.measure.probe`) sends the same exchanges open loop, asynchronously.
"""

from __future__ import annotations

import http.client
import socket
import time
from dataclasses import dataclass
from typing import Optional

from mec.core.servicefile import Exchange

#: Most of a reply kept (the instance name is on its first line).
MAX_REPLY = 65536


@dataclass
class Answer:
    """What one exchange got back."""

    ok: bool
    status: Optional[int] = None  # http status
    body: bytes = b""
    error: str = ""

    @property
    def first_token(self) -> Optional[str]:
        """The first whitespace-separated token of the body (an instance's name)."""
        words = self.body.decode("utf-8", errors="replace").split()
        return words[0] if words else None


def ask(ip: str, port: int, exchange: Exchange, timeout: float) -> Answer:
    """Send EXCHANGE to IP:PORT and judge the answer; never raises for network errors."""
    try:
        if exchange.protocol == "http":
            return _http(ip, port, exchange, timeout)
        if exchange.protocol == "tcp":
            return _tcp(ip, port, exchange, timeout)
        return _udp(ip, port, exchange, timeout)
    except (OSError, http.client.HTTPException) as exc:
        return Answer(False, error=f"{type(exc).__name__}: {exc}")


def judge(exchange: Exchange, reply: bytes) -> bool:
    """Whether REPLY answers a tcp/udp EXCHANGE (any bytes, or its payload echoed)."""
    if exchange.reply == "echo":
        return reply[:len(exchange.payload)] == exchange.payload
    return len(reply) > 0


def _http(ip: str, port: int, ex: Exchange, timeout: float) -> Answer:
    conn = http.client.HTTPConnection(ip, port, timeout=timeout)
    try:
        conn.request(ex.method, ex.path, headers={"Connection": "close"})
        resp = conn.getresponse()
        body = resp.read(MAX_REPLY)
        ok = resp.status == ex.expect_status
        return Answer(ok, resp.status, body,
                      "" if ok else f"status {resp.status}, expected {ex.expect_status}")
    finally:
        conn.close()


def _tcp(ip: str, port: int, ex: Exchange, timeout: float) -> Answer:
    deadline = time.monotonic() + timeout
    with socket.create_connection((ip, port), timeout=timeout) as s:
        if ex.connect:
            return Answer(True)
        s.sendall(ex.payload)
        want = len(ex.payload) if ex.reply == "echo" else 1
        reply = b""
        while len(reply) < want:
            s.settimeout(max(0.001, deadline - time.monotonic()))
            chunk = s.recv(MAX_REPLY)
            if not chunk:
                break
            reply += chunk
    ok = judge(ex, reply)
    return Answer(ok, body=reply, error="" if ok else f"reply {reply[:40]!r} does not answer "
                                                      f"{ex.payload[:40]!r} ({ex.reply})")


def _udp(ip: str, port: int, ex: Exchange, timeout: float) -> Answer:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.connect((ip, port))
        s.send(ex.payload)
        reply = s.recv(MAX_REPLY)
    ok = judge(ex, reply)
    return Answer(ok, body=reply, error="" if ok else f"reply {reply[:40]!r} does not answer "
                                                      f"{ex.payload[:40]!r} ({ex.reply})")
