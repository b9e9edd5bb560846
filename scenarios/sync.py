"""Data synchronisation of a storage-dependent service: traffic vs staleness per period.

Topology: paper.yaml (s1 - s2 - s3 joined by `mec` links, 25 Mbit/s and 50 ms
RTT; one cloudlet each). The service (``--image``, default busybox) is deployed
proactively with a data volume (``deploy(..., data=True)``) and ``--replicas``
replicas (default 3: one at every site, so every move of the user promotes the
replica at the new site). The Service Manager propagates the PRIMARY's data
directory to the secondaries with rsync over the emulated network every
``period`` seconds (``--periods``, one orchestrator per period on one testbed).

A writer thread stands for the service's own writes: every ``--tick`` s (default
0.1) it overwrites ``state.bin`` with ``--write-kbps`` worth of new content
(``write_kbps * tick / 8`` bytes) and then ``seq.txt`` with ``"SEQ T"`` (its
sequence number and ``time.monotonic()``), always in the CURRENT primary's
directory: when the orchestrator promotes another replica, the writer pauses at
once and, after the measurement below, goes on in the new primary's directory
(the paper's model: data flows from the primary to the secondaries, so writes
the old primary had not yet propagated are lost).

Per period and repetition (``sync.csv``):

* bytes_per_s: wire bytes of the sync rounds (rsync ``--stats``, all
  secondaries together) divided by the time they span, over the steady rounds
  before the move (the first round after a promotion, which catches up, is
  left out); round_s: mean duration of those rounds;
* the user moves to the next site at a random phase of the sync schedule
  (uniform over one period); once the replica there is promoted, the UE fetches
  ``/data/seq.txt`` through the service's virtual IP (then ``/`` to check which
  replica answered). staleness_seq / staleness_s: the writer's latest sequence
  number / timestamp minus those the new primary serves (writes lost at the
  switch and how many seconds of writes they are); age_s: fetch time minus the
  served timestamp; lost_seq: writes the new primary never got, read from its
  directory once the old primary's last round (still in progress at the switch:
  a sync stops after its round) has landed, before the writer goes on there.

Raw: ``rounds.csv`` (every sync round: primary, bytes, duration, start-to-start
interval) and ``raw/events.jsonl``. Figure ``sync.png``: bytes/s and staleness
per period, means with 95% CI and every repetition.

    sudo python3 scenarios/sync.py --reps 5
    sudo python3 scenarios/sync.py --quick                     # periods 1,5; 1 rep
    mec run sync --periods 0.5,1,5,10 --write-kbps 400
"""

from __future__ import annotations

if __name__ == "__main__":  # run as a script: find the checkout and its Python environment
    import _bootstrap  # noqa: F401 (scenarios/ is first on sys.path when a script runs)

import argparse
import logging
import os
import random
import shutil
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

from mec.measure.results import ResultDir, SummarySpec
from scenarios import _common

log = logging.getLogger(__name__)

NAME = "sync"
SERVICE = "store"
DEFAULT_IMAGE = "busybox"
DEFAULT_TOPOLOGY = Path(__file__).resolve().parents[1] / "topologies" / "paper.yaml"
DEFAULT_PERIODS, QUICK_PERIODS = (0.5, 1.0, 5.0, 10.0), (1.0, 5.0)
DEFAULT_REPS, QUICK_REPS = 5, 1
STAMP_FILE, STATE_FILE = "seq.txt", "state.bin"
RAW = "raw"
COLUMNS = ("rep", "period_s", "from_site", "to_site", "old_primary", "new_primary", "served_by",
           "served_from",
           "secondaries", "rounds", "window_s", "bytes", "bytes_per_s", "round_s",
           "latest_seq", "served_seq", "staleness_seq", "staleness_s", "age_s", "lost_seq", "switch_s",
           "t_move")
METRICS = ("bytes_per_s", "round_s", "staleness_s", "staleness_seq", "age_s", "lost_seq",
           "switch_s")
