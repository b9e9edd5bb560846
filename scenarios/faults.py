"""Faults under a moving, probed user: is each one seen, survived, and recorded honestly?

The resilience table of the testbed. Each fault runs on a FRESH testbed
(paper.yaml by default: three sites s1 - s2 - s3, one cloudlet each, the cloud
at s1) with the service deployed for the UE at its start site, the user probe
sending ``--rate`` requests per second to the service's virtual IP, and the
testbed's watchdog on. After ``--warmup`` seconds the fault is injected, the UE
moves to the neighbouring site where the fault needs a move, and the probe goes
on for ``--after`` seconds. The faults (``--faults``, default all):

* controller: the Network Manager is SIGKILLed and the UE moves at once. The
  watchdog restarts it on the same ports with the run's state; the move is only
  seen (and the user re-steered) once the switches are back (proactive, 3 replicas);
* engine: the primary cloudlet's Docker engine and every container on it are
  SIGKILLed, as an unplanned crash (not the failover scenario's planned one);
  the Service Manager's health checks promote the backup (proactive, 2 replicas);
* delay-line: one delay line of the s1 - s2 link is SIGKILLed while the user,
  moved to s2, is still served by the single replica at s1 across that link
  (proactive, 1 replica): the link black-holes, nothing can bring it back;
* registry: the cloud's image registry is SIGKILLed, then the UE moves and the
  reactive migration must pull the image from it: the migration fails and the
  old instance keeps serving across the backbone;
* bad-image: the image cached at the new site is replaced by one that cannot
  start (no file system, no command), then the UE moves (reactive, image
  cached): the new instance cannot start, the old one keeps serving.

Per fault (``faults.csv``; times in seconds from the fault: the kill, or for
bad-image the UE's attach at the new site):

* detected_s: when the watchdog saw the death (for bad-image: when the
  orchestrator reported the failed migration); missing when nobody noticed;
* restarted, recovery_s: whether the watchdog brought the component back, and
  how long after it saw the death;
* served_again_s: the first successful reply to a request sent after the fault;
  missing when the user was never served again within the window;
* interruption_s: the longest time without successful replies from the fault on
  (the gap spanning the fault, or a later one, e.g. at the move made under it),
  ``interruption_censored`` 1 when it was still open at the end (then it is at
  least that long); failed: requests sent from the fault on without a
  successful reply;
* outcome, cause: what the results of a normal run would have recorded for the
  move made under the fault (`mec.measure.outcomes`; for engine: ``ok`` when the
  failover ended, else ``no_failover``); valid: 0 when a component died and was
  not brought back, i.e. a normal run would have been marked invalid.

Outcomes other than ok are the point of this scenario: they do not make it exit
non-zero (a fault that could not be injected or a broken run does).

    sudo mec run faults --quick --json
    sudo python3 scenarios/faults.py --faults controller,engine --reps 3
"""

from __future__ import annotations

if __name__ == "__main__":  # run as a script: find the checkout and its Python environment
    import _bootstrap  # noqa: F401 (scenarios/ is first on sys.path when a script runs)

import argparse
import io
import logging
import os
import signal
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

from mec.measure import outcomes
from mec.measure.results import ResultDir, SummarySpec
from scenarios import _common

log = logging.getLogger(__name__)

NAME = "faults"
SERVICE = "svc"
DEFAULT_IMAGE = "busybox"
DEFAULT_TOPOLOGY = Path(__file__).resolve().parents[1] / "topologies" / "paper.yaml"
DEFAULT_REPS, QUICK_REPS = 1, 1
RAW = "raw"
COLUMNS = ("fault", "rep", "strategy", "target", "detected_s", "restarted", "recovery_s",
           "served_again_s", "interruption_s", "interruption_censored", "failed", "requests",
           "outcome", "cause", "valid", "t_fault")
METRICS = ("detected_s", "recovery_s", "served_again_s", "interruption_s", "failed")
SPEC = SummarySpec(NAME, group_by=("fault",), metrics=METRICS)
TABLE_METRICS = {NAME: ("detected_s", "recovery_s", "served_again_s", "interruption_s",
                        ("failed", "failed req", 1.0))}


