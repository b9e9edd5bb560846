"""The watchdog over real child processes: deaths seen within a second, restarts timed."""

from __future__ import annotations

import subprocess
import time

import pytest

from mec.core.events import EventLog
from mec.core.watchdog import Watchdog, process_component


@pytest.fixture
def children():
    procs: list[subprocess.Popen] = []

    def spawn() -> subprocess.Popen:
        proc = subprocess.Popen(["sleep", "60"])
        procs.append(proc)
        return proc

    yield spawn
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=5)


def _wait(cond, timeout: float = 5.0) -> float:
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)
    return time.monotonic() - t0


def test_a_killed_process_is_reported_within_a_second_by_name(children, tmp_path):
    a, b = children(), children()
    events = EventLog(tmp_path / "ev.jsonl")
    seen = []
    with Watchdog(events=events, listeners=[seen.append]) as dog:
        dog.watch(process_component("delay line x", "delay-line", lambda: a))
        dog.watch(process_component("registry", "registry", lambda: b))
        time.sleep(0.3)
        assert dog.deaths == []
        a.kill()
        waited = _wait(lambda: seen)
        assert waited < 1.0
        (death,) = dog.deaths
        assert death.name == "delay line x" and death.kind == "delay-line"
        assert f"pid {a.pid} exited with -9" in death.detail
        assert seen == [death] and "delay line x" not in dog.watched()
        assert dog.verdict() == {"valid": False, "deaths": [death.as_dict()]}
    kinds = [e.kind for e in events.events()]
    assert kinds == ["component.died"]


def test_a_restartable_component_is_restarted_and_the_recovery_timed(children):
    current = {"proc": children()}

    def restart() -> None:
        time.sleep(0.2)  # a restart takes time: it must be in recovery_s
        current["proc"] = children()

    with Watchdog() as dog:
        dog.watch(process_component("network-manager", "controller", lambda: current["proc"],
                                    restart=restart))
        first = current["proc"]
        first.kill()
        _wait(lambda: dog.deaths and dog.deaths[0].recovered)
        death = dog.deaths[0]
        assert 0.2 <= death.recovery_s < 2.0
        assert current["proc"] is not first and "network-manager" in dog.watched()
        assert dog.verdict()["valid"]
        current["proc"].kill()  # the restarted one is watched too
        _wait(lambda: len(dog.deaths) == 2 and dog.deaths[1].recovered)


def test_a_failed_restart_leaves_the_run_invalid(children):
    proc = children()

    def restart() -> None:
        raise RuntimeError("port in use")

    calls = []
    with Watchdog(listeners=[calls.append]) as dog:
        dog.watch(process_component("network-manager", "controller", lambda: proc,
                                    restart=restart))
        proc.kill()
        _wait(lambda: dog.deaths and dog.deaths[0].recovery_error)
        _wait(lambda: len(calls) == 2)  # once on the death, once when the restart failed
    assert dog.deaths[0].recovery_error == "RuntimeError: port in use"
    assert not dog.verdict()["valid"]


def test_nothing_stopped_after_the_watch_ended_counts_as_a_death(children):
    proc = children()
    dog = Watchdog().start()
    dog.watch(process_component("engine c1", "engine", lambda: proc))
    dog.stop()
    proc.kill()
    time.sleep(0.5)
    assert dog.deaths == [] and dog.verdict()["valid"]


def test_a_check_that_raises_is_a_death_with_its_reason():
    def broken() -> bool:
        raise OSError("no such namespace")

    from mec.core.watchdog import Component

    dog = Watchdog()
    dog.watch(Component("engine c2", "engine", broken))
    (death,) = dog.check_once()
    assert "OSError: no such namespace" in death.detail


def test_a_probe_is_watched_from_ready_until_it_is_stopped(tmp_path, monkeypatch):
    """A user probe that dies under a run is a death; one stopped on purpose is not."""
    import sys

    from mec.core import config
    from mec.measure.probe import ProbeProcess

    monkeypatch.setattr(config, "RUN_DIR", tmp_path)
    script = ("import signal, sys, time\n"
              "signal.signal(signal.SIGTERM, lambda *a: (print('DONE {}', flush=True), "
              "sys.exit(0)))\n"
              "print('READY {}', flush=True)\ntime.sleep(60)")

    class Host:
        name = "mxe-u1"

        def popen(self, argv, **kw):
            return subprocess.Popen([sys.executable, "-c", script], **kw)

    (tmp_path / "p.csv").write_text("")
    with Watchdog() as dog:
        stopped = ProbeProcess(Host(), "http://x/", tmp_path / "p.csv", watchdog=dog).start()
        assert dog.watched() == ["probe on mxe-u1"]
        stopped.stop()
        assert dog.watched() == []
        killed = ProbeProcess(Host(), "http://x/", tmp_path / "q.csv", watchdog=dog).start()
        killed.proc.kill()
        _wait(lambda: dog.deaths)
        killed.__exit__(None, None, None)
    (death,) = dog.deaths
    assert death.name == "probe on mxe-u1" and death.kind == "probe"
