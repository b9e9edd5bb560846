"""Process ownership checks used by clean-up."""

import os
import subprocess
import sys

import pytest

from mec.core.proc import CommandError, PidRecord, cmdline, read_record, run, terminate, wait_until, write_record


def test_run_raises_with_output_tail():
    with pytest.raises(CommandError, match="exited 3"):
        run([sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"])


def test_terminate_refuses_a_pid_whose_marker_does_not_match():
    assert terminate(os.getpid(), "definitely-not-in-my-cmdline-xyz") is False


def test_terminate_stops_our_process(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "mec-marker-1"])
    try:
        wait_until(lambda: "mec-marker-1" in cmdline(proc.pid), timeout=5, what="exec")
        assert terminate(proc.pid, "mec-marker-1", timeout=5) is True
        assert proc.wait(timeout=5) is not None
    finally:
        proc.kill()


def test_pid_record_round_trip(tmp_path):
    rec = PidRecord("x", os.getpid(), "pytest", "test")
    write_record(tmp_path / "x.pid", rec)
    assert read_record(tmp_path / "x.pid") == rec
    assert read_record(tmp_path / "missing.pid") is None


def test_wait_until_times_out_with_the_last_error():
    def boom():
        raise ValueError("nope")
    with pytest.raises(TimeoutError, match="nope"):
        wait_until(boom, timeout=0.2, what="boom")