@dataclass(frozen=True)
class Plan:
    """How the service is deployed for a fault, and whether the UE moves after it."""

    strategy: str
    replicas: int
    image_source: str = "registry"
    move: bool = True


PLANS: dict[str, Plan] = {
    "controller": Plan("proactive", 3),
    "engine": Plan("proactive", 2, move=False),
    "delay-line": Plan("proactive", 1),
    "registry": Plan("reactive", 1, "registry"),
    "bad-image": Plan("reactive", 1, "cached"),
}
FAULTS = tuple(PLANS)


# ---------------------------------------------------------------------- injecting
@dataclass
class Fault:
    """What was done: the watched component hit (or the instance), and when (monotonic)."""

    target: str
    t: float


def _kill(pid: int) -> float:
    os.kill(pid, signal.SIGKILL)
    return time.monotonic()


def kill_controller(tb: Any, dep: Any, next_site: str) -> Fault:
    return Fault("network-manager", _kill(tb.controller.proc.pid))


def kill_primary_engine(tb: Any, dep: Any, next_site: str) -> Fault:
    cloudlet = dep.replicas.primary.cloudlet
    tb.network.engine(cloudlet).kill()  # not fail_cloudlet(): this crash is not planned
    return Fault(f"engine {cloudlet}", time.monotonic())


def kill_backbone_line(tb: Any, dep: Any, next_site: str) -> Fault:
    """SIGKILL one delay line of the link between the primary's site and NEXT_SITE."""
    net = tb.network
    here = net.switches[dep.replicas.primary.site]
    there = net.switches[next_site]
    link = next(l for l in net.links if l.hop and l.hop.lines
                and {l.intf_a.node, l.intf_b.node} == {here, there})
    line = link.hop.lines[0]
    return Fault(f"delay line {link.name} {line.direction} (queue {line.queue})",
                 _kill(line.pid))


def kill_registry(tb: Any, dep: Any, next_site: str) -> Fault:
    return Fault("registry", _kill(tb.network.registry.process.pid))


def break_image(tb: Any, dep: Any, next_site: str) -> Fault:
    """Replace the image cached at NEXT_SITE's cloudlet by one that cannot start.

    The fault happens at the move (the launch); its time is set by the caller."""
    cloudlet = tb.topology.site(next_site).cloudlets[0].name
    engine = tb.network.engine(cloudlet)
    empty = io.BytesIO()
    with tarfile.open(fileobj=empty, mode="w"):
        pass  # an image with no files and no command
    proc = subprocess.run(["docker", "-H", engine.base_url, "import", "-", dep.image_ref],
                          input=empty.getvalue(), capture_output=True, timeout=60)
    if proc.returncode != 0:
        raise RuntimeError(f"could not break the image on {cloudlet}: "
                           f"{proc.stderr.decode(errors='replace')[-300:]}")
    return Fault(f"instance {dep.instance(cloudlet)}", float("nan"))


INJECT: dict[str, Callable[[Any, Any, str], Fault]] = {
    "controller": kill_controller,
    "engine": kill_primary_engine,
    "delay-line": kill_backbone_line,
    "registry": kill_registry,
    "bad-image": break_image,
}


