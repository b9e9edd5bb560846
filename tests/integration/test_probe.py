"""The user probe against real loopback HTTP servers (no root needed: 127.0.0.1 only).

The servers bind to ports 18080-18099 on 127.0.0.1 and are started and
stopped by the tests themselves.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from mec.measure import metrics
from mec.measure.probe import Probe, first_token, regex_parser
from mec.measure.probelog import read_csv

REPO = Path(__file__).resolve().parents[2]
PORTS = range(18080, 18100)


class SwitchingServer(ThreadingHTTPServer):
    """Answers "A" until ``silent_from``, holds requests without reply until
    ``silent_until`` (+1.5 s, past the probe's timeout), then answers "B".
    Times are time.monotonic(); None = never."""

    daemon_threads = True
    request_queue_size = 256
    allow_reuse_address = True

    def __init__(self, port: int) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.silent_from: float | None = None
        self.silent_until: float | None = None
        self.count = 0
        self.lock = threading.Lock()
        self.seen = threading.Condition(self.lock)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def do_GET(self) -> None:  # noqa: N802
        srv: SwitchingServer = self.server  # type: ignore[assignment]
        now = time.monotonic()
        with srv.seen:
            srv.count += 1
            srv.seen.notify_all()
        if srv.silent_from is not None and srv.silent_from <= now < srv.silent_until:
            time.sleep(srv.silent_until - now + 1.5)  # blackhole: no reply before the probe gives up
            return
        body = b"B\n" if srv.silent_from is not None and now >= srv.silent_from else b"A\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


def _start_server(factory):
    last = None
    for port in PORTS:
        try:
            srv = factory(port)
        except OSError as exc:
            last = exc
            continue
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        return srv, port
    raise RuntimeError(f"no free port in {PORTS}: {last}")


@pytest.fixture
def server():
    srv, port = _start_server(SwitchingServer)
    try:
        yield srv, port
    finally:
        srv.shutdown()
        srv.server_close()


def _probe_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "mec.measure.probe", *args]


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO)}


def _read_ready(proc: subprocess.Popen) -> dict:
    line = proc.stdout.readline()
    assert line.startswith("READY "), f"probe did not report ready: {line!r} {proc.stderr.read()}"
    return json.loads(line.split(" ", 1)[1])


def test_probe_cli_finds_the_gap_and_the_replica_change(server, tmp_path):
    srv, port = server
    out = tmp_path / "probe.csv"
    start = time.monotonic() + 0.5
    srv.silent_from, srv.silent_until = start + 0.8, start + 1.1  # 0.3 s without replies
    proc = subprocess.Popen(
        _probe_cmd("--url", f"http://127.0.0.1:{port}/", "--rate", "200", "--duration", "2",
                   "--timeout", "1.0", "--out", str(out), "--start-at", repr(start)),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(), cwd=REPO,
    )
    try:
        ready = _read_ready(proc)
        assert ready["t0"] == pytest.approx(start) and ready["now"] < start
        stdout, stderr = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr
    done = json.loads(stdout.strip().splitlines()[-1].split(" ", 1)[1])
    records = read_csv(out)

    assert len(records) == 400 == done["sent"]
    assert [r.seq for r in records] == list(range(400))
    assert records[0].t_send >= start
    assert metrics.send_rate(records) == pytest.approx(200, rel=0.01)
    assert done["lag_p99_ms"] < 10  # the open-loop schedule was kept

    gap = metrics.longest_gap(records)
    assert 0.3 <= gap.duration_s <= 0.3 + 0.03
    assert gap.start == pytest.approx(srv.silent_from, abs=0.02)
    assert metrics.interruption_s(records, at=srv.silent_from + 0.1) == gap.duration_s
    # requests sent into the silence time out (1.0 s); everything else succeeds
    assert 56 <= metrics.failed(records) <= 64
    assert {r.status for r in records if r.failed} == {"timeout"}

    changes = metrics.replica_changes(records)
    assert [(a, b) for _, a, b in changes] == [("A", "B")]
    assert changes[0][0] == pytest.approx(srv.silent_until, abs=0.02)
    assert set(metrics.served_by_after(records, srv.silent_until)) == {"B"}
    assert metrics.latency_percentiles(records)["p50"] < 20


def test_probe_stops_cleanly_on_sigterm_and_flushes_the_csv(server, tmp_path):
    srv, port = server
    out = tmp_path / "probe.csv"
    proc = subprocess.Popen(
        _probe_cmd("--url", f"http://127.0.0.1:{port}/", "--rate", "200", "--duration", "0",
                   "--out", str(out)),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(), cwd=REPO,
    )
    try:
        _read_ready(proc)
        with srv.seen:
            assert srv.seen.wait_for(lambda: srv.count >= 100, timeout=10)
        t_kill = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=10)
        t_exit = time.monotonic() - t_kill
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr
    assert t_exit < 1.5
    done = json.loads(stdout.strip().splitlines()[-1].split(" ", 1)[1])
    assert done["stopped_early"] is True
    records = read_csv(out)
    assert len(records) == done["sent"] >= 100
    assert [r.seq for r in records] == list(range(len(records)))
    assert all(r.ok and r.replica == "A" for r in records)


def test_probe_api_reports_refused_and_reset(tmp_path):
    # a port with no listener: connection refused
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    res = Probe(f"http://127.0.0.1:{free}/", rate=100, duration=0.1, timeout=0.5).run_sync()
    assert {r.status for r in res.records} == {"refused"} and len(res.records) == 10

    # a listener that resets every connection (SO_LINGER 0)
    lsock = socket.socket()
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    port = next(p for p in PORTS if _try_bind(lsock, p))
    lsock.listen(64)
    stop = threading.Event()

    def rst_loop():
        lsock.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = lsock.accept()
            except OSError:
                continue
            conn.recv(1024)
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()

    th = threading.Thread(target=rst_loop, daemon=True)
    th.start()
    try:
        res = Probe(f"http://127.0.0.1:{port}/", rate=100, duration=0.1, timeout=0.5).run_sync()
    finally:
        stop.set()
        th.join()
        lsock.close()
    assert {r.status for r in res.records} == {"reset"} and len(res.records) == 10


def _try_bind(sock: socket.socket, port: int) -> bool:
    try:
        sock.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False


def test_replica_parsers():
    assert first_token(b"c2-svc\n") == "c2-svc"
    assert first_token(b"  instance=c2-svc extra\n") == "c2-svc"
    assert first_token(b"") is None
    assert regex_parser(r"served by (\S+)")(b"hello, served by c3\n") == "c3"
    assert regex_parser(r"c\d")(b"x c7 y") == "c7"
    with pytest.raises(ValueError, match="http://"):
        Probe("https://example.invalid/")
