"""One request and its reply on the wire, for the user probe (TCP or UDP sockets).

The probe (:mod:`mec.measure.probe`) keeps the schedule and judges replies;
this module only moves bytes, and tells the local (source) port of each
request as soon as the socket has one, so a request that times out or is
refused still has its ``sport`` (the key to the Network Manager's record of
where that connection or flow was steered):

* :func:`tcp_request`: a new connection per request (HTTP and tcp targets).
* :class:`KeepAlivePool`: persistent TCP connections (``--keepalive``). A
  request takes the idle connection, or opens another one when every
  connection is busy (the schedule stays open loop: nothing queues behind a
  slow reply). A connection whose request did not succeed (timeout, reset,
  short or wrong reply) is closed, so the next request reconnects; a
  connection that finishes while another is idle is closed too, so a burst
  does not leave a crowd of idle connections.
* :func:`udp_request`: a fresh connected UDP socket per request (its own
  source port); the reply is the first datagram back. An ICMP port
  unreachable reads as ``ConnectionRefusedError``.

Source ports come from :class:`PortCycle`: every socket is bound, before
``connect``, to the next free port of the namespace's ephemeral range, walked
in order. Left to the kernel, ports of closed connections and UDP sockets come
back within seconds (measured on loopback: 964 distinct ports for 1000 HTTP
requests at 200/s), which would make one ``sport`` stand for two requests of
a run. Walked in order, a port comes back only after the whole range (about
28,000 requests: 140 s at 200 req/s); join a request with the network's
records on ``sport`` *and* time all the same.

``until`` is the number of reply bytes that completes a TCP reply (None:
read to EOF; at most :data:`MAX_REPLY_BYTES` are kept).
"""

from __future__ import annotations

import asyncio
import errno
import random
import socket
from dataclasses import dataclass
from typing import Callable

#: Most of a reply kept (for replica parsing and echo checks).
MAX_REPLY_BYTES = 1 << 20


@dataclass
class Attempt:
    """What is known of one request's socket, even when the request fails."""

    sport: int | None = None


def local_port_range(path: str = "/proc/sys/net/ipv4/ip_local_port_range") -> tuple[int, int]:
    """This network namespace's ephemeral port range (Linux's default if unreadable)."""
    try:
        with open(path, encoding="ascii") as fh:
            low, high = (int(x) for x in fh.read().split())
        return low, high
    except (OSError, ValueError):
        return 32768, 60999


class PortCycle:
    """Source ports for the probe's sockets: the ephemeral range in order, from a random start.

    A port some other socket holds is skipped (tried at most ``tries`` times,
    then the kernel picks one).
    """

    def __init__(self, low: int | None = None, high: int | None = None, tries: int = 64) -> None:
        self.low, self.high = (low, high) if low is not None and high is not None else local_port_range()
        self.tries = tries
        self._next = random.randint(self.low, self.high)

    def bind(self, sock: socket.socket) -> int:
        """Bind SOCK to the next free port of the cycle; return the port."""
        host = "::" if sock.family == socket.AF_INET6 else "0.0.0.0"
        for _ in range(self.tries):
            port = self._next
            self._next = self.low if port >= self.high else port + 1
            try:
                sock.bind((host, port))
                return port
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    raise
        sock.bind((host, 0))
        return sock.getsockname()[1]


async def _read(loop: asyncio.AbstractEventLoop, sock: socket.socket, until: int | None) -> bytes:
    """Read until ``until`` bytes (None: EOF) or EOF; keeps at most MAX_REPLY_BYTES."""
    chunks, size = [], 0
    while until is None or size < until:
        want = 65536 if until is None else min(65536, until - size)
        chunk = await loop.sock_recv(sock, want)
        if not chunk:
            break
        size += len(chunk)
        if size <= MAX_REPLY_BYTES:
            chunks.append(chunk)
    return b"".join(chunks)


async def _connect(loop: asyncio.AbstractEventLoop, family: int, addr: tuple, attempt: Attempt,
                   ports: PortCycle) -> socket.socket:
    """A connected non-blocking socket from the next port of PORTS (ATTEMPT gets it first)."""
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        attempt.sport = ports.bind(sock)
        await loop.sock_connect(sock, addr)
    except BaseException:
        sock.close()
        raise
    return sock


async def tcp_request(family: int, addr: tuple, request: bytes, until: int | None,
                      attempt: Attempt, ports: PortCycle) -> bytes:
    """Connect from the next port of PORTS, send REQUEST, read the reply, close (an error or
    cancel closes at once)."""
    loop = asyncio.get_running_loop()
    sock = await _connect(loop, family, addr, attempt, ports)
    try:
        await loop.sock_sendall(sock, request)
        return await _read(loop, sock, until)
    finally:
        sock.close()


async def udp_request(family: int, addr: tuple, payload: bytes, attempt: Attempt,
                      ports: PortCycle) -> bytes:
    """Send PAYLOAD from a fresh UDP socket on the next port of PORTS; the first datagram
    back is the reply."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        attempt.sport = ports.bind(sock)
        sock.connect(addr)  # sets the peer: replies from elsewhere are not taken; nothing is sent
        await loop.sock_sendall(sock, payload)
        return await loop.sock_recv(sock, 65536)
    finally:
        sock.close()


class KeepAlivePool:
    """Persistent TCP connections to one address (see the module docstring)."""

    def __init__(self, family: int, addr: tuple, ports: PortCycle) -> None:
        self.family, self.addr, self.ports = family, addr, ports
        self._idle: list[socket.socket] = []
        #: Connections opened so far (the first one included).
        self.opened = 0

    async def request(self, request: bytes, until: int | None, attempt: Attempt,
                      keep: Callable[[bytes], bool]) -> bytes:
        """Send REQUEST on an idle connection (or a new one) and read its reply.

        The connection goes back to the pool only if ``keep(reply)`` is true
        and no other connection is idle; otherwise it is closed.
        """
        loop = asyncio.get_running_loop()
        if self._idle:
            sock = self._idle.pop()
            attempt.sport = sock.getsockname()[1]
        else:
            sock = await _connect(loop, self.family, self.addr, attempt, self.ports)
            self.opened += 1
        try:
            await loop.sock_sendall(sock, request)
            data = await _read(loop, sock, until)
        except BaseException:
            sock.close()  # broken, timed out or cancelled: the next request reconnects
            raise
        if keep(data) and not self._idle:
            self._idle.append(sock)
        else:
            sock.close()
        return data

    def close(self) -> None:
        for sock in self._idle:
            sock.close()
        self._idle.clear()
