"""A run during which a part of the testbed died unrecovered is invalid, and says so."""

from __future__ import annotations

import argparse
import json
import subprocess

import pytest

from mec.core.watchdog import Watchdog, process_component
from mec.measure.results import SummarySpec, find_runs
from scenarios import _common

SPEC = SummarySpec("startup", group_by=("image",), metrics=("total_s",))


class FakeTestbed:
    """What the run skeleton reads of a testbed: its watchdog (and, here, nothing else)."""

    def __init__(self, deaths: int, recovered: bool = False):
        self.watchdog = Watchdog()
        for i in range(deaths):
            proc = subprocess.Popen(["true"])
            proc.wait(timeout=5)
            self.watchdog.watch(process_component(f"delay line l{i} a->b", "delay-line",
                                                  lambda p=proc: p,
                                                  restart=(lambda: None) if recovered else None))
        self.watchdog.check_once()
        if recovered:  # restarts run on their own thread: wait for them
            import time
            deadline = time.monotonic() + 5
            while not all(d.recovered for d in self.watchdog.deaths):
                assert time.monotonic() < deadline
                time.sleep(0.01)


def run(tmp_path, monkeypatch, testbeds, judge=True, tolerate=False):
    monkeypatch.setattr(_common, "environment", lambda tb=None: {"kernel": "test"})

    def measure(rd, set_testbed):
        for tb in testbeds:
            set_testbed(tb, judge=judge)
        rd.table("startup", ("rep", "image", "total_s")).append(
            {"rep": 1, "image": "busybox", "total_s": 1.0})

    args = argparse.Namespace(out=tmp_path, json=False, tolerate_failures=tolerate)
    rc = _common.execute("startup", args, [SPEC], measure, lambda p, g: [], {})
    (path,) = find_runs([tmp_path])
    return rc, json.loads((path / "summary.json").read_text())


def test_an_unrecovered_death_makes_the_run_invalid_and_exit_3(tmp_path, monkeypatch, capsys):
    rc, s = run(tmp_path, monkeypatch, [FakeTestbed(0), FakeTestbed(1)])
    assert rc == _common.EXIT_NOT_OK
    assert s["valid"] is False and [d["name"] for d in s["deaths"]] == ["delay line l0 a->b"]
    out, err = capsys.readouterr()
    assert "INVALID: delay line l0 a->b died (pid" in out
    assert "startup: INVALID run: delay line l0 a->b died" in err


def test_tolerated_invalid_run_exits_0_but_stays_marked(tmp_path, monkeypatch):
    rc, s = run(tmp_path, monkeypatch, [FakeTestbed(1)], tolerate=True)
    assert rc == 0 and s["valid"] is False


def test_a_recovered_death_keeps_the_run_valid_and_recorded(tmp_path, monkeypatch):
    rc, s = run(tmp_path, monkeypatch, [FakeTestbed(1, recovered=True)])
    assert rc == 0 and s["valid"] is True
    assert s["deaths"][0]["recovered"] and s["deaths"][0]["recovery_s"] is not None


def test_a_testbed_whose_deaths_the_scenario_causes_is_not_judged(tmp_path, monkeypatch):
    rc, s = run(tmp_path, monkeypatch, [FakeTestbed(2)], judge=False)
    assert rc == 0 and s["valid"] is True and s["deaths"] == []


def test_describe_deaths_names_each_with_its_fate():
    text = _common.describe_deaths([
        {"name": "engine c1", "detail": "pid 3 exited with -9", "recovered": False},
        {"name": "network-manager", "detail": "pid 4 exited with -9", "recovered": True,
         "recovery_s": 1.23},
        {"name": "registry", "detail": "", "recovered": False, "recovery_error": "port in use"}])
    assert text == ("engine c1 died (pid 3 exited with -9); network-manager died (pid 4 exited "
                    "with -9), restarted in 1.2 s; registry died (no detail), restart failed: "
                    "port in use")


@pytest.fixture(autouse=True)
def _no_sudo_chown(monkeypatch):
    monkeypatch.delenv("SUDO_UID", raising=False)
