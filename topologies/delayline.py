"""A userspace delay line: holds packets of one NFQUEUE for a delay, drops some.

This is the delay/jitter/loss element used where the kernel has no ``sch_netem``
(see docs/platform.md). It is started once per direction of a shaped link, inside
the network namespace of a delay hop::

    python -m topologies.delayline --queue N --delay-ms D --jitter-ms J \
        --loss-pct L --seed S

``D``, ``J`` and ``L`` are ONE-WAY values (the link halves the round-trip
``delay_ms``/``jitter_ms`` of its parameters before starting a line per direction).

How a verdict is given later: NetfilterQueue 1.1.0 keeps the packet id and the
queue handle inside the ``Packet`` object, so ``accept()`` may be called after the
callback has returned (only the payload would need ``retain()``; the line binds in
metadata-only mode and never needs it). The callback therefore only stamps each
packet with its release time and appends it to a FIFO; a single-threaded loop waits
with ``select`` on the queue's netlink socket (``get_fd()``) with a timeout equal to
the time until the head packet is due, reads new packets with ``run(block=False)``,
and accepts every packet whose time has come.

Jitter never reorders packets: a packet's release time is
``max(previous release, arrival + delay + jitter)`` (see :func:`release_time`), so
release times are non-decreasing and a deque (not a heap) keeps them in order.

Protocol with the caller: after the queue is bound the process writes one line
``READY queue=N pid=P`` on stdout. On SIGTERM/SIGINT it accepts the packets still
held, unbinds, logs its counters and writes ``STATS {json}`` on stdout, then exits 0.

This Python line is the FALLBACK. The line links start (:func:`line_command`) is the
compiled one, ``topologies/delayline-c/delayline.c`` built by ``scripts/setup.sh`` into
``.venv/bin/mec-delayline`` (same flags, protocol and release rule; it keeps up with
1 Gbit/s where this one carries ~350 Mbit/s), whenever that binary exists and was
built from the current source. ``MEC_DELAYLINE=python|compiled`` forces one.
"""

from __future__ import annotations

import argparse
import collections
import json
import logging
import os
import random
import select
import signal
import sys
import hashlib
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Deque, List, Optional, Sequence, Tuple

from mec.core import config

LOG = logging.getLogger("topologies.delayline")

#: Packets the kernel may hold for this queue awaiting a verdict. It must exceed
#: the packets in flight inside the line (rate * delay / packet size): at
#: 1 Gbit/s and 25 ms one-way that is ~2100 MTU-sized packets.
DEFAULT_MAX_LEN = 8192

#: Source of the compiled line, and where scripts/setup.sh builds it (with the
#: sha256 of the source it was built from beside it, in BINARY + ".sha256").
COMPILED_SOURCE = Path(__file__).resolve().parent / "delayline-c" / "delayline.c"
COMPILED_BINARY = config.REPO_DIR / ".venv" / "bin" / "mec-delayline"
#: Forces the line: "python" or "compiled" (an unusable forced line is an error).
ENV_LINE = "MEC_DELAYLINE"
LINES = ("compiled", "python")


class NoDelayLine(RuntimeError):
    """The delay line asked for (MEC_DELAYLINE) cannot run here."""


def compiled_problem() -> Optional[str]:
    """Why the compiled line cannot be used (None when it can)."""
    binary = COMPILED_BINARY
    if not os.access(binary, os.X_OK):
        return f"{binary} not built (scripts/setup.sh compiles {COMPILED_SOURCE.name})"
    try:
        built_from = Path(f"{binary}.sha256").read_text().strip()
        source = hashlib.sha256(COMPILED_SOURCE.read_bytes()).hexdigest()
    except OSError as exc:
        return f"cannot check that {binary} is up to date: {exc}"
    if built_from != source:
        return f"{binary} was built from an older {COMPILED_SOURCE.name}: rerun scripts/setup.sh"
    return None


def line_kind() -> str:
    """Which delay line links start: "compiled" when usable, else "python" (see ENV_LINE)."""
    forced = os.environ.get(ENV_LINE, "").strip().lower()
    problem = compiled_problem()
    if forced:
        if forced not in LINES:
            raise NoDelayLine(f"{ENV_LINE}={forced!r}: use one of {LINES}")
        if forced == "compiled" and problem:
            raise NoDelayLine(f"{ENV_LINE}=compiled but {problem}")
        return forced
    if problem:
        LOG.debug("compiled delay line unusable (%s): using the Python line", problem)
    return "python" if problem else "compiled"


def line_command() -> Tuple[List[str], str]:
    """The argv (before the flags) of the delay line to start, and its kind."""
    kind = line_kind()
    if kind == "compiled":
        return [str(COMPILED_BINARY)], kind
    return [sys.executable, "-m", "topologies.delayline"], kind


def release_time(
    arrival: float, delay: float, jitter_sample: float, previous_release: float
) -> float:
    """When a packet that arrived at ``arrival`` may leave (all in seconds).

    The packet is held ``delay + jitter_sample`` (never less than zero), but never
    leaves before the packet ahead of it in the same queue, so jitter spreads the
    delay without reordering.
    """
    return max(previous_release, arrival + max(0.0, delay + jitter_sample))


@dataclass
class DelayLineStats:
    """Counters a delay line reports when it stops."""

    queue: int
    received: int = 0
    accepted: int = 0
    dropped: int = 0
    max_held: int = 0
    #: packets released more than 1 ms after their due time, and the worst lateness
    late: int = 0
    max_late_ms: float = 0.0
    #: which line produced these counters (the compiled one says "compiled")
    line: str = "python"


