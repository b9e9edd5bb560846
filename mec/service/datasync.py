"""Data synchronisation of storage-dependent services (paper Sec. III.B and VI.B).

A storage-dependent service keeps its data in a volume: a host directory of
the cloudlet that hosts the primary replica, bind-mounted into the container at
``/srv/data`` (the service images serve it under ``/data/`` when
``MEC_DATA=/srv/data`` is set; see :func:`data_volume`). :class:`DataSync`
propagates that directory periodically from the primary to every secondary
over the EMULATED network: an ``rsync --daemon`` runs inside each secondary
cloudlet's network namespace, and the ``rsync`` client runs inside the
primary's namespace, so the bytes cross the (possibly shaped) links between
them. The period is a knob; each round's bytes (what ``rsync --stats`` says it
sent and received, and the bytes counted on each secondary's interfaces during
its push) and timestamps are recorded as :class:`SyncRound` and emitted as
``sync_round`` events; :meth:`DataSync.check_coherent` compares file checksums
on primary and secondaries.
"""

from __future__ import annotations

import hashlib
import logging
import random
import re
import subprocess
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from mec.core import config
from mec.edge.manager import DATA_MOUNT
from mec.core.netns import WireCounter
from mec.core.proc import PidRecord, have, stop_child, wait_until, write_record
from mec.edge.transfer import in_netns

log = logging.getLogger(__name__)

MODULE = "data"
PORT_RANGE = (30000, 39999)


def data_volume(host_dir: Path | str, mount: str = DATA_MOUNT) -> tuple[dict, dict]:
    """(volumes, env) for EdgeManager.deploy: HOST_DIR mounted at MOUNT in the container,
    MOUNT in ``MEC_DATA`` (the built-in images then serve it under /data/)."""
    return {str(host_dir): {"bind": mount, "mode": "rw"}}, {"MEC_DATA": mount}


def service_data_dir(service: str) -> Path:
    """The host directory holding SERVICE's data volumes, one folder per cloudlet."""
    return config.STATE_DIR / "data" / config.PREFIX / service


def data_dir(service: str, cloudlet: str) -> Path:
    """The conventional host directory of SERVICE's data volume on CLOUDLET."""
    return service_data_dir(service) / cloudlet


@dataclass(frozen=True)
class Replica:
    """Where one replica's data lives: its cloudlet, namespace, address and host directory."""

    cloudlet: str
    netns_path: str
    ip: str
    data_dir: Path


@dataclass
class RsyncStats:
    """The numbers of ``rsync --stats`` that matter for traffic accounting."""

    bytes_sent: int = 0
    bytes_received: int = 0
    files_transferred: int = 0
    literal_bytes: int = 0  # file data actually sent (not matched by the delta algorithm)

    @property
    def total_bytes(self) -> int:
        """Sent + received, as rsync counts them (its protocol's bytes, not the wire's)."""
        return self.bytes_sent + self.bytes_received


_STATS_RE = {
    "bytes_sent": re.compile(r"^Total bytes sent:\s*([\d,.]+)", re.M),
    "bytes_received": re.compile(r"^Total bytes received:\s*([\d,.]+)", re.M),
    "files_transferred": re.compile(r"^Number of regular files transferred:\s*([\d,.]+)", re.M),
    "literal_bytes": re.compile(r"^Literal data:\s*([\d,.]+)", re.M),
}


def parse_rsync_stats(text: str) -> RsyncStats:
    """Parse the ``--stats`` block of rsync (numbers may carry thousands separators)."""
    values = {}
    for key, rx in _STATS_RE.items():
        m = rx.search(text)
        if key in ("bytes_sent", "bytes_received") and not m:
            raise ValueError(f"rsync --stats output lacks '{key}': {text[-300:]!r}")
        values[key] = int(re.sub(r"[,.]", "", m.group(1))) if m else 0
    return RsyncStats(**values)


@dataclass
class SyncTarget:
    """Result of pushing the primary's data to one secondary in one round.

    ``stats`` is what rsync reports; ``wire_bytes`` the rx + tx bytes counted on the
    secondary's interfaces while the push ran: headers, ACKs and retransmissions
    included, and any other traffic of that cloudlet meanwhile (health checks, a
    service's users; see :class:`mec.core.netns.WireCounter`). None when not counted
    (no push ran, or it timed out).
    """

    cloudlet: str
    ok: bool
    seconds: float
    stats: RsyncStats = field(default_factory=RsyncStats)
    error: str = ""
    wire_bytes: Optional[int] = None