# ---------------------------------------------------------------------- per-fault numbers
def fault_row(fault: str, plan: Plan, hit: Fault, records: Sequence[Any],
              events: Sequence[Any], deaths: Sequence[Any], end: float,
              move_outcome: Optional[tuple[str, str]]) -> dict[str, Any]:
    """One fault's numbers from the probe RECORDS, the EVENTS (with ``t`` and ``kind``)
    and the watchdog's DEATHS, up to END. MOVE_OUTCOME is the (outcome, cause) the
    move under the fault got; None when the fault has no move (engine)."""
    from mec.measure import metrics

    t = hit.t
    death = next((d for d in deaths if d.name == hit.target), None)
    if death is not None:
        detected = death.t_detected - t
    else:
        failed_ev = next((e for e in events if e.kind == "migration.failed" and e.t >= t), None)
        detected = failed_ev.t - t if failed_ev is not None else None
    after = [g for g in metrics.gaps(records, end=end) if g.end > t]
    gap = max(after, key=lambda g: g.duration_s) if after else None
    again = [r.t_reply for r in records if r.ok and r.t_send >= t and r.t_reply <= end]
    if move_outcome is not None:
        outcome, cause = move_outcome
    elif any(e.kind == "failover.end" and e.t >= t for e in events):
        outcome, cause = outcomes.OK, ""
    else:
        outcome, cause = outcomes.NO_FAILOVER, f"no failover.end within {end - t:.1f} s"
    return {
        "fault": fault, "strategy": plan.strategy, "target": hit.target,
        "detected_s": detected,
        "restarted": int(death.recovered) if death is not None else None,
        "recovery_s": death.recovery_s if death is not None else None,
        "served_again_s": (min(again) - t) if again else None,
        "interruption_s": gap.duration_s if gap else None,
        "interruption_censored": int(gap.censored) if gap else None,
        "failed": metrics.failed([r for r in records if r.t_send >= t]),
        "requests": len(records),
        "outcome": outcome, "cause": cause,
        "valid": int(all(d.recovered for d in deaths)),
        "t_fault": t,
    }


# ---------------------------------------------------------------------- one fault
def one_fault(rd: ResultDir, fault: str, rep: int, topo: Any, ue: str,
              args: argparse.Namespace, set_testbed: Callable[..., None]) -> dict[str, Any]:
    """Fresh testbed, deploy per the fault's plan, probe, inject, move, measure."""
    from mec.core import config
    from mec.core.events import EventLog
    from mec.measure.probe import ProbeProcess
    from mec.orchestrator import EdgeOrchestrator
    from mec.orchestrator.scheduler import ServiceSpec
    from mec.testbed import Testbed
    from scenarios import handover

    plan = PLANS[fault]
    label = f"{fault}-rep{rep:02d}"
    events = EventLog(rd.path / RAW / f"{label}-events.jsonl")
    start = topo.ue(ue).site
    next_site = topo.neighbours(start)[0]
    with events, Testbed(topo, controller=_common.controller_of(args),
                         servers=_common.servers_of(args), events=events) as tb:
        set_testbed(tb, judge=False)  # its deaths are this scenario's doing: judged per row
        with EdgeOrchestrator(tb, events=events) as orch:
            dep = orch.deploy(ServiceSpec(SERVICE, args.image, replicas=plan.replicas), ue,
                              plan.strategy, image_source=plan.image_source)
            orch.wait_idle()
            broken = INJECT[fault](tb, dep, next_site) if fault == "bad-image" else None
            url = f"http://{dep.vip}:{config.SERVICE_PORT}/"
            with ProbeProcess(tb.network.hosts[ue].node, url, rd.path / RAW / f"{label}-probe.csv",
                              rate=args.rate, timeout=1.0, watchdog=tb.watchdog) as probe:
                time.sleep(args.warmup)  # service before the fault (a run length, not a measure)
                hit = broken or INJECT[fault](tb, dep, next_site)
                events.emit("fault", fault=fault, target=hit.target)
                move, handled = None, None
                if plan.move:
                    move = tb.network.move(ue, next_site)
                    if broken is not None:
                        hit.t = move.t_attached
                    handled = handover.handle(orch, dep, ue, next_site, args.move_timeout)
                    serving = handover._serving(dep) if handled[0] == outcomes.OK else None
                else:
                    try:
                        events.wait_for("failover.end", timeout=args.move_timeout)
                    except TimeoutError:
                        log.warning("%s: no failover within %g s", label, args.move_timeout)
                _wait_recovery(tb, hit.target, args.move_timeout)
                time.sleep(args.after)
                end = time.monotonic()
                records = probe.stop()
            deaths = list(tb.watchdog.deaths)
        evs = events.events()
    move_outcome = None
    if move is not None:  # what a handover run would have recorded for this move
        m = handover.move_row(records, evs, move, end, serving, float("inf"), plan.strategy,
                              handled=handled[0], cause=handled[1])
        move_outcome = (m["outcome"], m["cause"])
    return {"rep": rep, **fault_row(fault, plan, hit, records, evs, deaths, end, move_outcome)}


