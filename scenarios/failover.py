"""Failover: the primary's cloudlet crashes, the backup takes over (paper Sec. IV, issue 6).

Topology: paper.yaml (three sites s1 - s2 - s3 joined by `mec` links, 25 Mbit/s
and 50 ms RTT; one cloudlet each). Every repetition builds a FRESH testbed (the
crashed engine is gone for good), deploys the service proactively with
``--replicas`` replicas for the UE at its start site (primary at the UE's site,
backup at the neighbour), starts the user probe on the UE (``--rate`` requests
per second to the service's virtual IP), lets it run ``--warmup`` seconds, then
crashes the PRIMARY's cloudlet (its Docker engine and every container on it are
SIGKILLed), waits for the orchestrator to promote the backup and probes on for
``--after`` seconds.

Per repetition (``failover.csv``), times from the kill, i.e. the moment every
process of the cloudlet is dead (``kill_ms``: how long SIGKILLing them took;
requests still in flight then are lost, and count as failed):

* detect_s: kill -> ``replica.down`` (the Service Manager's health checks: every
  ``--detect-period`` s, down after ``--detect-misses`` misses in a row; the
  knob trades detection time against false alarms, counted as ``false_downs``:
  down reports of replicas that were never killed);
* failover_s: kill -> ``failover.end`` (the Network Manager has re-steered the
  user to the promoted backup; ``reroute_ms`` is the FlowMod + Barrier time);
* interruption_s: the gap without any successful reply at the UE that the kill opened
  (:func:`mec.measure.metrics.gap_at`): it begins at the killed replica's last reply,
  which may reach the UE a few ms after the kill (it was on its way when the cloudlet
  died), and ends at the first reply after that; failed: requests without a 2xx reply;
* served_by: the replica answering requests sent after ``failover.end`` (as the network
  recorded it: the Network Manager's connection ledger, kept as raw/repNN-ledger.json) and
  backup_serves = 1 when that is the former backup only; lat_after_ms: median
  latency after the failover (the backup sits one `mec` link away).

Raw per repetition: ``raw/repNN-probe.csv`` (every request) and
``raw/repNN-events.jsonl`` (every event). Figures: ``failover-timeline.png``
(the repetition with the median interruption: requests coloured by replica,
kill / down / failover marks) and ``failover.png`` (interruption, detection and
failover time per repetition).

    sudo python3 scenarios/failover.py --reps 10
    sudo python3 scenarios/failover.py --quick                  # 2 reps
    mec run failover --replicas 3 --detect-period 0.1 --detect-misses 2
"""

from __future__ import annotations

if __name__ == "__main__":  # run as a script: find the checkout and its Python environment
    import _bootstrap  # noqa: F401 (scenarios/ is first on sys.path when a script runs)

import argparse
import logging
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence

from mec.measure import outcomes
from mec.measure.results import ResultDir, SummarySpec
from scenarios import _common

log = logging.getLogger(__name__)

NAME = "failover"
SERVICE = "svc"
DEFAULT_IMAGE = "busybox"
DEFAULT_TOPOLOGY = Path(__file__).resolve().parents[1] / "topologies" / "paper.yaml"
DEFAULT_REPS, QUICK_REPS = 5, 2
RAW = "raw"
COLUMNS = ("rep", "replicas", "killed", "backup", "outcome", "cause", "detect_period_s",
           "detect_misses", "detect_s", "failover_s", "reroute_ms", "interruption_s",
           "gap_closed", "failed", "requests", "served_by", "backup_serves", "lat_before_ms", "lat_after_ms",
           "false_downs", "kill_ms", "t_kill", "interruption_censored")
METRICS = ("detect_s", "failover_s", "reroute_ms", "interruption_s", "failed", "backup_serves",
           "lat_before_ms", "lat_after_ms", "false_downs")
SPEC = SummarySpec(NAME, group_by=("replicas",), metrics=METRICS)
TABLE_METRICS = {NAME: ("detect_s", "failover_s", ("interruption_s", "interrupt s", 1.0),
                        ("reroute_ms", "reroute ms", 1.0),
                        ("failed", "failed req", 1.0), ("backup_serves", "backup ok", 1.0),
                        ("lat_after_ms", "lat ms after", 1.0))}


def probe_file(rep: int) -> str:
    return f"{RAW}/rep{rep:02d}-probe.csv"


