"""The user probe: a UE-side client sending requests to a service at a fixed rate.

It measures what a user of a stateless service experiences during a move,
a migration or a replica switch. It runs on a UE (inside the Mininet host's
network namespace)::

    python -m mec.measure.probe --url http://10.0.0.100:8080/ --rate 200 --duration 20 \\
        --timeout 1.0 --out /tmp/ue1.csv
    python -m mec.measure.probe --tcp 10.0.0.100:7 --payload ping --reply echo --out /tmp/ue1.csv
    python -m mec.measure.probe --udp 10.0.0.100:7 --payload-hex 00ff --reply any --out /tmp/ue1.csv

and prints ``READY {...json...}`` on stdout once it is set up (wait for that
line instead of sleeping), then ``DONE {...json...}`` with a summary at the end.

* **What is asked** (:class:`mec.measure.target.Target`): HTTP (``METHOD
  PATH``, success = the expected status, 200 by default), TCP request/response
  (send the payload, the reply is any bytes or an echo of the payload) or UDP
  request/response (one datagram each way).
* **Open loop**: request *i* is sent at ``t0 + i/rate`` whatever happened to
  earlier requests; slow replies and timeouts never delay the schedule
  (every request is its own asyncio task).
* **Stateless client**: one short TCP connection per request (HTTP/1.0,
  ``Connection: close``; tcp the same), a fresh UDP socket per request, so a
  flow redirection takes effect on the next request, as for a real stateless
  micro-service client. ``--keepalive`` (tcp) reuses a persistent connection
  instead, opening another only while it is busy (see
  :mod:`mec.measure.exchange`): the schedule stays open loop, and a broken
  connection fails its request and is reopened by the next one.
* **Per request** (see :mod:`mec.measure.probelog`): send and reply times
  (``time.monotonic()``), status, latency, the local port of its connection
  or socket (``sport``), whether it succeeded, and which replica answered. For
  http by default the first whitespace-separated token of the stripped body,
  and the part after ``=`` if that token is ``key=value`` (``c2-svc\\n`` and
  ``instance=c2-svc`` both give ``c2-svc``); ``--replica-regex`` changes that,
  and is the only way for tcp and udp (matched against the reply decoded as
  UTF-8; without it their replica is empty).
* **Stopping**: SIGTERM or SIGINT stops sending; requests in flight finish
  (bounded by the timeout) and the CSV is written. A second signal abandons
  them (``cancelled``). Rows are appended while running, so even a killed
  probe leaves its data; a clean end rewrites the file sorted by seq.
* ``--start-at T`` starts the schedule at monotonic time T (CLOCK_MONOTONIC is
  shared by all namespaces), to line several probes or an event up.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import os
import re
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from mec.core.proc import PipeReader
from mec.core.stats import percentile
from mec.core.watchdog import process_component
from mec.measure.exchange import Attempt, KeepAlivePool, PortCycle, tcp_request, udp_request
from mec.measure.probelog import CANCELLED, FAILURE_STATUSES, ProbeRecord, StreamingWriter
from mec.measure.target import OK, Target

log = logging.getLogger(__name__)

ReplicaParser = Callable[[bytes], "str | None"]

__all__ = ["Probe", "ProbeProcess", "ProbeResult", "Target", "first_token", "regex_parser"]


def first_token(body: bytes) -> str | None:
    """Default replica parser: first token of the stripped body (value of ``key=value``)."""
    text = body.decode("utf-8", errors="replace").strip()
    if not text:
        return None
    token = text.split()[0]
    if "=" in token:
        value = token.split("=", 1)[1]
        return value or token
    return token


def regex_parser(pattern: str) -> ReplicaParser:
    """Replica parser taking group 1 (or the whole match) of ``pattern`` in the body."""
    rx = re.compile(pattern)

    def parse(body: bytes) -> str | None:
        m = rx.search(body.decode("utf-8", errors="replace"))
        if not m:
            return None
        return m.group(1) if rx.groups else m.group(0)

    return parse


@dataclass
class ProbeResult:
    """What a probe run produced, with how well it kept its schedule."""

    records: list[ProbeRecord]
    rate: float
    t0: float
    #: Requests per second actually sent: (n - 1) / (last send - first send).
    achieved_rate: float
    #: Lateness of sends against the schedule (ms): median, 99th percentile, max.
    lag_p50_ms: float
    lag_p99_ms: float
    lag_max_ms: float
    stopped_early: bool = False

    def summary(self) -> dict:
        ok = sum(r.ok for r in self.records)
        failed = sum(r.failed for r in self.records)
        return {
            "sent": len(self.records), "ok": ok, "failed": failed, "rate": self.rate,
            "achieved_rate": round(self.achieved_rate, 2), "lag_p50_ms": round(self.lag_p50_ms, 3),
            "lag_p99_ms": round(self.lag_p99_ms, 3), "lag_max_ms": round(self.lag_max_ms, 3),
            "stopped_early": self.stopped_early,
        }


def _lag(lags: Sequence[float], p: float) -> float:
    """P-th percentile of send lateness, NaN when nothing was sent."""
    return percentile(lags, p) if lags else math.nan


@dataclass
class Probe:
    """Fixed-rate, open-loop prober of one target (see the module docstring).

    Give either ``url`` (an http URL, as :meth:`Target.from_url`) or
    ``target``. ``replica_parser`` None means the default: :func:`first_token`
    of the body for http, none for tcp and udp. ``duration`` None runs until
    :meth:`stop`. ``on_record`` is called (in the probe's event loop) with each
    finished record. Use :meth:`run` inside an event loop, :meth:`run_sync` to
    block, or :meth:`start_thread` to run in the background; :meth:`stop` may
    be called from any thread.
    """

    url: str | None = None
    rate: float = 200.0
    duration: float | None = 20.0
    timeout: float = 1.0
    replica_parser: ReplicaParser | None = None
    start_at: float | None = None
    on_record: Callable[[ProbeRecord], None] | None = None
    target: Target | None = None
    records: list[ProbeRecord] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        if self.rate <= 0:
            raise ValueError("rate must be > 0")
        if self.timeout <= 0:
            raise ValueError("timeout must be > 0")
        if (self.url is None) == (self.target is None):
            raise ValueError("give a probe either a url or a target")
        if self.target is None:
            self.target = Target.from_url(self.url)
        self.url = self.target.url
        self.host, self.port = self.target.host, self.target.port
        if self.replica_parser is None and self.target.protocol == "http":
            self.replica_parser = first_token
        self._request = self.target.request()
        self._pool: KeepAlivePool | None = None
        self._ports = PortCycle()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_requested = False
        self._abort_requested = False
        self._ready = threading.Event()
        self._tasks: set[asyncio.Task] = set()
        self._lags: list[float] = []
        self.t0: float | None = None
        self.result: ProbeResult | None = None

    # -- control -----------------------------------------------------------
    def stop(self, abort: bool = False) -> None:
        """Stop sending (thread-safe). ``abort`` also abandons requests in flight."""
        self._stop_requested = True
        if abort:
            self._abort_requested = True
            loop = self._loop
            if loop is not None and not loop.is_closed():
                loop.call_soon_threadsafe(self._cancel_inflight)

    def _cancel_inflight(self) -> None:
        for task in list(self._tasks):
            task.cancel()

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Block until the schedule is set up (t0 known); for :meth:`start_thread` users."""
        return self._ready.wait(timeout)

    # -- one request -------------------------------------------------------
    def _reply_size(self) -> int | None:
        """Bytes that complete a TCP reply: EOF for http, the payload's length for an echo, else any."""
        t = self.target
        if t.protocol == "http":
            return None
        return len(t.payload) if t.reply == "echo" else 1

    async def _exchange(self, attempt: Attempt) -> bytes:
        t = self.target
        if t.protocol == "udp":
            return await udp_request(self._family, self._addr, self._request, attempt, self._ports)
        if self._pool is not None:
            return await self._pool.request(self._request, self._reply_size(), attempt,
                                            keep=lambda data: t.judge(data) == OK)
        return await tcp_request(self._family, self._addr, self._request, self._reply_size(), attempt,
                                 self._ports)

    async def _one(self, seq: int, t_sched: float) -> None:
        t_send = time.monotonic()
        self._lags.append(t_send - t_sched)
        status, t_reply, replica, ok = "error", None, None, False
        attempt = Attempt()
        try:
            data = await asyncio.wait_for(self._exchange(attempt), self.timeout)
            t_reply = time.monotonic()
            status, replica, ok = self._parse(data)
        except asyncio.TimeoutError:
            status = "timeout"
        except ConnectionRefusedError:
            status = "refused"
        except (ConnectionResetError, BrokenPipeError, ConnectionAbortedError):
            status = "reset"
        except asyncio.CancelledError:
            status = CANCELLED
        except OSError as exc:
            log.debug("request %d: %s", seq, exc)
            status = "error"
        if t_reply is None or status in FAILURE_STATUSES:
            t_reply_rec, latency = None, None  # no reply arrived
        else:
            t_reply_rec, latency = t_reply, (t_reply - t_send) * 1000.0
        rec = ProbeRecord(seq, t_send, t_reply_rec, status, latency, replica, attempt.sport, ok)
        self.records.append(rec)
        if self.on_record is not None:
            try:
                self.on_record(rec)
            except Exception:
                log.exception("probe on_record callback failed")

    def _parse(self, data: bytes) -> tuple[str, str | None, bool]:
        """Status, replica and success of a reply (see :mod:`mec.measure.target`)."""
        if self.target.protocol == "http":
            return self._parse_http(data)
        if not data and self.target.protocol == "tcp":
            return "reset", None, False  # closed without a reply
        status = self.target.judge(data)
        return status, self._replica(data), status == OK

    def _parse_http(self, data: bytes) -> tuple[str, str | None, bool]:
        if not data:
            return "reset", None, False  # closed without a reply
        head, sep, body = data.partition(b"\r\n\r\n")
        if not sep:
            head, sep, body = data.partition(b"\n\n")
        parts = head.split(b"\r\n", 1)[0].split()
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
            return "error", None, False
        return parts[1].decode(), self._replica(body), int(parts[1]) == self.target.expect_status

    def _replica(self, reply: bytes) -> str | None:
        if self.replica_parser is None:
            return None
        try:
            return self.replica_parser(reply)
        except Exception:
            log.exception("replica parser failed")
            return None

    # -- the schedule ------------------------------------------------------
    async def run(self, ready: Callable[["Probe"], None] | None = None) -> ProbeResult:
        """Run the schedule to its end (or :meth:`stop`); return the result.

        ``ready(probe)`` is called once the schedule is fixed (``probe.t0``),
        before the first request.
        """
        self._loop = asyncio.get_running_loop()
        kind = socket.SOCK_DGRAM if self.target.protocol == "udp" else socket.SOCK_STREAM
        infos = await self._loop.getaddrinfo(self.host, self.port, type=kind)
        self._family, self._addr = infos[0][0], infos[0][4]  # resolve once, not per request
        if self.target.keepalive:
            self._pool = KeepAlivePool(self._family, self._addr, self._ports)
        try:
            return await self._schedule(ready)
        finally:
            if self._pool is not None:
                self._pool.close()

    async def _schedule(self, ready: Callable[["Probe"], None] | None) -> ProbeResult:
        now = time.monotonic()
        self.t0 = self.start_at if self.start_at is not None else now + 0.05
        if self.t0 < now:
            log.warning("start time %.3f is %.3f s in the past: overdue requests are sent at once",
                        self.t0, now - self.t0)
        total = math.inf if self.duration is None else max(0, round(self.duration * self.rate))
        self._ready.set()
        if ready is not None:
            ready(self)
        period = 1.0 / self.rate
        i = 0
        while i < total and not self._stop_requested:
            target = self.t0 + i * period
            delay = target - time.monotonic()
            while delay > 0 and not self._stop_requested:
                await asyncio.sleep(min(delay, 0.1))  # chunks: a stop is seen quickly
                delay = target - time.monotonic()
            if self._stop_requested:
                break
            task = asyncio.create_task(self._one(i, target))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            i += 1
            if i % 64 == 0:
                await asyncio.sleep(0)  # let replies be read even when behind schedule
        if self._abort_requested:
            self._cancel_inflight()
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        self.records.sort(key=lambda r: r.seq)
        self.result = self._result(stopped_early=i < total)
        return self.result

    def _result(self, stopped_early: bool) -> ProbeResult:
        sends = sorted(r.t_send for r in self.records)
        achieved = (len(sends) - 1) / (sends[-1] - sends[0]) if len(sends) > 1 and sends[-1] > sends[0] else 0.0
        lags = sorted(x * 1000.0 for x in self._lags)
        return ProbeResult(
            records=list(self.records), rate=self.rate, t0=self.t0 or 0.0, achieved_rate=achieved,
            lag_p50_ms=_lag(lags, 50), lag_p99_ms=_lag(lags, 99),
            lag_max_ms=lags[-1] if lags else math.nan, stopped_early=stopped_early,
        )

    def run_sync(self) -> ProbeResult:
        """Run in a new event loop in this thread."""
        return asyncio.run(self.run())

    def start_thread(self) -> threading.Thread:
        """Run in a background daemon thread; join it, then read :attr:`result`."""
        th = threading.Thread(target=self.run_sync, name="mec-probe", daemon=True)
        th.start()
        return th


# --------------------------------------------------------------------------
# The probe as a process on a UE
# --------------------------------------------------------------------------
class ProbeProcess:
    """``python -m mec.measure.probe`` started inside a Mininet host (a UE), as a real client would run.

    ``start()`` returns once the probe printed READY; ``stop()`` signals it,
    waits for DONE and returns the records. Given a WATCHDOG (a
    `mec.core.watchdog.Watchdog`, e.g. the testbed's), the probe is watched from
    READY until ``stop()``: a probe that dies meanwhile is a death of the run.
    URL is an http URL (as today's scenarios give it) or a
    :class:`~mec.measure.target.Target` (any protocol); REPLICA_REGEX is the
    probe's ``--replica-regex``.
    """

    def __init__(self, host, url: "str | Target", out: Path, rate: float = 200.0, duration: float = 0.0,
                 timeout: float = 1.0, watchdog: Any = None, replica_regex: str | None = None):
        self.target = url if isinstance(url, Target) else Target.from_url(url)
        self.host, self.url, self.out = host, self.target.url, Path(out)
        self.replica_regex = replica_regex
        self.rate, self.duration, self.timeout = rate, duration, timeout
        self.watchdog = watchdog
        self.proc = None
        self.summary: dict = {}

    @property
    def watch_name(self) -> str:
        return f"probe on {self.host.name}"

    def start(self, ready_timeout: float = 20.0) -> "ProbeProcess":
        import subprocess

        argv = [sys.executable, "-m", "mec.measure.probe", *self.target.to_argv(), "--rate", str(self.rate),
                "--duration", str(self.duration), "--timeout", str(self.timeout),
                "--out", str(self.out)]
        if self.replica_regex is not None:
            argv += ["--replica-regex", self.replica_regex]
        self.proc = self.host.popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self._record = self._write_record()
        # Both pipes are drained by threads: a chatty child never blocks on a full pipe,
        # and the wait for READY has a deadline even when the child says nothing.
        self._stdout = PipeReader(self.proc.stdout, f"stdout of the probe on {self.host.name}")
        self._stderr = PipeReader(self.proc.stderr, f"stderr of the probe on {self.host.name}")
        deadline = time.monotonic() + ready_timeout
        while (left := deadline - time.monotonic()) > 0:
            line = self._stdout.next_line(left)
            if line and line.startswith("READY"):
                if self.watchdog is not None:
                    self.watchdog.watch(process_component(self.watch_name, "probe",
                                                          lambda: self.proc, log_file=self.out))
                return self
            if line == "":
                self._fail_start(f"it exited ({self.proc.wait(timeout=5)}) before READY")
        self._fail_start(f"no READY within {ready_timeout:g} s")

    def _fail_start(self, why: str) -> None:
        self.proc.kill()
        self.proc.wait(timeout=5)
        self._record.unlink(missing_ok=True)
        self._stderr.rest(timeout=2)  # what the child said before it died
        raise RuntimeError(f"probe on {self.host.name} did not start: {why}; "
                           f"stderr: {self._stderr.tail()[-800:] or '(empty)'}")

    def _write_record(self) -> Path:
        """Record the probe for `mec clean` (a killed scenario would leave it sending)."""
        from mec.core.config import run_dir
        from mec.core.proc import PidRecord, write_record

        path = run_dir() / f"probe-{self.host.name}-{self.proc.pid}.pid"
        write_record(path, PidRecord(f"probe on {self.host.name}", self.proc.pid,
                                     str(self.out), "probe"))
        return path

    def stop(self, timeout: float = 30.0) -> list[ProbeRecord]:
        """Stop sending, let requests in flight finish, return every record."""
        import subprocess

        from mec.measure.probelog import read_csv

        if self.watchdog is not None:
            self.watchdog.unwatch(self.watch_name)  # it ends on purpose from here
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
            raise TimeoutError(f"probe on {self.host.name} did not stop within {timeout:g} s of "
                               f"SIGTERM (killed); stderr: {self._stderr.tail()[-800:]}") from None
        finally:
            self._record.unlink(missing_ok=True)
        for line in self._stdout.rest():
            if line.startswith("DONE "):
                self.summary = json.loads(line[5:])
        return read_csv(self.out)

    def __enter__(self) -> "ProbeProcess":
        return self.start()

    def __exit__(self, *exc) -> None:
        if self.watchdog is not None:
            self.watchdog.unwatch(self.watch_name)
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        if getattr(self, "_record", None) is not None:
            self._record.unlink(missing_ok=True)


# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m mec.measure.probe", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    return p


def add_arguments(p: argparse.ArgumentParser) -> None:
    what = p.add_argument_group("target (exactly one of --url, --tcp, --udp)")
    what.add_argument("--url", default=None, help="http service URL, e.g. http://10.0.0.100:8080/")
    what.add_argument("--tcp", default=None, metavar="HOST:PORT", help="tcp request/response service")
    what.add_argument("--udp", default=None, metavar="HOST:PORT", help="udp request/response service")
    what.add_argument("--method", default=None, help="http: request method (default GET)")
    what.add_argument("--expect-status", type=int, default=None,
                      help="http: the status that counts as a success (default 200)")
    what.add_argument("--payload", default=None, help="tcp/udp: request payload, as UTF-8 text")
    what.add_argument("--payload-hex", default=None, help="tcp/udp: request payload, as hex digits")
    what.add_argument("--reply", choices=("any", "echo"), default=None,
                      help="tcp/udp: what counts as a reply: any non-empty reply (default) or an echo "
                      "of the payload")
    what.add_argument("--keepalive", action="store_true",
                      help="tcp: reuse a persistent connection instead of one per request")
    p.add_argument("--rate", type=float, default=200.0, help="requests per second (default 200)")
    p.add_argument("--duration", type=float, default=20.0,
                   help="seconds of schedule (default 20; 0 = until SIGTERM/SIGINT)")
    p.add_argument("--timeout", type=float, default=1.0, help="per-request timeout in s (default 1.0)")
    p.add_argument("--out", required=True, type=Path, help="CSV file to write")
    p.add_argument("--start-at", type=float, default=None,
                   help="start the schedule at this time.monotonic() value")
    p.add_argument("--replica-regex", default=None,
                   help="regex finding the replica name in the reply (group 1 if any); http "
                   "default: the body's first token; tcp/udp: none without it")


class UsageError(ValueError):
    """A bad combination of command-line flags (exit status 2)."""


def target_of(args: argparse.Namespace) -> Target:
    """The :class:`Target` the flags describe; UsageError on a bad combination."""
    given = [name for name in ("url", "tcp", "udp") if getattr(args, name)]
    if len(given) != 1:
        raise UsageError("give exactly one of --url, --tcp HOST:PORT, --udp HOST:PORT"
                         + (f" (got {', '.join('--' + g for g in given)})" if given else ""))
    if given == ["url"]:
        stray = [flag for flag, value in (("--payload", args.payload), ("--payload-hex", args.payload_hex),
                                          ("--reply", args.reply), ("--keepalive", args.keepalive)) if value]
        if stray:
            raise UsageError(f"{', '.join(stray)} are for --tcp/--udp, not --url")
        return Target.from_url(args.url, method=args.method or "GET",
                               expect_status=200 if args.expect_status is None else args.expect_status)
    proto = given[0]
    if args.method is not None or args.expect_status is not None:
        raise UsageError(f"--method and --expect-status are for --url, not --{proto}")
    if (args.payload is None) == (args.payload_hex is None):
        raise UsageError(f"--{proto} needs exactly one of --payload TEXT or --payload-hex HEX")
    if args.keepalive and proto != "tcp":
        raise UsageError("--keepalive is for --tcp only (udp uses a fresh socket per request)")
    try:
        payload = args.payload.encode() if args.payload is not None else bytes.fromhex(args.payload_hex)
    except ValueError:
        raise UsageError(f"--payload-hex is not hex digits: {args.payload_hex!r}") from None
    return Target.from_address(proto, getattr(args, proto), payload=payload, reply=args.reply or "any",
                               keepalive=args.keepalive)


def _usage_error(why: str) -> int:
    print(f"mec probe: error: {why}", file=sys.stderr)
    return 2


def run_cli(args: argparse.Namespace) -> int:
    try:
        target = target_of(args)
        parser = regex_parser(args.replica_regex) if args.replica_regex else None
    except (ValueError, re.error) as exc:
        return _usage_error(str(exc))
    writer = StreamingWriter(args.out)
    last_flush = [time.monotonic()]

    def on_record(rec: ProbeRecord) -> None:
        writer.write(rec)
        now = time.monotonic()
        if now - last_flush[0] >= 0.5:
            writer.flush()
            last_flush[0] = now

    probe = Probe(target=target, rate=args.rate, duration=args.duration or None, timeout=args.timeout,
                  replica_parser=parser, start_at=args.start_at, on_record=on_record)
    signals = [0]

    def on_signal() -> None:
        signals[0] += 1
        probe.stop(abort=signals[0] > 1)

    def ready(p: Probe) -> None:
        print("READY " + json.dumps({"pid": os.getpid(), "url": p.url, "rate": p.rate, "t0": p.t0,
                                     "now": time.monotonic(), "out": str(args.out)}), flush=True)

    async def main() -> ProbeResult:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, on_signal)
        return await probe.run(ready=ready)

    try:
        result = asyncio.run(main())
    finally:
        writer.finish(probe.records)
    print("DONE " + json.dumps({**result.summary(), "out": str(args.out)}), flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    return run_cli(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