def _wait_recovery(tb: Any, target: str, timeout: float) -> None:
    """Wait (bounded) for a restart of TARGET under way, so the row sees how it ended."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        death = next((d for d in tb.watchdog.deaths if d.name == target), None)
        restartable = target == "network-manager"
        if death is None and restartable:
            time.sleep(0.05)  # not seen yet (within a poll period)
            continue
        if death is None or not restartable or death.recovered or death.recovery_error:
            return
        time.sleep(0.05)


# ---------------------------------------------------------------------- figures
def make_plots(run_dir: Path, groups: Mapping[str, list]) -> list[Path]:
    """faults.png: the interruption per fault (hatched: still open at the end, a lower
    bound), and one timeline per fault and repetition with the fault marked."""
    import matplotlib.pyplot as plt

    from mec.core.events import read as read_events
    from mec.measure.plots import DPI, PALETTE, timeline
    from mec.measure.probelog import read_csv
    from mec.measure.results import read_rows, to_number

    out: list[Path] = []
    rows = read_rows(run_dir / f"{NAME}.csv") if (run_dir / f"{NAME}.csv").exists() else []
    if rows:
        fig, ax = plt.subplots(figsize=(max(5.0, 1.3 * len(rows) + 1.5), 4.0))
        for i, r in enumerate(rows):
            value = to_number(r.get("interruption_s"))
            if value is None:
                continue
            censored = r.get("interruption_censored") == "1"
            ax.bar(i, value, color=PALETTE[i % len(PALETTE)], hatch="//" if censored else None,
                   edgecolor="black", linewidth=0.5)
            ax.annotate(f"{value:.2f} s{'+' if censored else ''}\n{r.get('outcome')}",
                        (i, value), ha="center", va="bottom", fontsize=8)
        ax.set_xticks(range(len(rows)), [f"{r['fault']}\n#{r['rep']}" for r in rows],
                      fontsize=8)
        ax.set_ylabel("interruption at the user (s)")
        ax.set_title("faults: user-perceived interruption (hatched: still open, lower bound)",
                     fontsize=9)
        path = run_dir / "faults.png"
        fig.tight_layout()
        fig.savefig(path, dpi=DPI)
        plt.close(fig)
        out.append(path)
    for probe_csv in sorted((run_dir / RAW).glob("*-probe.csv")):
        label = probe_csv.name[:-len("-probe.csv")]
        evfile = run_dir / RAW / f"{label}-events.jsonl"
        marks = [{"t": e.t, "kind": e.kind, "label": text}
                 for e in (read_events(evfile) if evfile.exists() else [])
                 for text in [_mark(e)] if text]
        out.append(timeline(read_csv(probe_csv), marks, run_dir / f"timeline-{label}.png",
                            title=f"faults, {label}: per-request latency", log_y=True))
    return out


def _mark(e: Any) -> str:
    return {"fault": f"{e.get('fault')} fault", "move.attached": f"at {e.get('to_site')}",
            "component.died": "died", "component.recovered": "restarted",
            "failover.end": "failover", "migration.failed": "migration failed"}.get(e.kind, "")


def fault_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """The resilience table: one line per fault run."""
    head = (f"{'fault':<11}{'detected':>10}{'restarted':>11}{'served again':>14}"
            f"{'interruption':>15}{'failed':>8}  outcome (valid)")
    lines = ["", head]
    for r in rows:
        gap = _s(r["interruption_s"]) + ("+" if r["interruption_censored"] == 1 else "")
        restarted = ("-" if r["restarted"] is None else
                     _s(r["recovery_s"]) if r["restarted"] else "no")
        lines.append(f"{r['fault']:<11}{_s(r['detected_s']):>10}{restarted:>11}"
                     f"{_s(r['served_again_s']):>14}{gap:>15}{r['failed']:>8}  "
                     f"{r['outcome']} ({'valid' if r['valid'] else 'INVALID'})"
                     + (f": {r['cause']}" if r["cause"] else ""))
    lines.append("(+: the outage was still open at the end: at least that long; "
                 "-: not measured / not applicable)")
    return "\n".join(lines)


def _s(v: Optional[float]) -> str:
    return "-" if v is None else f"{v:.2f} s"


# ---------------------------------------------------------------------- run
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--faults", default=",".join(FAULTS), metavar="LIST",
                        help=f"comma-separated faults (default all: {','.join(FAULTS)})")
    parser.add_argument("--image", default=DEFAULT_IMAGE,
                        help=f"service image (default {DEFAULT_IMAGE})")
    parser.add_argument("--ue", default=None, help="the user (default: the topology's first UE)")
    parser.add_argument("--rate", type=float, default=100.0, metavar="REQ/S",
                        help="probe requests per second (default 100)")
    parser.add_argument("--warmup", type=float, default=None, metavar="S",
                        help="probing before the fault (default 2; --quick: 1)")
    parser.add_argument("--after", type=float, default=None, metavar="S",
                        help="probing after the fault was handled (default 3; --quick: 2)")
    parser.add_argument("--move-timeout", type=float, default=30.0, metavar="S",
                        help="longest wait for a move's (or failover's) handling (default 30)")
    _common.add_common_arguments(parser, DEFAULT_REPS, QUICK_REPS, topology=True)


def parse_faults(text: str) -> list[str]:
    names = [f.strip() for f in text.split(",") if f.strip()]
    unknown = [f for f in names if f not in PLANS]
    if unknown or not names:
        raise SystemExit(f"--faults: unknown {', '.join(unknown) or '(none given)'}; "
                         f"known: {', '.join(FAULTS)}")
    return names


def run(args: argparse.Namespace) -> int:
    from mec.measure.progress import Progress
    from topologies.loader import load

    _common.quiet_logs(args)
    faults = parse_faults(args.faults)
    reps = _common.reps_of(args, DEFAULT_REPS, QUICK_REPS)
    args.warmup = args.warmup if args.warmup is not None else (1.0 if args.quick else 2.0)
    args.after = args.after if args.after is not None else (2.0 if args.quick else 3.0)
    if _common.controller_of(args) is None:
        raise SystemExit("faults needs the Network Manager (use os-ken or ryu)")
    args.tolerate_failures = True  # outcomes other than ok are what this scenario is for
    topo_path = args.topology or DEFAULT_TOPOLOGY
    topo = load(topo_path)
    ue = args.ue or (topo.ues[0].name if topo.ues else None)
    if ue is None:
        raise SystemExit(f"{topo_path}: the topology has no UE")
    start = topo.ue(ue).site
    if not topo.neighbours(start) or len(topo.cloudlets) < 3:
        raise SystemExit(f"{topo_path}: faults needs a UE with a neighbouring site and at least "
                         "3 cloudlets (the paper topology has them)")
    _common.prepare([args.image])
    progress = Progress(reps * len(faults))
    done_rows: list[dict[str, Any]] = []

    def measure(rd: ResultDir, set_testbed: Callable[..., None]) -> None:
        table = rd.table(NAME, COLUMNS)
        (rd.path / RAW).mkdir(exist_ok=True)
        progress.note(f"{NAME}: {', '.join(faults)} x {reps} on {topo.name}; "
                      f"results in {rd.path}")
        i = 0
        for fault in faults:
            for rep in range(1, reps + 1):
                i += 1
                row = one_fault(rd, fault, rep, topo, ue, args, set_testbed)
                table.append(row)
                done_rows.append(row)
                progress.line(i, f"{fault}: {row['outcome']}", row["interruption_s"],
                              detected=row["detected_s"], served_again=row["served_again_s"])

    return _common.execute(NAME, args, [SPEC], measure, make_plots, TABLE_METRICS,
                           config={"topology_path": topo_path, "faults": faults, "reps": reps,
                                   "ue": ue, "plans": {f: PLANS[f].__dict__ for f in faults}},
                           extra_report=lambda summary: fault_table(done_rows),
                           summary_extra=lambda: {"faults": done_rows})


if __name__ == "__main__":
    sys.exit(_common.script_main(sys.modules[__name__], NAME))