SPEC = SummarySpec(NAME, group_by=("period_s",), metrics=METRICS)
ROUND_COLUMNS = ("period_s", "rep", "round", "primary", "t", "seconds", "bytes", "ok",
                 "interval_s")
ROUNDS_SPEC = SummarySpec("rounds", group_by=("period_s",),
                          metrics=("bytes", "seconds", "interval_s"))
SPECS = (SPEC, ROUNDS_SPEC)  # what `mec report` summarises to redraw the figure
TABLE_METRICS = {
    NAME: (("bytes_per_s", "kB/s", 1e-3), "round_s", "staleness_s",
           ("staleness_seq", "stale seq", 1.0), "age_s", ("lost_seq", "lost seq", 1.0),
           "switch_s"),
    "rounds": (("bytes", "kB/round", 1e-3), ("seconds", "round s", 1.0),
               ("interval_s", "interval s", 1.0)),
}


# ---------------------------------------------------------------------- pure parts
@dataclass(frozen=True)
class Stamp:
    """One write of the service: its sequence number and ``time.monotonic()``."""

    seq: int
    t: float

    def text(self) -> str:
        return f"{self.seq} {self.t:.6f}\n"


def parse_stamp(text: str) -> Optional[Stamp]:
    """The stamp in a ``seq.txt`` body (``"SEQ T"``), None if it is not one (e.g. a 404 page)."""
    parts = (text or "").split()
    if len(parts) != 2:
        return None
    try:
        return Stamp(int(parts[0]), float(parts[1]))
    except ValueError:
        return None


def staleness(latest: Stamp, served: Stamp) -> tuple[int, float]:
    """(writes, seconds) by which SERVED lags behind the writer's LATEST write (>= 0)."""
    if served.seq > latest.seq:
        raise ValueError(f"served seq {served.seq} is newer than the latest write {latest.seq}")
    return latest.seq - served.seq, latest.t - served.t


def steady_rate(rounds: Sequence[Mapping[str, Any]], primary: str, after_seq: int,
                until_t: float) -> dict[str, Any]:
    """Sync traffic of PRIMARY's steady rounds: bytes per second over the time they span.

    ROUNDS are ``sync_round`` event dicts (``seq``, ``t`` = end, ``primary``,
    ``round``, ``bytes``, ``seconds``, ``targets``). The first round of PRIMARY
    after event AFTER_SEQ is the start mark and is not counted (it catches up
    after a promotion); the rounds of the same sync after it (consecutive round
    numbers) that ended by UNTIL_T are; a restarted sync starts a new mark. The fixed schedule makes N
    rounds after the mark span N periods (or N rounds, when a round outlasts
    the period). ``bytes_per_s`` is None with no counted round.
    """
    mine = sorted((r for r in rounds if r.get("primary") == primary and int(r["seq"]) > after_seq
                   and float(r["t"]) <= until_t), key=lambda r: int(r["seq"]))
    out: dict[str, Any] = {"rounds": 0, "window_s": None, "bytes": 0, "bytes_per_s": None,
                           "round_s": None, "secondaries": None}
    if len(mine) < 2:
        return out
    mark, counted = mine[0], []
    for r in mine[1:]:
        if int(r["round"]) == int((counted or [mark])[-1]["round"]) + 1:
            counted.append(r)
        else:  # the sync was restarted (new roles): its first round is the new mark
            mark, counted = r, []
    if not counted:
        return out
    window = float(counted[-1]["t"]) - float(mark["t"])
    total = sum(int(r["bytes"]) for r in counted)
    out.update(rounds=len(counted), window_s=window, bytes=total,
               bytes_per_s=total / window if window > 0 else None,
               round_s=sum(float(r["seconds"]) for r in counted) / len(counted),
               secondaries=len(counted[-1].get("targets") or ()))
    return out