def ledger_file(rep: int) -> str:
    """The Network Manager's connection ledger of the repetition (who answered what)."""
    return f"{RAW}/rep{rep:02d}-ledger.json"


def events_file(rep: int) -> str:
    return f"{RAW}/rep{rep:02d}-events.jsonl"


# ---------------------------------------------------------------------- per-rep numbers
def _first(events: Iterable[Mapping[str, Any]], kind: str, after: float,
           **match: Any) -> Optional[Mapping[str, Any]]:
    found = [e for e in events if e["kind"] == kind and float(e["t"]) >= after
             and all(e.get(k) == v for k, v in match.items())]
    return min(found, key=lambda e: float(e["t"])) if found else None


def rep_metrics(records: Sequence[Any], events: Sequence[Mapping[str, Any]], t_kill: float,
                killed: str, backup: str, service: str = SERVICE) -> dict[str, Any]:
    """One repetition's numbers from the probe RECORDS and the EVENTS (dicts with t, kind).

    Times are seconds after T_KILL (monotonic, the clock of both); None when the
    event never came. ``served_by`` is the replica that answered most requests
    sent after ``failover.end``; ``backup_serves`` is 1 only if the former
    BACKUP answered every one of them.
    """
    from mec.measure import metrics

    down = _first(events, "replica.down", t_kill, cloudlet=killed)
    end = _first(events, "failover.end", t_kill, failed=killed)
    outcome, cause = rep_outcome(records, events, t_kill, killed, end, service)
    false_downs = sum(1 for e in events if e["kind"] == "replica.down"
                      and not (e.get("cloudlet") == killed and float(e["t"]) >= t_kill))
    gap = metrics.gap_at(records, outage_start(records, t_kill, f"{service}-{killed}"))
    served = metrics.served_by_after(records, float(end["t"])) if end else {}
    served_by = max(served, key=served.get) if served else ""
    lat_before = [r.latency_ms for r in records
                  if r.ok and r.latency_ms is not None and r.t_send < t_kill]
    lat_after = [r.latency_ms for r in records if end and r.ok and r.latency_ms is not None
                 and r.t_send >= float(end["t"])]
    return {
        "outcome": outcome,
        "cause": cause,
        "detect_s": float(down["t"]) - t_kill if down else None,
        "failover_s": float(end["t"]) - t_kill if end else None,
        "reroute_ms": end.get("reroute_ms") if end else None,
        "new": end.get("new") if end else None,
        "interruption_s": gap.duration_s if gap else None,
        "gap_closed": int(gap.closed) if gap else None,
        "interruption_censored": int(gap.censored) if gap else None,
        "failed": metrics.failed(records),
        "requests": len(records),
        "served_by": served_by,
        "backup_serves": int(bool(served) and set(served) == {f"{service}-{backup}"}),
        "lat_before_ms": statistics.median(lat_before) if lat_before else None,
        "lat_after_ms": statistics.median(lat_after) if lat_after else None,
        "false_downs": false_downs,
    }


def outage_start(records: Sequence[Any], t_kill: float, instance: str) -> float:
    """When the user lost the killed INSTANCE: T_KILL, or its last successful reply
    if that reached the UE later (sent just before the cloudlet died: without this,
    the gap "spanning the kill" could be the one between two of its last replies)."""
    late = [r.t_reply for r in records if r.ok and r.replica == instance
            and r.t_reply is not None and r.t_reply > t_kill]
    return max([t_kill, *late])


def rep_outcome(records: Sequence[Any], events: Sequence[Mapping[str, Any]], t_kill: float,
                killed: str, end: Optional[Mapping[str, Any]],
                service: str = SERVICE) -> tuple[str, str]:
    """(outcome, cause) of one repetition (names of `mec.measure.outcomes`).

    ``failed``: the orchestrator said the failover was impossible or its handling
    raised; ``no_failover``: no ``failover.end`` came; ``not_served``: the promoted
    replica never answered a request sent after it; ``wrong_replica``: another
    instance answered one of them; else ``ok``.
    """
    from mec.measure import metrics

    impossible = _first(events, "failover.impossible", t_kill, failed=killed)
    error = next((e for e in sorted(events, key=lambda e: float(e["t"]))
                  if e["kind"] == "error" and e.get("job") == "down"
                  and float(e["t"]) >= t_kill), None)
    if end is None:
        if impossible is not None:
            return outcomes.FAILED, f"failover impossible: {impossible.get('reason')}"
        if error is not None:
            return outcomes.FAILED, f"failover failed: {error.get('error')}"
        return outcomes.NO_FAILOVER, f"no failover after {killed} was killed"
    new = f"{service}-{end.get('new')}"
    served = metrics.served_by_after(records, float(end["t"]))
    if not served.get(new):
        return outcomes.NOT_SERVED, f"no reply from {new} after the failover"
    others = sum(n for rep, n in served.items() if rep != new)
    if others:
        return outcomes.WRONG_REPLICA, f"{others} replies from another instance than {new}"
    return outcomes.OK, ""