class DelayScheduler:
    """Pure scheduling state of one line: loss draw, jitter draw and FIFO release.

    ``submit(packet, now)`` returns False when the packet is to be dropped,
    otherwise keeps it; ``due(now)`` pops the packets whose release time has come;
    ``next_due()`` is the release time of the head packet (None when empty).
    Kept free of netfilter so it is unit-testable.
    """

    def __init__(
        self,
        delay_s: float,
        jitter_s: float = 0.0,
        loss_pct: float = 0.0,
        rng: Optional[random.Random] = None,
    ) -> None:
        if delay_s < 0 or jitter_s < 0 or not 0 <= loss_pct <= 100:
            raise ValueError("delay and jitter must be >= 0 and loss in [0, 100]")
        self.delay_s = delay_s
        self.jitter_s = jitter_s
        self.loss = loss_pct / 100.0
        self.rng = rng or random.Random()
        self.held: Deque[Tuple[float, object]] = collections.deque()
        self._last_release = float("-inf")

    def submit(self, packet: object, now: float) -> bool:
        if self.loss and self.rng.random() < self.loss:
            return False
        jitter = self.rng.gauss(0.0, self.jitter_s) if self.jitter_s else 0.0
        self._last_release = release_time(now, self.delay_s, jitter, self._last_release)
        self.held.append((self._last_release, packet))
        return True

    def next_due(self) -> Optional[float]:
        return self.held[0][0] if self.held else None

    def due(self, now: float) -> list:
        return [p for _, p in self.due_with_times(now)]

    def due_with_times(self, now: float) -> list:
        """Pop the due packets as (release time, packet)."""
        out = []
        held = self.held
        while held and held[0][0] <= now:
            out.append(held.popleft())
        return out


class DelayLine:
    """Binds one NFQUEUE and runs the select/timer loop around a DelayScheduler."""

    def __init__(
        self,
        queue: int,
        scheduler: DelayScheduler,
        max_len: int = DEFAULT_MAX_LEN,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.queue = queue
        self.scheduler = scheduler
        self.max_len = max_len
        self.clock = clock
        self.stats = DelayLineStats(queue=queue)
        self._stop = False

    def _on_packet(self, packet) -> None:  # called from inside nfq.run()
        st = self.stats
        st.received += 1
        if self.scheduler.submit(packet, self.clock()):
            held = len(self.scheduler.held)
            if held > st.max_held:
                st.max_held = held
        else:
            packet.drop()
            st.dropped += 1

    def _release(self, now: float) -> None:
        st = self.stats
        for due, packet in self.scheduler.due_with_times(now):
            packet.accept()
            st.accepted += 1
            late = now - due
            if late > 0.001 and now != float("inf"):
                st.late += 1
                if late * 1e3 > st.max_late_ms:
                    st.max_late_ms = round(late * 1e3, 3)

    def run(self, ready_out=sys.stdout) -> DelayLineStats:
        from netfilterqueue import COPY_META, NetfilterQueue  # only needed here

        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        os.set_blocking(wake_r, False)
        old_fd = signal.set_wakeup_fd(wake_w)

        def _stop(_signum, _frame) -> None:
            self._stop = True

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)

        nfq = NetfilterQueue()
        nfq.bind(self.queue, self._on_packet, max_len=self.max_len, mode=COPY_META)
        fd = nfq.get_fd()
        ready_out.write(f"READY queue={self.queue} pid={os.getpid()}\n")
        ready_out.flush()
        LOG.info(
            "queue %d bound: delay %.3f ms, jitter sd %.3f ms, loss %.3f %%",
            self.queue,
            self.scheduler.delay_s * 1e3,
            self.scheduler.jitter_s * 1e3,
            self.scheduler.loss * 100,
        )
        clock = self.clock
        try:
            while not self._stop:
                head = self.scheduler.next_due()
                timeout = None if head is None else max(0.0, head - clock())
                readable, _, _ = select.select([fd, wake_r], [], [], timeout)
                if fd in readable:
                    nfq.run(block=False)
                if wake_r in readable:
                    try:
                        os.read(wake_r, 512)
                    except BlockingIOError:
                        pass
                self._release(clock())
        finally:
            # Let the packets still held go rather than lose them at shutdown.
            self._release(float("inf"))
            nfq.unbind()
            signal.set_wakeup_fd(old_fd)
            os.close(wake_r)
            os.close(wake_w)
        LOG.info("queue %d stopped: %s", self.queue, asdict(self.stats))
        return self.stats


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m topologies.delayline",
        description="Hold NFQUEUE packets for a one-way delay (+ normal jitter), drop some.",
    )
    p.add_argument("--queue", type=int, required=True, help="NFQUEUE number to bind")
    p.add_argument("--delay-ms", type=float, default=0.0, help="one-way delay")
    p.add_argument("--jitter-ms", type=float, default=0.0, help="sd of the one-way delay")
    p.add_argument("--loss-pct", type=float, default=0.0, help="drop probability in %%")
    p.add_argument("--seed", type=int, default=None, help="random seed (loss, jitter)")
    p.add_argument("--realtime", action="store_true",
                   help="run with SCHED_FIFO priority 1 so other load delays releases less")
    p.add_argument("--max-len", type=int, default=DEFAULT_MAX_LEN,
                   help="kernel queue length (packets awaiting a verdict)")
    return p.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr,
        format="%(asctime)s %(levelname)s delayline[%(process)d]: %(message)s",
    )
    if args.realtime:
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
        except OSError as exc:
            LOG.warning("cannot use SCHED_FIFO (%s): running with normal priority", exc)
    scheduler = DelayScheduler(
        args.delay_ms / 1e3, args.jitter_ms / 1e3, args.loss_pct, random.Random(args.seed)
    )
    stats = DelayLine(args.queue, scheduler, max_len=args.max_len).run()
    sys.stdout.write("STATS " + json.dumps(asdict(stats)) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
