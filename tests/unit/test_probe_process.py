"""ProbeProcess start-up and stop have deadlines and drain the child's output (issue 11, item 12).

The host is a stand-in whose ``popen`` starts a given child instead of the probe, so
each failure shape (silent, dead, chatty) is produced for real.
"""

import subprocess
import sys
import threading
import time

import pytest

from mec.core import config
from mec.measure.probe import ProbeProcess


class Host:
    """What ProbeProcess needs of a Mininet host: a name and popen."""

    name = "mxb-u1"

    def __init__(self, script: str):
        self.script = script

    def popen(self, argv, **kw):
        return subprocess.Popen([sys.executable, "-c", self.script], **kw)


@pytest.fixture(autouse=True)
def run_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "RUN_DIR", tmp_path)


def start_within(probe: ProbeProcess, ready_timeout: float, limit: float):
    """probe.start() in a thread: (exception or None, seconds); fails the test if it blocks."""
    box = {}

    def go():
        try:
            probe.start(ready_timeout=ready_timeout)
        except Exception as exc:  # noqa: BLE001 - handed to the test
            box["exc"] = exc

    t0 = time.monotonic()
    th = threading.Thread(target=go, daemon=True)
    th.start()
    th.join(limit)
    if th.is_alive() and probe.proc is not None:
        probe.proc.kill()  # unblock it, then fail
        pytest.fail(f"start() still blocked after {limit} s")
    return box.get("exc"), time.monotonic() - t0


def test_a_child_that_never_says_ready_fails_within_its_deadline(tmp_path):
    probe = ProbeProcess(Host("import sys, time\nprint('booting', file=sys.stderr, flush=True)\n"
                              "time.sleep(60)"), "http://x/", tmp_path / "p.csv")
    exc, took = start_within(probe, ready_timeout=1.0, limit=10)
    assert isinstance(exc, RuntimeError) and took < 5
    assert "probe on mxb-u1 did not start: no READY within 1 s" in str(exc)
    assert "booting" in str(exc)
    assert probe.proc.poll() is not None  # killed, not left sending
    assert not list(tmp_path.glob("probe-*.pid"))


def test_a_child_that_dies_is_reported_with_its_stderr(tmp_path):
    probe = ProbeProcess(Host("import sys\nsys.exit('cannot resolve host')"), "http://x/", tmp_path / "p.csv")
    exc, took = start_within(probe, ready_timeout=20.0, limit=10)
    assert took < 5 and "exited (1) before READY" in str(exc) and "cannot resolve host" in str(exc)


def test_a_chatty_child_does_not_block_and_stops_with_its_summary(tmp_path):
    chatty = ("import signal, sys, time\n"
              "signal.signal(signal.SIGTERM, lambda *a: (print('DONE {\"sent\": 3}', flush=True), sys.exit(0)))\n"
              "sys.stderr.write('warning\\n' * 200_000); sys.stderr.flush()\n"
              "print('READY {}', flush=True)\n"
              "while True: sys.stderr.write('more\\n' * 1000); time.sleep(0.01)")
    (tmp_path / "p.csv").write_text("")
    probe = ProbeProcess(Host(chatty), "http://x/", tmp_path / "p.csv")
    exc, took = start_within(probe, ready_timeout=20.0, limit=15)
    assert exc is None, exc
    time.sleep(0.5)  # keeps writing stderr meanwhile: it must not block on a full pipe
    probe.stop(timeout=10)
    assert probe.summary == {"sent": 3}