def round_rows(rounds: Sequence[Mapping[str, Any]], period_s: float, rep: int,
               previous: Optional[Mapping[str, Any]] = None) -> list[dict[str, Any]]:
    """Rows of rounds.csv; interval_s = start-to-start time after the same sync's previous round."""
    rows = []
    prev = previous
    for r in sorted(rounds, key=lambda r: int(r["seq"])):
        same = (prev is not None and prev.get("primary") == r.get("primary")
                and int(r["round"]) == int(prev["round"]) + 1)
        rows.append({"period_s": period_s, "rep": rep, "round": int(r["round"]),
                     "primary": r.get("primary"), "t": float(r["t"]),
                     "seconds": float(r["seconds"]), "bytes": int(r["bytes"]),
                     "ok": int(bool(r.get("ok"))),
                     "interval_s": float(r["started"]) - float(prev["started"]) if same else None})
        prev = r
    return rows


def walk(sites: Sequence[str], start: str, n: int) -> list[tuple[str, str]]:
    """N moves bouncing along SITES from START: s1 s2 s3 s2 s1 s2 ..."""
    if len(sites) < 2:
        raise ValueError("a walk needs at least two sites")
    i, step, moves = list(sites).index(start), 1, []
    for _ in range(n):
        if not 0 <= i + step < len(sites):
            step = -step
        moves.append((sites[i], sites[i + step]))
        i += step
    return moves


# ---------------------------------------------------------------------- the writer
class StateWriter:
    """Writes the service's state into the current primary's data directory at a steady rate.

    Every TICK_S: ``state.bin`` (STATE_BYTES of new random content) then
    ``seq.txt`` (:class:`Stamp`), each written to a hidden temporary file and
    renamed, so a reader (rsync, the service) never sees half a file.
    :meth:`pause` stops writing and returns the latest stamp; :meth:`resume`
    goes on in another cloudlet's directory.
    """

    def __init__(self, directory_of: Callable[[str], Path], cloudlet: str, tick_s: float = 0.1,
                 state_bytes: int = 1000):
        if tick_s <= 0 or state_bytes < 0:
            raise ValueError("tick must be > 0 s and the state size >= 0 bytes")
        self.directory_of = directory_of
        self.cloudlet = cloudlet
        self.tick_s = tick_s
        self.state_bytes = state_bytes
        self.latest: Optional[Stamp] = None
        self.writes = 0
        self._lock = threading.Lock()  # held while writing and to pause
        self._paused = False
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def write_once(self) -> Stamp:
        with self._lock:
            directory = self.directory_of(self.cloudlet)
            directory.mkdir(parents=True, exist_ok=True)
            seq = (self.latest.seq + 1) if self.latest else 1
            _replace(directory / STATE_FILE, os.urandom(self.state_bytes))
            stamp = Stamp(seq, round(time.monotonic(), 6))  # as precise as the file
            _replace(directory / STAMP_FILE, stamp.text().encode())
            self.latest = stamp
            self.writes += 1
            return stamp

    def _loop(self) -> None:
        next_at = time.monotonic()
        while not self._stop.wait(max(0.0, next_at - time.monotonic())):
            if not self._paused:
                try:
                    self.write_once()
                except OSError as exc:
                    log.warning("writer: %s", exc)
            next_at = max(next_at + self.tick_s, time.monotonic())

    def start(self) -> "StateWriter":
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="sync-writer", daemon=True)
        self._thread.start()
        return self

    def pause(self) -> Optional[Stamp]:
        """Stop writing (after a write in progress); the latest stamp written."""
        with self._lock:
            self._paused = True
            return self.latest

    def resume(self, cloudlet: str) -> None:
        with self._lock:
            self.cloudlet = cloudlet
            self._paused = False

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None


