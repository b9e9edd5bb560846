"""Process ownership checks used by clean-up."""

import os
import subprocess
import sys
import time

import pytest

from mec.core.proc import (CommandError, CommandTimeout, PidRecord, PipeReader, cmdline, read_record, run,
                           terminate, wait_until, write_record)


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


def test_run_timeout_names_the_command():
    t0 = time.monotonic()
    with pytest.raises(CommandTimeout, match=r"`.*sleep.*` timed out after 0.5 s"):
        run([sys.executable, "-c", "import time; time.sleep(30)", "sleep"], timeout=0.5)
    assert time.monotonic() - t0 < 5


def test_pipe_reader_waits_with_a_deadline_and_drains_a_chatty_child():
    # 2 MB on stderr before anything on stdout: an undrained pipe (64 KiB) would block it
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\n"
         "sys.stderr.write('x' * 2_000_000 + '\\nlast words\\n'); sys.stderr.flush()\n"
         "print('READY', flush=True); time.sleep(30)"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = PipeReader(child.stdout, "stdout"), PipeReader(child.stderr, "stderr")
        assert out.next_line(10) == "READY\n"
        t0 = time.monotonic()
        assert out.next_line(0.3) is None  # silent child: the wait ends at its deadline
        assert 0.25 < time.monotonic() - t0 < 2
        assert err.tail().endswith("last words")
    finally:
        child.kill()
        child.wait(timeout=5)
    assert out.rest() == [] and out.next_line(1) == ""  # end of stream, for every later caller