def timeline_marks(events: Sequence[Mapping[str, Any]], t_kill: float,
                   killed: str) -> list[dict[str, Any]]:
    """The events drawn on the timeline: the kill, the down report, the failover's end."""
    marks = [{"t": t_kill, "kind": "kill", "label": f"{killed} killed"}]
    down = _first(events, "replica.down", t_kill, cloudlet=killed)
    end = _first(events, "failover.end", t_kill, failed=killed)
    close = down is not None and end is not None and float(end["t"]) - float(down["t"]) < 0.25
    if down:  # next to the failover's mark, one label says both (they would overlap)
        marks.append({"t": float(down["t"]), "kind": "replica.down",
                      "label": " " if close else "down"})
    if end:
        marks.append({"t": float(end["t"]), "kind": "failover.end",
                      "label": ("down, " if close else "") + f"-> {end.get('new')}"})
    return marks


# ---------------------------------------------------------------------- figures
def make_plots(run_dir: Path, groups: Mapping[str, list]) -> list[Path]:
    from mec.core.events import read as read_events
    from mec.measure.plots import timeline
    from mec.measure.probelog import read_csv
    from mec.measure.results import read_rows, to_number

    rows = [r for r in read_rows(run_dir / f"{NAME}.csv") if to_number(r.get("interruption_s"))
            is not None]
    out = []
    if rows:
        ordered = sorted(rows, key=lambda r: to_number(r["interruption_s"]))
        median = ordered[(len(ordered) - 1) // 2]
        rep = int(median["rep"])
        probe, evfile = run_dir / probe_file(rep), run_dir / events_file(rep)
        if probe.exists() and evfile.exists():
            t_kill = float(median["t_kill"])
            events = [e.to_dict() for e in read_events(evfile)]
            records = read_csv(probe)
            out.append(timeline(
                records, timeline_marks(events, t_kill, median["killed"]),
                run_dir / "failover-timeline.png",
                title=f"Failover, repetition {rep} (the median one): {median['killed']} killed, "
                      f"backup {median['backup']} promoted\ndetected after "
                      f"{_num(median['detect_s'])} s, failover after {_num(median['failover_s'])} s, "
                      f"interruption at the UE {_num(median['interruption_s'])} s"))
        out.append(per_rep_figure(rows, run_dir / "failover.png"))
    return out


def _num(text: Any) -> str:
    from mec.measure.results import to_number

    v = to_number(text)
    return "?" if v is None else f"{v:.2f}"


def per_rep_figure(rows: Sequence[Mapping[str, Any]], path: Path) -> Path:
    """Interruption at the UE per repetition (bars), detection and failover time (marks)."""
    import matplotlib.pyplot as plt

    from mec.core.stats import summarize
    from mec.measure.plots import DPI, PALETTE
    from mec.measure.results import to_number

    reps = [int(r["rep"]) for r in rows]
    inter = [to_number(r["interruption_s"]) for r in rows]
    fig, ax = plt.subplots(figsize=(max(6.5, 0.5 * len(rows) + 3), 4.8))
    ax.bar(reps, inter, 0.6, color=PALETTE[0], edgecolor="black", linewidth=0.5,
           label="interruption at the UE")
    for key, colour, marker, label in (("detect_s", PALETTE[1], "v", "kill -> replica.down"),
                                       ("failover_s", PALETTE[3], "o", "kill -> failover.end")):
        pts = [(rp, to_number(r.get(key))) for rp, r in zip(reps, rows)
               if to_number(r.get(key)) is not None]
        ax.scatter([p[0] for p in pts], [p[1] for p in pts], color=colour, marker=marker,
                   zorder=3, edgecolors="black", linewidths=0.5, label=label)
    s = summarize(inter)
    if s["n"]:
        ax.axhline(s["mean"], color="0.3", linestyle="--", linewidth=1,
                   label=f"mean interruption {s['mean']:.2f} s")
        if s["ci95_low"] is not None:
            ax.axhspan(s["ci95_low"], s["ci95_high"], color="0.5", alpha=0.15,
                       label="95% CI of the mean")
    policy = rows[0]
    ax.set_title(f"Failover of the primary's cloudlet, {len(rows)} repetition(s)\n"
                 f"health check every {to_number(policy['detect_period_s']):g} s, down after "
                 f"{policy['detect_misses']} misses; {policy['replicas']} replicas", fontsize=10)
    ax.set_xlabel("repetition")
    ax.set_ylabel("time (s)")
    ax.set_xticks(reps)
    ax.set_ylim(bottom=0, top=ax.get_ylim()[1] * 1.15)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    ax.legend(frameon=False, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14),
              ncol=3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


# ---------------------------------------------------------------------- the run
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--image", default=None,
                        help=f"the built-in service of this image (default {DEFAULT_IMAGE})")
    _common.add_service_argument(parser)
    parser.add_argument("--replicas", type=int, default=2, metavar="N",
                        help="replicas deployed: primary, backup, secondaries (default 2)")
    parser.add_argument("--policy", default="neighbours", metavar="NAME",
                        help="placement policy of the orchestrator (default neighbours)")
    parser.add_argument("--ue", default=None, help="the user (default: the topology's first UE)")
    parser.add_argument("--rate", type=float, default=200.0, metavar="REQ/S",
                        help="probe requests per second (default 200)")
    parser.add_argument("--warmup", type=float, default=None, metavar="S",
                        help="probing before the kill (default 2; --quick: 1)")
    parser.add_argument("--after", type=float, default=None, metavar="S",
                        help="probing after the failover (default 2; --quick: 1)")
    parser.add_argument("--detect-period", type=float, default=0.2, metavar="S",
                        help="health check period of the Service Manager (default 0.2)")
    parser.add_argument("--detect-misses", type=int, default=3, metavar="N",
                        help="missed checks in a row before a replica is down (default 3)")
    parser.add_argument("--detect-timeout", type=float, default=0.5, metavar="S",
                        help="timeout of one health check (default 0.5)")
    parser.add_argument("--failover-timeout", type=float, default=20.0, metavar="S",
                        help="longest wait for the failover after the kill (default 20)")
    _common.add_common_arguments(parser, DEFAULT_REPS, QUICK_REPS, topology=True)


