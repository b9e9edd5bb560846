"""Scheduling logic of the userspace delay line and the mechanism choice (no root)."""

import os
import random

import pytest

from topologies import netem
from topologies.delayline import DelayScheduler, parse_args, release_time


def test_release_time_is_arrival_plus_delay_plus_jitter():
    assert release_time(10.0, 0.025, 0.005, previous_release=0.0) == pytest.approx(10.030)


def test_release_time_never_before_previous_packet():
    # a large negative jitter would overtake the packet ahead: it waits for it instead
    assert release_time(10.0, 0.025, -0.020, previous_release=10.028) == 10.028


def test_release_time_never_before_arrival():
    assert release_time(5.0, 0.001, -0.5, previous_release=0.0) == 5.0


def test_scheduler_holds_for_delay_then_releases_in_order():
    s = DelayScheduler(delay_s=0.050)
    assert s.submit("p1", now=1.000) and s.submit("p2", now=1.010)
    assert s.due(1.049) == []
    assert s.next_due() == pytest.approx(1.050)
    assert s.due(1.050) == ["p1"]
    assert s.due(2.0) == ["p2"]
    assert s.next_due() is None


def test_jitter_spreads_delay_but_never_reorders():
    s = DelayScheduler(delay_s=0.025, jitter_s=0.010, rng=random.Random(7))
    arrivals = [i * 0.001 for i in range(2000)]  # 1 ms apart, jitter sd 10 ms
    for i, t in enumerate(arrivals):
        s.submit(i, now=t)
    times = [rt for rt, _ in s.held]
    assert times == sorted(times)
    released = s.due(float("inf"))
    assert released == list(range(2000))
    held = [rt - t for rt, t in zip(times, arrivals)]
    assert min(held) >= 0
    assert max(held) - min(held) > 0.010  # really spread


def test_jitter_alone_has_about_the_asked_spread_when_packets_are_sparse():
    s = DelayScheduler(delay_s=0.050, jitter_s=0.005, rng=random.Random(1))
    arrivals = [i * 0.1 for i in range(2000)]  # 100 ms apart: the order clamp never acts
    for t in arrivals:
        s.submit(None, now=t)
    held = [rt - t for (rt, _), t in zip(s.held, arrivals)]
    mean = sum(held) / len(held)
    sd = (sum((h - mean) ** 2 for h in held) / len(held)) ** 0.5
    assert mean == pytest.approx(0.050, abs=0.0005)
    assert sd == pytest.approx(0.005, rel=0.1)


def test_loss_rate_follows_the_asked_percentage():
    s = DelayScheduler(delay_s=0.0, loss_pct=10, rng=random.Random(3))
    kept = sum(s.submit(i, now=0.0) for i in range(10000))
    assert 8800 <= kept <= 9200


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError):
        DelayScheduler(delay_s=-1)
    with pytest.raises(ValueError):
        DelayScheduler(delay_s=0, loss_pct=120)


def test_command_line():
    a = parse_args(["--queue", "7", "--delay-ms", "25", "--jitter-ms", "2", "--loss-pct", "1",
                    "--seed", "4"])
    assert (a.queue, a.delay_ms, a.jitter_ms, a.loss_pct, a.seed) == (7, 25.0, 2.0, 1.0, 4)


def test_forced_mechanism(monkeypatch):
    monkeypatch.setattr(netem, "netem_available", lambda: False)
    monkeypatch.setattr(netem, "nfqueue_available", lambda: True)
    monkeypatch.setenv(netem.ENV_FORCE, "nfqueue")
    assert netem.delay_mechanism() == "nfqueue"
    monkeypatch.setenv(netem.ENV_FORCE, "netem")
    with pytest.raises(netem.NoDelayMechanism, match="netem"):
        netem.delay_mechanism()
    monkeypatch.delenv(netem.ENV_FORCE)
    assert netem.delay_mechanism() == "nfqueue"
    monkeypatch.setattr(netem, "nfqueue_available", lambda: False)
    with pytest.raises(netem.NoDelayMechanism, match="cannot be emulated"):
        netem.delay_mechanism()


# --------------------------------------------------------------- which line runs

