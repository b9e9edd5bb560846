"""Progress lines of a running scenario, and how it stops on Ctrl-C.

Progress goes to stderr, one line per finished measurement, for a person
watching a run of many repetitions::

    [rep 3/30] httpd pulled: 17.2 s (pull 16.9 s, launch 0.3 s)

Interrupting (:class:`StopGuard`): the first Ctrl-C (SIGINT) or SIGTERM raises
KeyboardInterrupt in the scenario at once: the repetition in progress is
abandoned (its row was never written: rows are written when a repetition
finishes, so only whole repetitions are kept). From then on the guard is in
clean-up mode: further Ctrl-Cs do not interrupt the tear-down of the network
and engines (the Testbed context manager does it); only a third one does, with
a hint to run ``mec clean``. The scenario then writes a partial summary and
exits with 130.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from types import FrameType
from typing import Any, Optional, TextIO

#: Exit code of a run stopped by Ctrl-C (128 + SIGINT), as a shell reports it.
EXIT_INTERRUPTED = 130


class Progress:
    """Writes ``[rep I/N] LABEL: SECONDS s (details)`` lines to a stream (stderr)."""

    def __init__(self, total: int, stream: Optional[TextIO] = None, quiet: bool = False):
        self.total = total
        self.stream = stream
        self.quiet = quiet
        self.t0 = time.monotonic()

    def line(self, rep: int, label: str, seconds: Optional[float] = None, **details: float) -> str:
        """Write one line for repetition REP (1-based) and return it."""
        text = f"[rep {rep}/{self.total}] {label}"
        if seconds is not None:
            text += f": {seconds:.1f} s" if seconds >= 1 else f": {seconds:.3f} s"
        if details:
            text += " (" + ", ".join(f"{k} {_fmt(v)}" for k, v in details.items()) + ")"
        self.note(text)
        return text

    def note(self, text: str) -> None:
        if not self.quiet:
            stream = self.stream or sys.stderr
            print(text, file=stream, flush=True)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.1f} s" if v >= 1 else f"{v:.3f} s"
    return str(v)


class StopGuard:
    """Context manager turning SIGINT/SIGTERM into a clean stop (see module docstring).

    ``interrupted`` tells whether a stop was asked for; ``signal_name`` which one.
    Inside the ``with`` block the first signal raises KeyboardInterrupt; the
    guard does NOT swallow it (the caller catches it where its clean point is).
    After the first signal, later ones only print a note, until the third.

    A process forked inside the block (a library's helper, e.g. pyroute2's) inherits
    the handler; there a signal ends that process at once, as the default would,
    and never runs the parent's clean-up.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, stream: Optional[TextIO] = None):
        self.stream = stream
        self.interrupted = False
        self.signal_name = ""
        self._count = 0
        self._old: dict[int, Any] = {}
        self._owner = os.getpid()

    def _handler(self, signum: int, _frame: Optional[FrameType]) -> None:
        if os.getpid() != self._owner:  # a forked child: not ours to clean up
            os._exit(128 + signum)
        self._count += 1
        name = signal.Signals(signum).name
        stream = self.stream or sys.stderr
        if self._count == 1:
            self.interrupted = True
            self.signal_name = name
            print(f"\n{name}: stopping; the repetition in progress is dropped, finished ones "
                  "are kept; cleaning up (this takes a few seconds)", file=stream, flush=True)
            raise KeyboardInterrupt(name)
        if self._count == 2:
            print(f"{name}: still cleaning up the network and engines; press Ctrl-C once more "
                  "to abandon the clean-up (then run `mec clean`)", file=stream, flush=True)
            return
        raise KeyboardInterrupt(name)

    def __enter__(self) -> "StopGuard":
        self._owner = os.getpid()
        for sig in self.SIGNALS:
            try:
                self._old[sig] = signal.signal(sig, self._handler)
            except ValueError:  # not the main thread: leave signals alone
                pass
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old.clear()