def run(args: argparse.Namespace) -> int:
    from mec.edge.images import RECIPES
    from mec.measure.progress import Progress
    from topologies.loader import load

    _common.quiet_logs(args)
    reps = _common.reps_of(args, DEFAULT_REPS, QUICK_REPS)
    if args.image is not None and args.image not in RECIPES:
        raise SystemExit(f"--image {args.image!r}: choose from {', '.join(RECIPES)}")
    service = _common.service_of(args, DEFAULT_IMAGE)
    topo_path = args.topology or DEFAULT_TOPOLOGY
    topo = load(topo_path)
    n_cloudlets = len(topo.cloudlets)
    from mec.orchestrator.scheduler import POLICIES

    if args.policy not in POLICIES:
        raise SystemExit(f"--policy {args.policy!r}: choose from {', '.join(sorted(POLICIES))}")
    if not 2 <= args.replicas <= n_cloudlets:
        raise SystemExit(f"--replicas must be 2..{n_cloudlets} (cloudlets of {topo.name})")
    ues = [u.name for u in topo.ues]
    ue = args.ue or (ues[0] if ues else None)
    if ue not in ues:
        raise SystemExit(f"--ue {ue!r}: the topology's UEs are {ues}")
    if args.controller == "none":
        raise SystemExit("--controller none: failover needs the Network Manager to re-steer "
                         "the user (use os-ken or ryu)")
    if args.detect_period <= 0 or args.detect_misses < 1 or args.detect_timeout <= 0:
        raise SystemExit("--detect-period and --detect-timeout must be > 0, --detect-misses >= 1")
    warmup = args.warmup if args.warmup is not None else (1.0 if args.quick else 2.0)
    after = args.after if args.after is not None else (1.0 if args.quick else 2.0)
    _common.prepare([service.image])
    progress = Progress(reps)

    def measure(rd: ResultDir, set_testbed: Callable[[Any], None]) -> None:
        table = rd.table(NAME, COLUMNS)
        (rd.path / RAW).mkdir(exist_ok=True)
        progress.note(f"{NAME}: {reps} rep(s) on {topo.name}, {args.replicas} replicas of "
                      f"{service.name}, health check {args.detect_period:g} s x "
                      f"{args.detect_misses}; results in {rd.path}")
        for rep in range(1, reps + 1):
            row = one_repetition(rd, rep, topo, ue, args, warmup, after,
                                 set_testbed, service)
            table.append(row)
            if row["failover_s"] is None:
                progress.line(rep, f"kill {row['killed']}: {row['outcome'].upper()} within "
                                   f"{args.failover_timeout:g} s ({row['cause']})",
                              failed=row["failed"])
                continue
            bad = "" if row["outcome"] == outcomes.OK else (
                f" {row['outcome'].upper()} ({row['cause']})")
            progress.line(rep, f"kill {row['killed']} -> {row['served_by'] or '?'}{bad}",
                          row["interruption_s"], detect=row["detect_s"],
                          failover=row["failover_s"], failed=row["failed"])

    return _common.execute(NAME, args, [SPEC], measure, make_plots, TABLE_METRICS,
                           config={"topology_path": topo_path, "reps": reps, "ue": ue,
                                   "policy": args.policy,
                                   "warmup_s": warmup, "after_s": after,
                                   "service": _common.service_config(service)})


