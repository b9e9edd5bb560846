"""Dead components of a running testbed are seen within a second and named (root).

The controller is restarted and its recovery timed (switches back, steering
state reconciled); a delay line's death cannot be recovered and makes the run
invalid; `mec net up` says at once what died.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from mec.core import config
from mec.core.proc import read_record
from mec.testbed import Testbed
from topologies.loader import load

pytestmark = pytest.mark.integration
TOPO = Path(__file__).resolve().parents[2] / "topologies" / "line2.yaml"


def _need_root():
    if os.geteuid() != 0:
        pytest.skip("needs root")


def _wait(cond, timeout: float) -> float:
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"not within {timeout} s")
        time.sleep(0.01)
    return time.monotonic() - t0


# First, before the module's testbed exists (both would use this prefix's names).
def test_mec_net_up_says_at_once_which_component_died():
    _need_root()
    argv = [sys.executable, "-m", "mec.cli", "net", "up", str(TOPO), "--hold", "60"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        port = None
        for line in proc.stdout:
            m = re.search(r"OpenFlow 127\.0\.0\.1:(\d+)", line)
            port = port or (m and m.group(1))
            if line.startswith("holding"):
                break
        assert port, "mec net up did not print the Network Manager's OpenFlow port"
        pid = read_record(config.RUN_DIR / f"ctl-{port}.pid").pid
        lines: list[tuple[float, str]] = []
        threading.Thread(target=lambda: [lines.append((time.monotonic(), l))
                                         for l in proc.stderr], daemon=True).start()
        os.kill(pid, signal.SIGKILL)
        t_kill = time.monotonic()

        def said(text: str) -> list[tuple[float, str]]:
            return [(t, l) for t, l in list(lines) if text in l]

        _wait(lambda: said("DIED"), 5.0)
        (t_said, line), = said("DIED")
        assert "network-manager (controller) DIED" in line and t_said - t_kill < 1.5
        _wait(lambda: said("network-manager is back"), 40.0)
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


@pytest.fixture(scope="module")
def testbed():
    _need_root()
    tb = Testbed(load(TOPO), controller="os-ken")
    try:
        tb.start()
        yield tb
    finally:
        tb.stop()


def test_everything_the_testbed_started_is_watched(testbed):
    watched = testbed.watchdog.watched()
    assert "network-manager" in watched and "registry" in watched
    assert {"engine c1", "engine c2"} <= set(watched)
    hops = [l for l in testbed.network.links if l.hop and l.hop.lines]
    assert hops  # line2's mec link and the cloud's wan link have delay lines
    lines = [w for w in watched if w.startswith("delay line ")]
    assert len(lines) == sum(len(l.hop.lines) for l in hops) == 2 * len(hops)
    assert testbed.watchdog.deaths == []


def test_a_killed_controller_is_seen_restarted_and_the_switches_come_back(testbed):
    t0 = len(testbed.watchdog.deaths)
    old_pid = testbed.controller.proc.pid
    os.kill(old_pid, signal.SIGKILL)
    t_kill = time.monotonic()
    _wait(lambda: len(testbed.watchdog.deaths) > t0, 2.0)
    death = testbed.watchdog.deaths[t0]
    assert death.name == "network-manager" and death.t_detected - t_kill < 1.0
    assert f"pid {old_pid} exited with -9" in death.detail
    _wait(lambda: death.recovered or death.recovery_error, 40.0)
    assert death.recovered, death.recovery_error
    assert testbed.controller.proc.pid != old_pid
    assert len(testbed.nm.switches()) == 2  # both switches reconnected to the new one
    assert testbed.watchdog.verdict()["valid"]


def test_a_killed_delay_line_is_seen_within_a_second_and_the_run_is_invalid(testbed):
    t0 = len(testbed.watchdog.deaths)
    link = next(l for l in testbed.network.links if l.hop and l.hop.lines)
    line = link.hop.lines[0]
    os.kill(line.pid, signal.SIGKILL)
    t_kill = time.monotonic()
    _wait(lambda: len(testbed.watchdog.deaths) > t0, 2.0)
    death = testbed.watchdog.deaths[t0]
    assert death.kind == "delay-line" and link.name in death.name
    assert death.t_detected - t_kill < 1.0 and not death.recovered
    verdict = testbed.watchdog.verdict()
    assert not verdict["valid"] and verdict["deaths"][-1]["name"] == death.name