@dataclass
class SyncRound:
    """One synchronisation round: wall-clock start/end, per-secondary results, total bytes."""

    index: int
    primary: str
    started: float  # time.time()
    ended: float
    seconds: float  # perf_counter duration of the whole round
    targets: list[SyncTarget] = field(default_factory=list)

    @property
    def bytes(self) -> int:
        """What rsync says it sent and received, all secondaries."""
        return sum(t.stats.total_bytes for t in self.targets)

    @property
    def wire_bytes(self) -> Optional[int]:
        """Bytes counted on the secondaries' interfaces, all of them; None if one is missing."""
        counted = [t.wire_bytes for t in self.targets]
        return None if not counted or None in counted else sum(counted)

    @property
    def ok(self) -> bool:
        return all(t.ok for t in self.targets)

    def as_event(self) -> dict[str, Any]:
        return {
            "round": self.index, "primary": self.primary, "started": self.started,
            "ended": self.ended, "seconds": self.seconds, "bytes": self.bytes,
            "wire_bytes": self.wire_bytes, "ok": self.ok,
            "targets": [{"cloudlet": t.cloudlet, "ok": t.ok, "seconds": t.seconds,
                         "error": t.error, "wire_bytes": t.wire_bytes, **asdict(t.stats)}
                        for t in self.targets],
        }


@dataclass
class Coherence:
    """Result of comparing the primary's files with every secondary's."""

    coherent: bool
    files: int
    differences: dict[str, list[str]] = field(default_factory=dict)  # cloudlet -> paths


def tree_checksums(root: Path) -> dict[str, str]:
    """Relative path -> sha256 of every regular file under ROOT."""
    sums = {}
    root = Path(root)
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            sums[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return sums


def compare_trees(primary: dict[str, str], secondary: dict[str, str]) -> list[str]:
    """Paths that are missing, extra or different on the secondary."""
    return sorted(p for p in set(primary) | set(secondary) if primary.get(p) != secondary.get(p))


class RsyncDaemon:
    """``rsync --daemon`` inside a secondary's namespace, exposing its data dir as module 'data'."""

    def __init__(self, replica: Replica, tag: str):
        self.replica = replica
        self.tag = tag  # unique per daemon: names its config file, the clean-up marker
        self.port: Optional[int] = None
        self.process: Optional[subprocess.Popen] = None
        self.conf = config.run_dir() / f"rsyncd-{tag}.conf"
        self.record = config.run_dir() / f"rsyncd-{tag}.pid"

    def start(self, probe_netns: Optional[str], timeout: float = 10.0) -> "RsyncDaemon":
        rsync = have("rsync")
        if not rsync:
            raise RuntimeError("rsync not found: install Debian package rsync")
        self.replica.data_dir.mkdir(parents=True, exist_ok=True)
        self.conf.write_text(
            "use chroot = false\nuid = root\ngid = root\n"
            f"log file = {config.run_dir() / f'rsyncd-{self.tag}.log'}\n"
            f"[{MODULE}]\n  path = {self.replica.data_dir}\n  read only = false\n")
        last = ""
        for _attempt in range(5):
            self.port = random.randint(*PORT_RANGE)
            argv = in_netns(self.replica.netns_path, [
                rsync, "--daemon", "--no-detach", f"--config={self.conf}",
                f"--address={self.replica.ip}", f"--port={self.port}"])
            self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                                            stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                                            start_new_session=True)
            write_record(self.record, PidRecord(f"rsyncd-{self.tag}", self.process.pid,
                                                str(self.conf), "rsyncd"))
            try:
                wait_until(lambda: self._probe(probe_netns), timeout,
                           what=f"rsync daemon of {self.replica.cloudlet}")
                return self
            except (TimeoutError, RuntimeError) as exc:
                last = str(exc)
                self.stop()
        raise RuntimeError(f"rsync daemon of {self.replica.cloudlet} did not start: {last}")

    @property
    def url(self) -> str:
        return f"rsync://{self.replica.ip}:{self.port}/{MODULE}/"

    def _probe(self, probe_netns: Optional[str]) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"exited with {self.process.returncode}")
        argv = in_netns(probe_netns, ["rsync", f"rsync://{self.replica.ip}:{self.port}/"])
        return subprocess.run(argv, capture_output=True, timeout=5).returncode == 0

    def stop(self) -> None:
        if self.process is not None:
            stop_child(self.process, str(self.conf))
            self.process = None
        self.record.unlink(missing_ok=True)
        self.conf.unlink(missing_ok=True)