def _fake_binary(tmp_path, monkeypatch, source_text="int main(void){return 0;}\n"):
    import hashlib

    from topologies import delayline

    src = tmp_path / "delayline.c"
    src.write_text(source_text)
    binary = tmp_path / "mec-delayline"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    (tmp_path / "mec-delayline.sha256").write_text(hashlib.sha256(src.read_bytes()).hexdigest())
    monkeypatch.setattr(delayline, "COMPILED_SOURCE", src)
    monkeypatch.setattr(delayline, "COMPILED_BINARY", binary)
    monkeypatch.delenv(delayline.ENV_LINE, raising=False)
    return src, binary


def test_compiled_line_is_chosen_when_built_from_the_current_source(tmp_path, monkeypatch):
    from topologies import delayline

    _, binary = _fake_binary(tmp_path, monkeypatch)
    assert delayline.compiled_problem() is None
    assert delayline.line_command() == ([str(binary)], "compiled")


def test_python_line_when_the_binary_is_stale_or_missing(tmp_path, monkeypatch):
    import sys

    from topologies import delayline

    src, binary = _fake_binary(tmp_path, monkeypatch)
    src.write_text("changed since the build\n")
    assert "older" in delayline.compiled_problem()
    assert delayline.line_command() == ([sys.executable, "-m", "topologies.delayline"], "python")
    binary.unlink()
    assert "not built" in delayline.compiled_problem()
    assert delayline.line_kind() == "python"
    monkeypatch.setenv(delayline.ENV_LINE, "compiled")
    with pytest.raises(delayline.NoDelayLine, match="not built"):
        delayline.line_kind()


def test_forcing_the_python_line(tmp_path, monkeypatch):
    from topologies import delayline

    _fake_binary(tmp_path, monkeypatch)
    monkeypatch.setenv(delayline.ENV_LINE, "python")
    assert delayline.line_kind() == "python"
    monkeypatch.setenv(delayline.ENV_LINE, "fast")
    with pytest.raises(delayline.NoDelayLine):
        delayline.line_kind()


def test_compiled_line_source_builds_without_warnings_and_checks_its_flags(tmp_path):
    """The C source compiles against libnetfilter-queue (as scripts/setup.sh does) with
    -Wall -Wextra -Werror; the binary refuses bad flags (exit 2) and knows --help."""
    import shutil
    import subprocess

    from topologies import delayline

    if not shutil.which("gcc") or not os.path.exists(
            "/usr/include/libnetfilter_queue/libnetfilter_queue.h"):
        pytest.skip("gcc or libnetfilter-queue-dev missing (the Python line is used then)")
    out = tmp_path / "mec-delayline"
    res = subprocess.run(["gcc", "-O2", "-Wall", "-Wextra", "-Werror", "-o", str(out),
                          str(delayline.COMPILED_SOURCE), "-lnetfilter_queue", "-lnfnetlink",
                          "-lm"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    for bad in (["--queue", "x"], ["--delay-ms", "5"], ["--queue", "1", "--loss-pct", "101"],
                ["--queue", "1", "--jitter-ms", "-1"]):
        assert subprocess.run([str(out), *bad], capture_output=True, timeout=10).returncode == 2
    helped = subprocess.run([str(out), "--help"], capture_output=True, text=True, timeout=10)
    assert helped.returncode == 0 and "--queue" in helped.stdout


def test_doctor_names_the_delay_line_and_why_not_the_compiled_one(tmp_path, monkeypatch):
    from mec.host import doctor
    from topologies import delayline

    _, binary = _fake_binary(tmp_path, monkeypatch)
    check = doctor._check_delay_line(needed=True)
    assert (check.status, "compiled") == ("ok", check.detail.split()[0])
    binary.unlink()
    check = doctor._check_delay_line(needed=True)
    assert check.status == "warn" and "Python line" in check.detail and "not built" in check.detail
    assert doctor._check_delay_line(needed=False).status == "info"  # netem does the delay
    monkeypatch.setenv(delayline.ENV_LINE, "compiled")
    assert doctor._check_delay_line(needed=True).status == "fail"


def test_bench_cpu_seconds_of_processes():
    import subprocess
    import sys

    from mec.bench.links import cpu_seconds

    busy = subprocess.run([sys.executable, "-c", "import os; print(os.getpid()); "
                           "[0 for _ in range(3_000_000)]"], capture_output=True, text=True)
    user, system = cpu_seconds([os.getpid()])
    assert user > 0 and system >= 0
    assert cpu_seconds([int(busy.stdout)]) is None  # gone: no number rather than a wrong one
