"""What the user probe asks a service, and what counts as a reply.

A :class:`Target` names the protocol (``http``, ``tcp`` or ``udp``), the
address, the request and the rule that makes a reply a success:

* ``http``: ``METHOD PATH HTTP/1.0`` with ``Connection: close``; success is
  the status ``expect_status`` (default 200). Another status is a failed
  request with that status recorded.
* ``tcp``: send ``payload``; ``reply="echo"``: read until ``len(payload)``
  bytes (or EOF/timeout), success when they equal the payload;
  ``reply="any"``: the first non-empty read is the reply. ``keepalive``
  reuses persistent connections instead of one connection per request.
* ``udp``: send ``payload`` as one datagram from a fresh socket; the first
  datagram back is the reply (``echo``: equal to the payload; ``any``: not
  empty).

Outcomes of a tcp or udp request (the ``status`` column of
:mod:`mec.measure.probelog`): ``ok`` (a reply that counts), ``mismatch`` (a
reply arrived but does not count: echo differs, short echo before EOF, empty
datagram), or the failures shared with HTTP: ``timeout``, ``refused``,
``reset`` (closed or reset before any reply byte), ``error``.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

PROTOCOLS = ("http", "tcp", "udp")
REPLY_RULES = ("any", "echo")

#: Status of a tcp/udp request whose reply counts.
OK = "ok"
#: Status of a tcp/udp request whose reply arrived but does not count.
MISMATCH = "mismatch"


@dataclass(frozen=True)
class Target:
    """One service endpoint for the probe (see the module docstring).

    Raises ValueError on a combination that means nothing (keepalive for http
    or udp, a payload or reply rule for http, an echo of nothing...).
    """

    protocol: str
    host: str
    port: int
    method: str = "GET"
    path: str = "/"
    expect_status: int = 200
    payload: bytes = b""
    reply: str = "any"
    keepalive: bool = False

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)}, not {self.protocol!r}")
        if not self.host:
            raise ValueError("a target needs a host")
        if not isinstance(self.port, int) or not 0 < self.port < 65536:
            raise ValueError(f"port must be 1-65535, not {self.port!r}")
        if self.protocol == "http":
            self._check_http()
        else:
            self._check_stream()

    def _check_http(self) -> None:
        if self.payload or self.reply != "any":
            raise ValueError("payload and reply rules are for tcp and udp targets, not http")
        if self.keepalive:
            raise ValueError("keepalive is for tcp targets only (http uses one connection per request)")
        if not self.method.isalpha() or not self.method.isupper():
            raise ValueError(f"HTTP method must be an upper-case word, not {self.method!r}")
        if not self.path.startswith("/") or any(c in self.path for c in " \r\n"):
            raise ValueError(f"HTTP path must start with / and hold no spaces, not {self.path!r}")
        if not 100 <= self.expect_status <= 599:
            raise ValueError(f"expected HTTP status must be 100-599, not {self.expect_status}")

    def _check_stream(self) -> None:
        if self.method != "GET" or self.path != "/" or self.expect_status != 200:
            raise ValueError(f"method, path and expected status are for http targets, not {self.protocol}")
        if self.reply not in REPLY_RULES:
            raise ValueError(f"reply must be one of {', '.join(REPLY_RULES)}, not {self.reply!r}")
        if not isinstance(self.payload, bytes) or not self.payload:
            raise ValueError(f"a {self.protocol} target needs a non-empty payload (bytes)")
        if self.keepalive and self.protocol != "tcp":
            raise ValueError("keepalive is for tcp targets only (udp uses a fresh socket per request)")

    @classmethod
    def from_url(cls, url: str, method: str = "GET", expect_status: int = 200) -> "Target":
        """An http target from ``http://HOST[:PORT]/PATH[?QUERY]`` (port 80 by default)."""
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"only http://HOST[:PORT]/PATH URLs are supported, not {url!r}")
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return cls("http", parts.hostname, parts.port or 80, method=method, path=path,
                   expect_status=expect_status)

    @classmethod
    def from_address(cls, protocol: str, address: str, **kw) -> "Target":
        """A tcp or udp target from ``HOST:PORT`` (``[V6ADDR]:PORT`` for IPv6)."""
        host, sep, port = address.rpartition(":")
        host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
        if not sep or not host or not port.isdigit():
            raise ValueError(f"{protocol} address must be HOST:PORT, not {address!r}")
        return cls(protocol, host, int(port), **kw)

    @property
    def netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def url(self) -> str:
        """The target as one line: ``http://h:p/path``, ``tcp://h:p`` or ``udp://h:p``."""
        return f"http://{self.netloc}{self.path}" if self.protocol == "http" \
            else f"{self.protocol}://{self.netloc}"

    def request(self) -> bytes:
        """The bytes sent for one request."""
        if self.protocol != "http":
            return self.payload
        return (f"{self.method} {self.path} HTTP/1.0\r\nHost: {self.netloc}\r\n"
                "User-Agent: mec-probe\r\nConnection: close\r\n\r\n").encode()

    def judge(self, data: bytes) -> str:
        """Status of a tcp/udp reply: ``ok`` or ``mismatch`` (an empty one never gets here)."""
        if self.reply == "echo":
            return OK if data == self.payload else MISMATCH
        return OK if data else MISMATCH

    def to_argv(self) -> list[str]:
        """Command-line flags of ``python -m mec.measure.probe`` that give this target."""
        if self.protocol == "http":
            return ["--url", self.url, "--method", self.method, "--expect-status", str(self.expect_status)]
        argv = [f"--{self.protocol}", self.netloc, "--payload-hex", self.payload.hex(), "--reply", self.reply]
        return argv + (["--keepalive"] if self.keepalive else [])