def one_repetition(rd: ResultDir, rep: int, topo: Any, ue: str, args: argparse.Namespace,
                   warmup: float, after: float,
                   set_testbed: Optional[Callable[[Any], None]],
                   service: Any) -> dict[str, Any]:
    """Fresh testbed, deploy, probe, kill the primary's cloudlet, wait, measure."""
    from mec.core.events import EventLog
    from mec.orchestrator import EdgeOrchestrator
    from mec.measure.probe import ProbeProcess
    from mec.orchestrator.scheduler import ServiceSpec
    from mec.service.manager import HealthPolicy
    from mec.testbed import Testbed

    events = EventLog(rd.path / events_file(rep))
    health = HealthPolicy(period_s=args.detect_period, timeout_s=args.detect_timeout,
                          failures_to_down=args.detect_misses)
    try:
        with Testbed(topo, controller=_common.controller_of(args),
                     servers=_common.servers_of(args),
                     events=events) as tb:
            if set_testbed is not None:
                set_testbed(tb)
            with EdgeOrchestrator(tb, events=events, health=health, policy=args.policy) as orch:
                name = _common.deployment_name(args, service, SERVICE)
                dep = orch.deploy(ServiceSpec(name, service.image, cpus=service.cpus or 0.0,
                                              memory_mb=service.memory_mb or 0,
                                              replicas=args.replicas), ue,
                                  strategy="proactive", service=service)
                killed = dep.replicas.primary.cloudlet
                backup = dep.replicas.backup.cloudlet
                probe = ProbeProcess(tb.network.hosts[ue].node,
                                     _common.probe_target(service, dep.vip),
                                     rd.path / probe_file(rep),
                                     rate=args.rate, timeout=1.0, watchdog=tb.watchdog)
                with probe:
                    time.sleep(warmup)  # the length of the run before the kill, not a measure
                    t_start = time.monotonic()
                    tb.network.fail_cloudlet(killed)
                    t_kill = time.monotonic()  # every process of the cloudlet is dead now
                    events.emit("kill", cloudlet=killed, kill_ms=(t_kill - t_start) * 1000)
                    try:
                        events.wait_for("failover.end", timeout=args.failover_timeout)
                    except TimeoutError:
                        log.warning("rep %d: no failover within %g s", rep, args.failover_timeout)
                    time.sleep(after)
                    records = probe.stop()
                records = _common.replica_identity(tb, dep, ue, records,
                                                   rd.path / ledger_file(rep)).records
                snapshot = [e.to_dict() for e in events.events()]
    finally:
        events.close()
    m = rep_metrics(records, snapshot, t_kill, killed, backup, service=name)
    row = {k: v for k, v in m.items() if k in COLUMNS}
    row.update(rep=rep, replicas=args.replicas, killed=killed, backup=backup,
               detect_period_s=args.detect_period, detect_misses=args.detect_misses,
               t_kill=t_kill, kill_ms=(t_kill - t_start) * 1000)
    return row


if __name__ == "__main__":
    sys.exit(_common.script_main(sys.modules[__name__], NAME))
