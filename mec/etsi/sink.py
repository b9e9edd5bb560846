"""A notification receiver on the host: records every POSTed JSON body with its arrival time.

For tests and measurements: ``with NotificationSink() as sink:`` listens on
``127.0.0.1`` (a free port), answers 204 (or ``status``; ``delay_s`` before answering),
and keeps ``(path, body, t_received)`` per notification (monotonic clock).
``sink.wait(pred, timeout)`` returns the first received body that PRED accepts.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable


@dataclass(frozen=True)
class Received:
    path: str
    body: Any
    t: float  # monotonic time it was read


class NotificationSink:
    def __init__(self, status: int = 204, delay_s: float = 0.0) -> None:
        self.status = status
        self.delay_s = delay_s
        self.received: list[Received] = []
        self._cond = threading.Condition()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                t = time.monotonic()
                try:
                    body = json.loads(raw or b"null")
                except ValueError:
                    body = raw.decode(errors="replace")
                with sink._cond:
                    sink.received.append(Received(self.path, body, t))
                    sink._cond.notify_all()
                if sink.delay_s:
                    time.sleep(sink.delay_s)
                self.send_response(sink.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="etsi-sink",
                                        daemon=True)

    def wait(self, pred: Callable[[Any], bool], timeout: float = 10.0) -> Received:
        """The first notification whose body PRED accepts (TimeoutError if none comes)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for r in self.received:
                    if pred(r.body):
                        return r
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no matching notification within {timeout:g} s "
                                       f"(received {len(self.received)})")
                self._cond.wait(left)

    def __enter__(self) -> "NotificationSink":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