def _replace(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


# ---------------------------------------------------------------------- figure
def make_plots(run_dir: Path, groups: Mapping[str, list]) -> list[Path]:
    from mec.measure.results import read_rows

    rows = read_rows(run_dir / f"{NAME}.csv")
    if not groups.get(NAME):
        return []
    return [sync_figure(groups[NAME], rows, run_dir / "sync.png", groups.get("rounds") or ())]


def sync_figure(groups: Sequence[Mapping[str, Any]], rows: Sequence[Mapping[str, Any]],
                path: Path, round_groups: Sequence[Mapping[str, Any]] = ()) -> Path:
    """Two panels per period: sync traffic (kB/s) and staleness at the new primary (s).

    ROUND_GROUPS (summary of rounds.csv by period) adds the measured start-to-start
    interval of the rounds to the staleness panel: a round that outlasts the
    period makes the next one start late, so the interval, not the period, bounds
    how fresh a secondary can be.
    """
    import matplotlib.pyplot as plt

    from mec.measure.plots import DPI, PALETTE
    from mec.measure.results import to_number

    periods = sorted({float(g["group"]["period_s"]) for g in groups})
    by_period = {float(g["group"]["period_s"]): g for g in groups}
    fig, axes = plt.subplots(1, 2, figsize=(10, 5.0))
    panels = (("bytes_per_s", 1e-3, "sync traffic between edges (kB/s)", PALETTE[0]),
              ("staleness_s", 1.0, "staleness at the new primary (s)", PALETTE[1]))
    xs = list(range(len(periods)))
    for ax, (metric, f, label, colour) in zip(axes, panels):
        means, lo, hi = [], [], []
        for p in periods:
            s = by_period[p]["metrics"].get(metric) or {}
            m = (s.get("mean") or 0.0) * f
            means.append(m)
            lo.append(m - s["ci95_low"] * f if s.get("ci95_low") is not None else 0.0)
            hi.append(s["ci95_high"] * f - m if s.get("ci95_high") is not None else 0.0)
        bars = ax.bar(xs, means, 0.6, yerr=[[max(0, v) for v in lo], [max(0, v) for v in hi]],
                      capsize=4, color=colour, edgecolor="black", linewidth=0.5, alpha=0.85,
                      error_kw={"elinewidth": 1, "ecolor": "black"}, label="mean, 95% CI")
        for bar, m, h in zip(bars, means, hi):
            ax.annotate(f"{m:.2f}" if m < 10 else f"{m:.1f}", (bar.get_x() + bar.get_width() / 2,
                        m + max(0, h)), xytext=(0, 3), textcoords="offset points",
                        ha="center", va="bottom", fontsize=8)
        pts = [(periods.index(float(r["period_s"])), to_number(r.get(metric)))
               for r in rows if float(r["period_s"]) in periods]
        pts = [(x, v * f) for x, v in pts if v is not None]
        ax.scatter([x + 0.18 for x, _ in pts], [v for _, v in pts], s=12, color="black",
                   zorder=3, label="repetitions")
        if metric == "staleness_s":
            ax.plot(xs, periods, linestyle=":", marker="_", markersize=14, color="0.3",
                    label="sync period")
            intervals = {float(g["group"]["period_s"]): (g["metrics"].get("interval_s") or {})
                         .get("mean") for g in round_groups}
            iv = [(x, intervals.get(p)) for x, p in zip(xs, periods)
                  if intervals.get(p) is not None]
            if iv:
                ax.plot([x for x, _ in iv], [v for _, v in iv], linestyle="--", marker="D",
                        markersize=4, color=PALETTE[3], label="round interval (measured)")
        ax.set_xticks(xs)
        ax.set_xticklabels([f"{p:g} s" for p in periods])
        ax.set_xlabel("sync period")
        ax.set_ylabel(label)
        ax.set_ylim(bottom=0, top=ax.get_ylim()[1] * 1.1)
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
        ax.legend(frameon=False, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16),
                  ncol=2)
    ns = sorted({int(g["n"]) for g in groups})
    n_text = f"n={ns[0]}" if len(ns) == 1 else f"n={ns[0]}-{ns[-1]}"
    fig.suptitle("Data sync of a storage-dependent service, primary -> secondaries over "
                 f"the emulated links ({n_text} per period)", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


# ---------------------------------------------------------------------- the run
def parse_periods(text: str) -> list[float]:
    try:
        periods = [float(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise SystemExit(f"--periods {text!r}: give seconds separated by commas") from None
    if not periods or any(p <= 0 for p in periods) or len(set(periods)) != len(periods):
        raise SystemExit(f"--periods {text!r}: give distinct periods > 0")
    return periods


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--periods", default=None, metavar="LIST",
                        help="sync periods in s (default "
                             f"{','.join(f'{p:g}' for p in DEFAULT_PERIODS)}; --quick: "
                             f"{','.join(f'{p:g}' for p in QUICK_PERIODS)})")
    parser.add_argument("--image", default=None,
                        help=f"the built-in service of this image (default {DEFAULT_IMAGE})")
    _common.add_service_argument(parser)
    parser.add_argument("--policy", default="all", metavar="NAME",
                        help="placement policy (default all: a replica on every cloudlet, so "
                             "every move promotes a replica that has been syncing all along; "
                             "neighbours: replicas follow the user, new ones start empty)")
    parser.add_argument("--replicas", type=int, default=None, metavar="N",
                        help="replicas of a bounded policy (default: one per cloudlet)")
    parser.add_argument("--ue", default=None, help="the user (default: the topology's first UE)")
    parser.add_argument("--write-kbps", type=float, default=80.0, metavar="KBIT/S",
                        help="the service's write rate (default 80: a 1000-byte state "
                             "rewritten every 0.1 s)")
    parser.add_argument("--tick", type=float, default=0.1, metavar="S",
                        help="the writer's period (default 0.1)")
    parser.add_argument("--seed", type=int, default=1,
                        help="seed of the random move phases (default 1)")
    parser.add_argument("--promote-timeout", type=float, default=30.0, metavar="S",
                        help="longest wait for the promotion after a move (default 30)")
    _common.add_common_arguments(parser, DEFAULT_REPS, QUICK_REPS, topology=True)


def run(args: argparse.Namespace) -> int:
    from mec.edge.images import RECIPES
    from mec.measure.progress import Progress
    from topologies.loader import load

    _common.quiet_logs(args)
    reps = _common.reps_of(args, DEFAULT_REPS, QUICK_REPS)
    periods = (parse_periods(args.periods) if args.periods
               else list(QUICK_PERIODS if args.quick else DEFAULT_PERIODS))
    if args.image is not None and args.image not in RECIPES:
        raise SystemExit(f"--image {args.image!r}: choose from {', '.join(RECIPES)}")
    service = _common.service_of(args, DEFAULT_IMAGE)
    if args.service and service.data is None:
        raise SystemExit(f"--service {args.service}: the sync scenario needs a service with "
                         "state (a `data:` path in its file)")
    if args.controller == "none":
        raise SystemExit("--controller none: moves need the Network Manager (use os-ken or ryu)")
    from mec.orchestrator.scheduler import POLICIES

    if args.policy not in POLICIES:
        raise SystemExit(f"--policy {args.policy!r}: choose from {', '.join(sorted(POLICIES))}")
    topo_path = args.topology or DEFAULT_TOPOLOGY
    topo = load(topo_path)
    replicas = args.replicas or len(topo.cloudlets)
    if not 2 <= replicas <= len(topo.cloudlets):
        raise SystemExit(f"--replicas must be 2..{len(topo.cloudlets)} (cloudlets of {topo.name})")
    ues = [u.name for u in topo.ues]
    ue = args.ue or (ues[0] if ues else None)
    if ue not in ues:
        raise SystemExit(f"--ue {ue!r}: the topology's UEs are {ues}")
    if args.write_kbps < 0 or args.tick <= 0:
        raise SystemExit("--write-kbps must be >= 0 and --tick > 0")
    state_bytes = int(round(args.write_kbps * 1000 / 8 * args.tick))
    name = _common.deployment_name(args, service, SERVICE)
    _common.prepare([service.image])
    progress = Progress(reps * len(periods))

    def measure(rd: ResultDir, set_testbed: Callable[[Any], None]) -> None:
        from mec.core.events import EventLog
        from mec.testbed import Testbed

        table = rd.table(NAME, COLUMNS)
        rounds_table = rd.table("rounds", ROUND_COLUMNS)
        (rd.path / RAW).mkdir(exist_ok=True)
        events = EventLog(rd.path / RAW / "events.jsonl")
        rng = random.Random(args.seed)
        try:
            with Testbed(topo, controller=_common.controller_of(args),
                         servers=_common.servers_of(args), events=events) as tb:
                set_testbed(tb)
                progress.note(f"{NAME}: periods {', '.join(f'{p:g} s' for p in periods)} x "
                              f"{reps} rep(s) on {topo.name}, {replicas} replicas of "
                              f"{service.name}, writes {args.write_kbps:g} kbit/s "
                              f"({state_bytes} B every {args.tick:g} s); results in {rd.path}")
                done = 0
                for period in periods:
                    done = one_period(tb, events, period, reps, done, ue, replicas, state_bytes,
                                      args, rng, table, rounds_table, progress, service, name)
        finally:
            events.close()
            wipe_data(topo, name)

    return _common.execute(NAME, args, list(SPECS), measure, make_plots, TABLE_METRICS,
                           config={"topology_path": topo_path, "reps": reps, "periods": periods,
                                   "policy": args.policy,
                                   "replicas": replicas, "ue": ue, "state_bytes": state_bytes,
                                   "service": _common.service_config(service)})


def wipe_data(topo: Any, service: str = SERVICE) -> None:
    """Remove the service's data directories (ours: under the state dir, by prefix)."""
    from mec.service.datasync import data_dir

    for c in topo.cloudlets:
        shutil.rmtree(data_dir(service, c.name), ignore_errors=True)


def _wait_round(events: Any, primary: str, after_seq: int, timeout: float,
                service: str = SERVICE) -> Mapping[str, Any]:
    """The first sync_round of PRIMARY after event AFTER_SEQ (polled)."""
    deadline = time.monotonic() + timeout
    while True:
        for e in events.events("sync_round"):
            if e.seq > after_seq and e.get("primary") == primary and e.get("service") == service:
                return e.to_dict()
        if time.monotonic() > deadline:
            raise TimeoutError(f"no sync round of primary {primary} within {timeout:g} s")
        time.sleep(0.02)


def _wait_sync_start(events: Any, primary: str, after_seq: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not any(e.seq > after_seq and e.get("primary") == primary
                  for e in events.events("sync_start")):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the sync from {primary} did not start within {timeout:g} s")
        time.sleep(0.01)


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def one_period(tb: Any, events: Any, period: float, reps: int, done: int, ue: str,
               replicas: int, state_bytes: int, args: argparse.Namespace, rng: random.Random,
               table: Any, rounds_table: Any, progress: Any, service: Any,
               name: str) -> int:
    """Deploy with PERIOD, run REPS moves, undeploy; returns the count of measurements done.

    A built-in service serves its state over HTTP (``/data/``): the stamp the user
    gets is fetched through the virtual IP. Another service's state is read from the
    new primary's volume right after the promotion (``served_from`` says which)."""
    from mec.service.datasync import data_dir
    from mec.orchestrator import EdgeOrchestrator
    from mec.orchestrator.scheduler import ServiceSpec

    wipe_data(tb.topology, name)
    site_names = list(tb.topology.site_names)
    moves = walk(site_names, tb.network.ue_site[ue], reps)
    node = tb.network.hosts[ue].node
    promoted = threading.Event()
    seen: dict[str, Any] = {}
    writer: Optional[StateWriter] = None

    def on_promote(event: Any) -> None:
        if event.get("service") != name or event.get("error"):
            return
        seen["latest"] = writer.pause() if writer else None
        seen["event"] = event
        promoted.set()

    unsubscribe = events.subscribe(on_promote, "proactive.promote.end")
    last_round_seq = events.events()[-1].seq if events.events() else 0
    prev_round: Optional[Mapping[str, Any]] = None
    try:
        with EdgeOrchestrator(tb, events=events, sync_period_s=period,
                              policy=args.policy) as orch:
            dep = orch.deploy(ServiceSpec(name, service.image, replicas=replicas), ue,
                              strategy="proactive", data=True, service=service)
            primary = dep.replicas.primary.cloudlet
            writer = StateWriter(lambda c: data_dir(name, c), primary, args.tick,
                                 state_bytes).start()
            url = f"http://{dep.vip}:{service.port}"
            for rep, (from_site, to_site) in enumerate(moves, start=1):
                mark = events.events()[-1].seq
                timeout = 2 * period + 60
                first = _wait_round(events, primary, mark, timeout, name)
                _wait_round(events, primary, first["seq"], timeout, name)
                time.sleep(rng.uniform(0, period))  # a random phase of the sync schedule
                promoted.clear()
                t_move = time.monotonic()
                rate = steady_rate([e.to_dict() for e in events.events("sync_round")], primary,
                                   mark, t_move)
                tb.network.move(ue, to_site)
                if not promoted.wait(args.promote_timeout):
                    raise RuntimeError(f"no promotion within {args.promote_timeout:g} s after "
                                       f"{ue} moved {from_site} -> {to_site}")
                t_fetch = time.monotonic()
                new = seen["event"].get("new")
                if service.names_instance:
                    body = node.cmd(["curl", "-s", "-m", "3", f"{url}/data/{STAMP_FILE}"])
                    served_by = node.cmd(["curl", "-s", "-m", "3", f"{url}/"]).strip()
                else:
                    body = _read(data_dir(name, new) / STAMP_FILE)
                    served_by = dep.instance(new)
                # The old primary's round in progress still completes (the Service Manager
                # stops a sync after its round): once the sync from the new primary has
                # started, what the new primary holds is final; the rest was lost.
                _wait_sync_start(events, new, seen["event"].seq, timeout=2 * period + 60)
                kept = parse_stamp(_read(data_dir(name, new) / STAMP_FILE))
                writer.resume(new)
                latest, served = seen["latest"], parse_stamp(body)
                stale = staleness(latest, served) if latest and served else (None, None)
                row = {"rep": rep, "period_s": period, "from_site": from_site, "to_site": to_site,
                       "old_primary": primary, "new_primary": new, "served_by": served_by,
                       "served_from": "http" if service.names_instance else "volume",
                       **rate,
                       "latest_seq": latest.seq if latest else None,
                       "served_seq": served.seq if served else None,
                       "staleness_seq": stale[0], "staleness_s": stale[1],
                       "lost_seq": latest.seq - kept.seq if latest and kept else None,
                       "age_s": t_fetch - served.t if served else None,
                       "switch_s": float(seen["event"].t) - t_move, "t_move": t_move}
                if served is None:
                    log.warning("rep %d: the new primary served no stamp: %r", rep, body[:200])
                table.append(row)
                new_rounds = [e.to_dict() for e in events.events("sync_round")
                              if e.seq > last_round_seq]
                for r in round_rows(new_rounds, period, rep, prev_round):
                    rounds_table.append(r)
                if new_rounds:
                    last_round_seq, prev_round = max(e["seq"] for e in new_rounds), new_rounds[-1]
                done += 1
                progress.line(done, f"period {period:g} s, {primary} -> {new} "
                                    f"({from_site} -> {to_site})", stale[1],
                              stale_writes=stale[0], rate=_rate_text(rate["bytes_per_s"]),
                              served_by=served_by or "?")
                primary = new
    finally:
        unsubscribe()
        if writer is not None:
            writer.stop()
    return done


def _rate_text(bps: Optional[float]) -> str:
    return "?" if bps is None else f"{bps / 1e3:.2f} kB/s"


if __name__ == "__main__":
    sys.exit(_common.script_main(sys.modules[__name__], NAME))
