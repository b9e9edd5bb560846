"""Small helpers for running commands and owning processes.

Every external command is run from an argument list (never a shell string).
Processes the project starts in the background are recorded in pid files under
``mec.core.config.RUN_DIR`` together with a marker string that must appear in their
command line, so that clean-up can verify a pid still belongs to us before it
signals it.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

log = logging.getLogger(__name__)


class CommandError(RuntimeError):
    """A command exited non-zero; carries its output for the error message."""

    def __init__(self, argv: Sequence[str], returncode: int, output: str):
        self.argv = list(argv)
        self.returncode = returncode
        self.output = output
        super().__init__(f"`{' '.join(argv)}` exited {returncode}: {_tail(output)}")


class CommandTimeout(CommandError):
    """A command did not finish within its timeout (it was killed); names the command."""

    def __init__(self, argv: Sequence[str], timeout: float, output: str):
        self.timeout = timeout
        RuntimeError.__init__(self, f"`{' '.join(argv)}` timed out after {timeout:g} s"
                              + (f": {_tail(output)}" if output.strip() else ""))
        self.argv, self.returncode, self.output = list(argv), None, output


def _tail(output: str, lines: int = 8) -> str:
    return "\n".join(output.strip().splitlines()[-lines:])


def _text(data: str | bytes | None) -> str:
    return data.decode(errors="replace") if isinstance(data, bytes) else (data or "")


def run(argv: Sequence[str], check: bool = True, timeout: float = 120,
        input: str | bytes | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run a command, capturing stdout and stderr as text.

    Every command has a TIMEOUT (seconds); past it the command is killed and
    CommandTimeout (a CommandError) names it, with its output so far.
    """
    log.debug("run: %s", " ".join(argv))
    try:
        proc = subprocess.run(
            list(argv), capture_output=True, text=not isinstance(input, bytes),
            timeout=timeout, input=input, env=env,
        )
    except subprocess.TimeoutExpired as exc:
        raise CommandTimeout(argv, timeout, _text(exc.stdout) + _text(exc.stderr)) from None
    if check and proc.returncode != 0:
        out = proc.stdout + proc.stderr if isinstance(proc.stdout, str) else ""
        raise CommandError(argv, proc.returncode, out)
    return proc


def have(program: str) -> str | None:
    """Full path of a program on PATH (also the sbin folders), or None."""
    return shutil.which(program, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")


def cmdline(pid: int) -> str:
    """The command line of a live process as one string ('' if it is gone)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def alive(pid: int) -> bool:
    """True if the process exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@dataclass
class PidRecord:
    """A background process the project started: who it is and how to recognise it."""

    name: str
    pid: int
    marker: str  # a string that must be in /proc/PID/cmdline for the pid to still be ours
    kind: str = "process"

    def is_ours(self) -> bool:
        return alive(self.pid) and self.marker in cmdline(self.pid)


def write_record(path: Path, record: PidRecord) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(record)))


def read_record(path: Path) -> PidRecord | None:
    try:
        return PidRecord(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None


def terminate(pid: int, marker: str, timeout: float = 10.0) -> bool:
    """SIGTERM a process we own (checked by marker), SIGKILL after timeout.

    Returns True if a process was signalled.
    """
    if marker not in cmdline(pid):
        return False
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            _reap(pid)
            return True
        time.sleep(0.05)
    log.warning("pid %d did not stop on SIGTERM, sending SIGKILL", pid)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    _reap(pid)
    return True


def stop_child(process: "subprocess.Popen", marker: str, timeout: float = 5.0) -> None:
    """Stop a background child we started (checked by MARKER, see terminate) and reap it."""
    if process.poll() is None:
        terminate(process.pid, marker, timeout=timeout)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        log.warning("pid %d did not exit", process.pid)


class PipeReader:
    """Drains one pipe of a child in a daemon thread, so the child never blocks on a full pipe.

    Lines are queued for :meth:`next_line`, which waits at most a given time (a
    blocking ``readline`` on a silent child would wait forever); the last
    ``keep`` lines are kept for error messages (:meth:`tail`). WHAT names the
    stream in messages, e.g. "stderr of the probe on mec-u1".
    """

    def __init__(self, pipe, what: str, keep: int = 40):
        import collections
        import queue
        import threading

        self.what = what
        self._lines: "queue.Queue[str]" = queue.Queue()
        self._tail: "collections.deque[str]" = collections.deque(maxlen=keep)
        self._thread = threading.Thread(target=self._pump, args=(pipe,), name=f"pipe {what}",
                                        daemon=True)
        self._thread.start()

    def _pump(self, pipe) -> None:
        try:
            while raw := pipe.readline():
                line = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
                self._tail.append(line.rstrip("\n"))
                self._lines.put(line)
        except (OSError, ValueError):  # the pipe was closed under us
            pass
        finally:
            self._lines.put("")  # end of stream

    def next_line(self, timeout: float) -> str | None:
        """The next line; '' once the stream ended; None if nothing came within TIMEOUT s."""
        import queue

        try:
            line = self._lines.get(timeout=max(0.0, timeout))
        except queue.Empty:
            return None
        if line == "":
            self._lines.put("")  # stay at the end for later callers
        return line

    def rest(self, timeout: float = 5.0) -> list[str]:
        """Every line not taken yet, once the stream ended (waits up to TIMEOUT s for its end)."""
        self._thread.join(timeout)
        lines = []
        while (line := self.next_line(0)):
            lines.append(line)
        return lines

    def tail(self) -> str:
        """The last lines seen (for error messages)."""
        return "\n".join(self._tail)


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def wait_until(predicate, timeout: float, interval: float = 0.05, what: str = "condition"):
    """Poll predicate() until it returns a truthy value; raise TimeoutError after timeout."""
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # noqa: BLE001 - reported below if it persists
            last_exc = exc
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_exc})" if last_exc else ""
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}{detail}")
        time.sleep(interval)
