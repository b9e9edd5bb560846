"""A process forked under the scenario's signal guard (pyroute2 forks helpers) never runs
the scenario's clean-up when it is signalled: it just ends."""

from __future__ import annotations

import os
import signal
import time

from mec.measure.progress import StopGuard


def test_a_forked_child_ends_on_sigterm_without_running_the_parents_clean_up(tmp_path):
    marker = tmp_path / "cleaned-up-by"
    with StopGuard():
        pid = os.fork()
        if pid == 0:  # the child: what a library's helper process would be
            try:
                time.sleep(30)
            finally:  # the scenario's clean-up would run here if the handler raised
                marker.write_text(str(os.getpid()))
            os._exit(0)
        time.sleep(0.2)
        os.kill(pid, signal.SIGTERM)
        _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 128 + signal.SIGTERM
    assert not marker.exists()


def test_the_owner_still_gets_a_keyboard_interrupt(tmp_path):
    caught = False
    with StopGuard() as guard:
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1)
        except KeyboardInterrupt:
            caught = True
    assert caught and guard.signal_name == "SIGTERM"