class DataSync:
    """Periodic primary -> secondaries propagation of a service's data volume.

    ``period_s`` is the knob; ``events`` any object with ``emit(kind, **fields)``
    (e.g. :class:`mec.core.events.EventLog`), ``on_round`` a callback per round.
    ``checksum=True`` makes rsync compare contents, not size+mtime, so a
    same-size change within one second is still sent (costs CPU, not bytes).
    Use as a context manager, or ``start()``/``stop()``; ``sync_now()`` runs
    one round synchronously (also without the periodic thread).
    """

    def __init__(self, service: str, primary: Replica, secondaries: list[Replica],
                 period_s: float = 5.0, events=None,
                 on_round: Optional[Callable[[SyncRound], None]] = None,
                 checksum: bool = True, delete: bool = True, timeout_s: float = 600):
        if period_s <= 0:
            raise ValueError(f"period must be > 0 s, got {period_s}")
        if any(s.cloudlet == primary.cloudlet for s in secondaries):
            raise ValueError(f"primary {primary.cloudlet} is also listed as a secondary")
        self.service = service
        self.primary = primary
        self.secondaries = list(secondaries)
        self.period_s = period_s
        self.events = events
        self.on_round = on_round
        self.checksum = checksum
        self.delete = delete
        self.timeout_s = timeout_s
        self.rounds: list[SyncRound] = []
        self._daemons: dict[str, RsyncDaemon] = {}
        self._pushing: set[subprocess.Popen] = set()  # rsync clients under way
        self._thread: Optional[threading.Thread] = None
        self._stop = threading.Event()
        self._lock = threading.Lock()  # one round at a time

    # --- lifecycle -------------------------------------------------------------------

    def start_daemons(self) -> None:
        for sec in self.secondaries:
            if sec.cloudlet not in self._daemons:
                tag = f"{self.service}-{sec.cloudlet}"
                self._daemons[sec.cloudlet] = RsyncDaemon(sec, tag).start(self.primary.netns_path)

    def start(self, sync_first: bool = True) -> "DataSync":
        """Start the daemons and the periodic thread (first round at once if SYNC_FIRST)."""
        self.primary.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            self.start_daemons()
        except Exception:
            self.stop()
            raise
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, args=(sync_first,),
                                        name=f"datasync-{self.service}", daemon=True)
        self._thread.start()
        self._emit("sync_start", service=self.service, primary=self.primary.cloudlet,
                   secondaries=[s.cloudlet for s in self.secondaries], period_s=self.period_s)
        return self

    def stop(self) -> None:
        """Stop the thread and every rsync daemon; a push under way is aborted.

        Aborting matters after a promotion: a late push from the old primary must
        not overwrite what the new primary has written since.
        """
        self._stop.set()
        for proc in list(self._pushing):
            if proc.poll() is None:
                proc.terminate()
        if self._thread is not None:
            self._thread.join(timeout=self.timeout_s + 5)
            self._thread = None
            self._emit("sync_stop", service=self.service, rounds=len(self.rounds))
        for daemon in self._daemons.values():
            daemon.stop()
        self._daemons.clear()

    def __enter__(self) -> "DataSync":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _loop(self, sync_first: bool) -> None:
        next_at = time.monotonic() + (0 if sync_first else self.period_s)
        while not self._stop.wait(max(0.0, next_at - time.monotonic())):
            try:
                self.sync_now()
            except Exception:  # noqa: BLE001 - keep syncing; the round records the error
                log.exception("data sync of %s: round failed", self.service)
            # fixed schedule; a round longer than the period makes the next start at once
            next_at = max(next_at + self.period_s, time.monotonic())

    def _emit(self, kind: str, **fields) -> None:
        if self.events is not None:
            try:
                self.events.emit(kind, **fields)
            except Exception:  # noqa: BLE001 - a broken sink must not stop the sync
                log.exception("event sink failed on %s", kind)

    # --- one round -------------------------------------------------------------------

    def _rsync_argv(self, daemon: RsyncDaemon) -> list[str]:
        argv = ["rsync", "-a", "--stats"]
        if self.checksum:
            argv.append("--checksum")
        if self.delete:
            argv.append("--delete")
        argv += [f"{self.primary.data_dir}/", daemon.url]
        return in_netns(self.primary.netns_path, argv)

    def _push(self, sec: Replica) -> SyncTarget:
        daemon = self._daemons.get(sec.cloudlet)
        if daemon is None:
            return SyncTarget(sec.cloudlet, False, 0.0, error="no rsync daemon (not started)")
        if self._stop.is_set() and self._thread is not None:
            return SyncTarget(sec.cloudlet, False, 0.0, error="stopped")
        try:
            with WireCounter(sec.netns_path) as wire:
                t0 = time.perf_counter()
                stdout, stderr, returncode = self._run_rsync(daemon)
                seconds = time.perf_counter() - t0
        except subprocess.TimeoutExpired:
            return SyncTarget(sec.cloudlet, False, time.perf_counter() - t0,
                              error=f"timed out after {self.timeout_s:g} s")
        if returncode != 0:
            return SyncTarget(sec.cloudlet, False, seconds, wire_bytes=wire.bytes,
                              error=f"rsync exited {returncode}: {stderr.strip()[-300:]}")
        return SyncTarget(sec.cloudlet, True, seconds, parse_rsync_stats(stdout),
                          wire_bytes=wire.bytes)

    def _run_rsync(self, daemon: RsyncDaemon) -> tuple[str, str, int]:
        """(stdout, stderr, exit status) of one push; TimeoutExpired after timeout_s."""
        proc = subprocess.Popen(self._rsync_argv(daemon), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        self._pushing.add(proc)
        try:
            stdout, stderr = proc.communicate(timeout=self.timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate(timeout=10)
            raise
        finally:
            self._pushing.discard(proc)
        return stdout, stderr, proc.returncode

    def sync_now(self) -> SyncRound:
        """Run one round (every secondary at once), record it, emit it, return it."""
        from concurrent.futures import ThreadPoolExecutor

        if not self._daemons:
            self.start_daemons()
        with self._lock:
            started = time.time()
            t0 = time.perf_counter()
            with ThreadPoolExecutor(max_workers=max(1, len(self.secondaries))) as pool:
                targets = list(pool.map(self._push, self.secondaries))
            rnd = SyncRound(len(self.rounds), self.primary.cloudlet, started, time.time(),
                            time.perf_counter() - t0, targets)
            if self._stop.is_set() and not rnd.ok:
                # stop() cut this round short (e.g. a promotion): partial, not a round
                self._emit("sync_aborted", service=self.service, round=rnd.index)
                return rnd
            self.rounds.append(rnd)
        log.info("data sync %s round %d: %d bytes in %.3f s%s", self.service, rnd.index,
                 rnd.bytes, rnd.seconds, "" if rnd.ok else " (FAILED)")
        self._emit("sync_round", service=self.service, **rnd.as_event())
        if self.on_round:
            self.on_round(rnd)
        return rnd

    def wait_rounds(self, n: int, timeout: float) -> list[SyncRound]:
        """Block until at least N rounds in total were recorded; returns all rounds."""
        wait_until(lambda: len(self.rounds) >= n, timeout, interval=0.02,
                   what=f"{n} sync rounds of {self.service}")
        return list(self.rounds)

    def check_coherent(self) -> Coherence:
        """Compare the checksums of every file on the primary with each secondary."""
        with self._lock:
            ref = tree_checksums(self.primary.data_dir)
            diffs = {}
            for sec in self.secondaries:
                d = compare_trees(ref, tree_checksums(sec.data_dir))
                if d:
                    diffs[sec.cloudlet] = d
        return Coherence(not diffs, len(ref), diffs)


def copy_state(service: str, source: Replica, target: Replica, timeout_s: float = 600) -> SyncRound:
    """Copy SOURCE's data volume to TARGET once, over the emulated network (the reactive
    migration's state phase): an rsync daemon in TARGET's namespace, the client in
    SOURCE's. Returns the round (``ok``, bytes by rsync and on TARGET's wire, seconds)."""
    once = DataSync(service, source, [target], period_s=1.0, timeout_s=timeout_s)
    try:
        source.data_dir.mkdir(parents=True, exist_ok=True)
        target.data_dir.mkdir(parents=True, exist_ok=True)
        return once.sync_now()
    finally:
        once.stop()

