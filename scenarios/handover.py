"""A user moving between sites, served proactively (replicas) or reactively (migration).

The paper's comparison measured at the user: a probe on the UE sends requests to
the service's virtual IP at a fixed rate (default 200/s) throughout, while the
UE moves along a path of sites (default: the topology's mobility for the UE,
back and forth). With ``--strategy both`` the same moves are made once per
strategy, each on a fresh testbed. Per move:

* interruption_s: the gap without successful replies that spans the moment the
  UE attached to the new access point (it includes the radio-less time of the
  move itself, move_s);
* first_reply_s: attach to the first successful reply to a request sent after it;
* served_by_new_s: attach to the first reply from the new primary instance: the
  total migration time as the user sees it;
* switch_s: attach to the moment the flows were switched (proactive: the
  Network Manager's re-steer on the location event; reactive: after the new
  instance answered);
* time_above_sla_s: time during which replies exceeded the SLA latency bound
  (e.g. while still served by the previous edge across the backbone);
* failed: requests without a successful reply; wrong_replica: replies to
  requests sent after the switch that came from another instance than the new
  primary (proactive must give 0);
* bytes: image bytes moved for this move (reactive: pulled or transferred;
  proactive: pulled to relocate replicas, in the background);
* radio_s, emulator_s: the move's emulated radio time (the topology's ``handover``)
  and the emulator's own cost, measured apart; location_s: attach to the Network
  Manager's location event (the access point's port status). What the MEC system
  adds is the interruption beyond radio_s + emulator_s.

When the UE's mobility in the topology is position-based (``positions:`` a SUMO FCD
trace, a CSV of positions, random waypoint or Gauss-Markov; or ``associations:`` an
access-point association log), the moves are the schedule's, made at their times
(``topologies.coverage``: handovers with hysteresis, detaches out of coverage); a
re-attach's row carries ``out_of_coverage_s`` and its interruption spans the outage;
the run saves ``plane.json`` and ``plane.png`` (access points, coverage, tracks,
handover points). See docs/mobility.md.

    sudo python3 scenarios/handover.py --strategy both --quick
    sudo python3 scenarios/handover.py --strategy reactive --image httpd --image-source edge
    mec run handover --strategy proactive --reps 30
"""

from __future__ import annotations

if __name__ == "__main__":  # run as a script: find the checkout and its Python environment
    import _bootstrap  # noqa: F401 (scenarios/ is first on sys.path when a script runs)

import argparse
import dataclasses
import itertools
import logging
import sys
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

from mec.measure import outcomes
from mec.measure.results import ResultDir, SummarySpec
from scenarios import _common, _etsi

log = logging.getLogger(__name__)

NAME = "handover"
PAPER_TOPOLOGY = Path(__file__).resolve().parent.parent / "topologies" / "paper.yaml"
STRATEGIES = ("proactive", "reactive")
SOURCES = ("cached", "registry", "edge")
IMAGES = ("busybox", "debian", "httpd")
DEFAULT_REPS, QUICK_REPS = 10, 2
DEFAULT_SLA_MS = 30.0
METRICS = ("move_s", "interruption_s", "first_reply_s", "served_by_new_s", "switch_s",
           "time_above_sla_s", "failed", "wrong_replica", "unattributed", "body_mismatch",
           "bytes", "radio_s", "emulator_s",
           "location_s", "out_of_coverage_s", "late_s", "state_bytes", "state_s", "stale_s")
COLUMNS = ("strategy", "source", "image", "service", "identity", "move", "from_site",
           "to_site", "old", "new", "outcome", "cause", "requests", *METRICS, "interruption_censored")
SPEC = SummarySpec(NAME, group_by=("strategy", "source"), metrics=METRICS)
TABLE_METRICS = {NAME: ("interruption_s", "time_above_sla_s", "served_by_new_s", "failed",
                        ("bytes", "MB", 1e-6))}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--strategy", choices=(*STRATEGIES, "both"), default="both",
                        help="proactive replication, reactive migration, or both on the same "
                             "moves (default both)")
    parser.add_argument("--image-source", choices=SOURCES, default="registry",
                        help="reactive: where the new instance's image comes from: already "
                             "cached, pulled from the cloud registry, or transferred from the "
                             "previous edge (default registry)")
    parser.add_argument("--image", choices=IMAGES, default=None,
                        help="the built-in service of this image (default httpd; --quick: "
                             "busybox)")
    _common.add_service_argument(parser)
    _etsi.add_argument(parser)
    parser.add_argument("--ue", default=None, help="the moving UE (default: the first UE)")
    parser.add_argument("--path", default=None, metavar="SITES",
                        help="comma-separated sites the UE walks, back and forth (default: "
                             "its start site then the topology's scripted moves)")
    parser.add_argument("--replicas", type=int, default=3,
                        help="proactive: replicas wanted (primary + backup + secondaries)")
    parser.add_argument("--policy", default="neighbours",
                        help="proactive placement policy (neighbours, predictive, all)")
    parser.add_argument("--rate", type=float, default=200.0, help="probe requests per second")
    parser.add_argument("--timeout", type=float, default=1.0, help="probe request timeout (s)")
    parser.add_argument("--sla-ms", type=float, default=None,
                        help="SLA latency bound in ms (default: the service file's sla_ms, "
                             "else 30: the local edge, not one 50 ms backbone hop away)")
    parser.add_argument("--dwell", type=float, default=2.0, metavar="S",
                        help="seconds at each site after the orchestrator is done (default 2)")
    parser.add_argument("--move-timeout", type=float, default=900.0, metavar="S",
                        help="longest wait for the orchestrator to handle a move; then the "
                             "move's outcome is no_location or timeout (default 900)")
    _common.add_common_arguments(parser, DEFAULT_REPS, QUICK_REPS, topology=True)
    parser.set_defaults(controller="os-ken")


# ---------------------------------------------------------------------- the moves
def walk(topology: Any, ue: str, path: Optional[str]) -> list[str]:
    """The sites the UE visits in order, starting where it is: back and forth along PATH."""
    from topologies.mobility import from_topology

    start = topology.ue(ue).site
    if path:
        sites = split_sites(topology, path)
    else:
        sites = [start] + [m.to_site for m in from_topology(topology) if m.ue == ue]
        if len(sites) < 2:
            sites = [start, topology.neighbours(start)[0]]
    if sites[0] != start:
        sites = [start] + sites
    back = sites[-2:0:-1]
    return sites + back  # s1 s2 s3 s2 (then again s1 s2 ...)


def timed_schedule(topology: Any, ue: str) -> Optional[Any]:
    """UE's position-based schedule (``topologies.coverage.PositionSchedule`` with only its
    moves), None when its mobility is not position-based."""
    from topologies.coverage import schedule

    if not any(s.ue == ue and (s.positions is not None or s.associations is not None)
               for s in topology.mobility):
        return None
    sched = schedule(topology)
    sched.moves = [m for m in sched.moves if m.ue == ue]
    return sched


def split_sites(topology: Any, path: str) -> list[str]:
    """The sites of a comma-separated PATH; a site whose real name holds a comma
    ("Breclav,Lednice") is recognised as one (the longest run of parts that is a site)."""
    parts, sites = [p.strip() for p in path.split(",")], []
    while parts:
        for n in range(len(parts), 0, -1):
            name = ",".join(parts[:n])
            if name in topology.site_names:
                break
        else:
            n, name = 1, parts[0]
            if name:
                topology.site(name)  # unknown: the error lists the sites
        if name:
            sites.append(name)
        parts = parts[n:]
    return sites


def moves_of(sites: Sequence[str], count: int) -> list[str]:
    """COUNT destination sites following the closed walk SITES (its start excluded)."""
    cycle = itertools.cycle(sites[1:] + sites[:1])
    return [next(cycle) for _ in range(count)]


# ---------------------------------------------------------------------- per-move numbers
def switch_time(events: Sequence[Any], strategy: str, to_site: str) -> Optional[float]:
    """When the user's flows were switched for this move (monotonic), None if not known.

    Proactive: the Network Manager's re-steer (packet-in + rule install up to the
    Barrier; the install time from the ``location`` event or, when its Barrier had
    not come back yet, from ``location.installed``), or the orchestrator's own
    re-steer (``proactive.promote.end``). Reactive: ``migration.switch.end``. A
    time not measured is missing, never a placeholder.
    """
    if strategy != "proactive":
        sw = next((e for e in events if e.kind == "migration.switch.end"), None)
        return sw.t if sw is not None else None
    promote = next((e for e in events if e.kind == "proactive.promote.end"), None)
    if promote is not None and promote.get("steered_by") == "orchestrator":
        return promote.t
    loc = next((e for e in events if e.kind == "location"), None)
    if loc is None or loc.get("t_packet_in") is None:
        return None
    install_ms = loc.get("install_ms")
    if install_ms is None:
        later = next((e for e in events if e.kind == "location.installed"
                      and e.get("to_site") == to_site), None)
        install_ms = later.get("install_ms") if later is not None else None
    return None if install_ms is None else loc["t_packet_in"] + install_ms / 1000


def move_row(records: Sequence[Any], events: Sequence[Any], move: Any, end: float,
             new_instance: Optional[str], sla_ms: float, strategy: str,
             handled: str = outcomes.OK, cause: str = "") -> dict[str, Any]:
    """The numbers and the outcome of one move from the probe records and orchestrator
    events in its window (from the move's request to END).

    HANDLED is how the orchestrator's handling ended (``ok``, ``failed``,
    ``no_location``, ``timeout``; CAUSE says why). ``served_by_new_s`` counts only
    replies from NEW_INSTANCE, the primary after a successful move; after a failed
    one it is missing. The interruption spanning the attach is measured up to END:
    still open then, it is at least that long and ``interruption_censored`` is 1.
    """
    from mec.measure import metrics

    window = [r for r in records if move.t_request <= r.t_send < end]
    evs = [e for e in events if move.t_request <= e.t < end]
    attached = move.t_attached
    gap = metrics.gap_at(records, attached, end=end)
    after = sorted((r for r in window if r.ok and r.t_send >= attached and r.t_reply < end),
                   key=lambda r: r.t_reply)
    ok_move = handled == outcomes.OK and new_instance is not None
    by_new = [r for r in after if r.replica == new_instance] if ok_move else []
    switch_t = switch_time(evs, strategy, move.to_site)
    wrong = None
    if switch_t is not None and ok_move:
        served = metrics.served_by_after(window, switch_t)
        wrong = sum(n for rep, n in served.items() if rep != new_instance)
    outcome = handled
    if ok_move and not by_new:
        outcome, cause = outcomes.NOT_SERVED, (f"no reply from {new_instance} within "
                                              f"{end - attached:.1f} s of the attach")
    elif ok_move and wrong and strategy == "proactive":
        # proactive must give 0; reactive make-before-break lets the old instance answer
        # what reached it during the drain (counted in wrong_replica, not an outcome)
        outcome, cause = outcomes.WRONG_REPLICA, (f"{wrong} replies from another instance "
                                                 f"than {new_instance} after the switch")
    moved = sum(int(e.get("bytes") or e.get("archive_bytes") or 0) for e in evs
                if e.kind in ("migration.pull.end", "migration.transfer_image.end",
                              "replica.pull.end"))
    return {
        "outcome": outcome,
        "cause": cause,
        "requests": len(window),
        "move_s": attached - move.t_request,
        "interruption_s": gap.duration_s if gap else None,
        "interruption_censored": int(gap.censored) if gap else None,
        "first_reply_s": (after[0].t_reply - attached) if after else None,
        "served_by_new_s": (by_new[0].t_reply - attached) if by_new else None,
        "switch_s": (switch_t - attached) if switch_t is not None else None,
        "time_above_sla_s": metrics.time_above_sla_s(window, sla_ms),
        "failed": metrics.failed(window),
        "wrong_replica": wrong,
        "bytes": moved,
        **system_times(move, evs),
        **state_numbers(evs, strategy, switch_t, before=events),
    }


def state_numbers(events: Sequence[Any], strategy: str, switch_t: Optional[float],
                  before: Sequence[Any] = ()) -> dict[str, Optional[float]]:
    """How the service's state followed the move (missing for a service without state).

    Reactive: the migration's state phase (``migration.state``: rsync's bytes, its
    duration); proactive: the sync rounds that ran in the move's window. ``stale_s``:
    how old the new primary's state was at the switch: from the start of the copy it
    holds (reactive: the state phase; proactive: the last completed round before the
    switch, looked for in BEFORE too: the run's events) to the switch; writes in that
    time are not on the new primary.
    """
    if strategy == "reactive":
        phase = next((e for e in events if e.kind == "migration.state.end"
                      and not e.get("error")), None)
        if phase is None:
            return {"state_bytes": None, "state_s": None, "stale_s": None}
        began = phase.t - float(phase.get("duration_s") or 0.0)
        return {"state_bytes": phase.get("bytes_sent"), "state_s": phase.get("duration_s"),
                "stale_s": None if switch_t is None else switch_t - began}
    every_round = [e for e in [*before, *events] if e.kind == "sync_round"]
    if not every_round:
        return {"state_bytes": None, "state_s": None, "stale_s": None}  # no state synced
    rounds = [e for e in events if e.kind == "sync_round"]
    done = [e for e in every_round if e.get("ok") and (switch_t is None or e.t <= switch_t)]
    last = max(done, key=lambda e: e.t) if done else None
    return {"state_bytes": sum(int(e.get("bytes") or 0) for e in rounds),
            "state_s": sum(float(e.get("seconds") or 0.0) for e in rounds),
            "stale_s": (switch_t - (last.t - float(last.get("seconds") or 0.0))
                        if last is not None and switch_t is not None else None)}


def system_times(move: Any, events: Sequence[Any]) -> dict[str, Optional[float]]:
    """The move's radio time and the emulator's own cost apart (both measured by the
    network; missing when the move did not say), and the location event's delay from the
    attach (the Network Manager's signal, seen by the orchestrator as ``location``)."""
    ms = lambda v: None if v is None else v / 1000  # noqa: E731
    loc = next((e for e in events if e.kind == "location"), None)
    seen = loc.get("t_packet_in") if loc is not None else None
    return {"radio_s": ms(getattr(move, "radio_ms", None)),
            "emulator_s": ms(getattr(move, "emulator_ms", None)),
            "location_s": None if seen is None else seen - move.t_attached}


# ---------------------------------------------------------------------- plots
def make_plots(run_dir: Path, groups: Mapping[str, list]) -> list[Path]:
    from mec.core.events import read as read_events
    from mec.measure.plots import grouped_bars, timeline
    from mec.measure.probelog import read_csv

    paths = []
    config = _read_json(run_dir / "config.json")
    sla = (config.get("args") or {}).get("sla_ms")
    for csv in sorted(run_dir.glob("probe-*.csv")):
        label = csv.stem[len("probe-"):]
        evfile = run_dir / f"events-{label}.jsonl"
        marks = []
        for e in (read_events(evfile) if evfile.exists() else []):
            if e.kind in ("move.attached", "migration.switch.end", "proactive.promote.end",
                          "migration.start", "failover.end"):
                short = {"move.attached": f"at {e.get('to_site')}",
                         "migration.switch.end": "switch", "proactive.promote.end": "promote",
                         "migration.start": "migrate", "failover.end": "failover"}[e.kind]
                marks.append({"t": e.t, "kind": e.kind, "label": short})
        paths.append(timeline(read_csv(csv), marks, run_dir / f"timeline-{label}.png",
                              sla_ms=sla, title=f"handover, {label}: per-request latency",
                              log_y=True))
    if (run_dir / "plane.json").exists():
        from mec.measure.plane import plane_plot

        paths.append(plane_plot(_read_json(run_dir / "plane.json"), run_dir / "plane.png",
                                title="handover: access points, coverage, UE track"))
    rows = groups.get(NAME) or []
    if rows:
        cats = ["interruption_s", "time_above_sla_s", "served_by_new_s"]
        series = [f"{g['group']['strategy']} {g['group']['source']}".replace(" -", "")
                  for g in rows]
        stats = {(c, s): g["metrics"].get(c) for g, s in zip(rows, series) for c in cats}
        paths.append(grouped_bars(cats, series, stats, run_dir / "handover.png",
                                  ylabel="seconds (mean, 95% CI)",
                                  title="user-perceived degradation per move"))
    return paths


def _read_json(path: Path) -> dict:
    import json
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def ratio_report(summary: Mapping[str, Any]) -> str:
    """Proactive vs reactive: the ratio of each degradation metric (reactive / proactive)."""
    groups = summary["tables"].get(NAME, {}).get("groups", [])
    pro = next((g for g in groups if g["group"]["strategy"] == "proactive"), None)
    lines = []
    for rea in (g for g in groups if g["group"]["strategy"] == "reactive"):
        for m in ("interruption_s", "time_above_sla_s", "served_by_new_s"):
            a, b = (pro or {}).get("metrics", {}).get(m), rea["metrics"].get(m)
            if a and b and a.get("n") and b.get("n"):
                ratio = f"{b['mean'] / a['mean']:.1f}x" if a["mean"] else "proactive has none"
                lines.append(f"{m:<18} proactive {a['mean']:8.3f} s {_n(a):<12} reactive "
                             f"({rea['group']['source']}) {b['mean']:8.3f} s {_n(b):<12} {ratio}")
    return ("\nreactive / proactive (means per move; n values, missing ones apart):\n"
            + "\n".join(lines)) if lines else ""


def _n(stats: Mapping[str, Any]) -> str:
    """``(n=4)`` or ``(n=3, 1 missing)``: how many moves a mean stands for."""
    missing = stats.get("missing") or 0
    return f"(n={stats['n']}" + (f", {missing} missing)" if missing else ")")


# ---------------------------------------------------------------------- run
def run(args: argparse.Namespace) -> int:
    from mec.measure.progress import Progress
    from topologies.loader import load

    _common.quiet_logs(args)
    reps = _common.reps_of(args, DEFAULT_REPS, QUICK_REPS)
    service = _common.service_of(args, "busybox" if args.quick else "httpd")
    image = service.image
    if args.sla_ms is None:
        args.sla_ms = service.sla_ms or DEFAULT_SLA_MS
    topo_path = args.topology or PAPER_TOPOLOGY
    topo = load(topo_path)
    ue = args.ue or (topo.ues[0].name if topo.ues else None)
    if ue is None:
        raise SystemExit(f"{topo_path}: the topology has no UE to move")
    topo.ue(ue)
    timed = timed_schedule(topo, ue)
    if timed is not None:
        dests = list(timed.moves)
        reps = sum(1 for m in dests if not m.detach)
        sites = [topo.ue(ue).site] + [m.to_site or "(out of coverage)" for m in dests]
    else:
        sites = walk(topo, ue, args.path)
        dests = moves_of(sites, reps)
    strategies = list(STRATEGIES) if args.strategy == "both" else [args.strategy]
    if _common.controller_of(args) is None:
        raise SystemExit("handover steers flows through the Network Manager: --controller "
                         "none is not possible here")
    _common.prepare([image])
    progress = Progress(reps * len(strategies))

    etsi = getattr(args, "etsi", False)
    columns = (*COLUMNS, *_etsi.METRICS) if etsi else COLUMNS
    spec = SummarySpec(NAME, group_by=SPEC.group_by, metrics=(*METRICS, *_etsi.METRICS)) \
        if etsi else SPEC

    def measure(rd: ResultDir, set_testbed: Callable[[Any], None]) -> None:
        table = rd.table(NAME, columns)
        done = 0
        for strategy in strategies:
            source = args.image_source if strategy == "reactive" else "-"
            label = strategy if strategy == "proactive" else f"reactive-{source}"
            progress.note(f"{NAME}: {label}, {service.name} ({image}, {service.protocol}), "
                          f"{reps} moves of {ue} along {' '.join(sites)}; results in {rd.path}")
            rows = one_strategy(rd, set_testbed, topo, ue, dests, strategy, source, service,
                                label, args, progress, lambda i, row: progress.line(
                                    done + i, f"{label} {row['from_site']}->{row['to_site']}"
                                    + ("" if row["outcome"] == outcomes.OK else
                                       f" {row['outcome'].upper()} ({row['cause']})"),
                                    row["interruption_s"],
                                    first_reply=row["first_reply_s"],
                                    served_by_new=row["served_by_new_s"],
                                    above_sla=row["time_above_sla_s"]))
            for row in rows:
                table.append(row)
            done += reps

    if timed is not None:
        from mec.measure.plane import plane_data

        plane = plane_data(topo, timed)
        inner = measure

        def measure(rd: ResultDir, set_testbed: Callable[[Any], None]) -> None:  # noqa: F811
            _write_json(rd.file("plane.json"), plane)
            inner(rd, set_testbed)

        dests_config: list = [[m.at_s, m.to_site or None] for m in dests]
    else:
        dests_config = list(dests)
    return _common.execute(
        NAME, args, [spec], measure, make_plots,
        {NAME: (*TABLE_METRICS[NAME], *_etsi.TABLE)} if etsi else TABLE_METRICS,
        config={"topology_path": topo_path, "ue": ue, "walk": sites, "moves": dests_config,
                "image": image, "service": _common.service_config(service),
                "strategies": strategies},
        extra_report=ratio_report)


def one_strategy(rd: ResultDir, set_testbed: Callable[[Any], None], topo: Any, ue: str,
                 dests: Sequence[str], strategy: str, source: str, service: Any, label: str,
                 args: argparse.Namespace, progress: Any,
                 on_row: Callable[[int, dict], None]) -> list[dict]:
    """Deploy with STRATEGY on a fresh testbed, make the moves under the probe, return rows."""
    from mec.core.events import EventLog
    from mec.orchestrator import EdgeOrchestrator
    from mec.measure.probe import ProbeProcess
    from mec.orchestrator.scheduler import ServiceSpec
    from mec.testbed import Testbed

    events = EventLog(rd.file(f"events-{label}.jsonl"))
    image = service.image
    spec = ServiceSpec(_common.deployment_name(args, service, "svc"), image,
                       cpus=service.cpus or 0.0,
                       memory_mb=service.memory_mb or 0,
                       replicas=args.replicas if strategy == "proactive" else 1,
                       latency_bound_ms=float("inf"))
    rows: list[dict] = []
    etsi = getattr(args, "etsi", False)
    reads: dict[int, tuple] = {}  # move index -> the user's counter before and after it
    with events, Testbed(topo, controller=_common.controller_of(args),
                         servers=_common.servers_of(args), events=events) as tb, \
            EdgeOrchestrator(tb, events=events, policy=args.policy) as orch, \
            _etsi.platform(etsi, tb, orch, events):
        set_testbed(tb)
        dep = orch.deploy(spec, ue, strategy,
                          image_source=source if strategy == "reactive" else "registry",
                          service=service)
        orch.wait_idle()
        host = tb.network.hosts[ue].node
        counter = _etsi.UserCounter(tb.network.host(ue).netns_path, dep.vip, dep.port) \
            if etsi else None
        moves = []
        with ProbeProcess(host, _common.probe_target(service, dep.vip),
                          rd.file(f"probe-{label}.csv"),
                          rate=args.rate, timeout=args.timeout,
                          watchdog=tb.watchdog) as probe:
            time.sleep(args.dwell)  # service before the first move (a run length, not a measure)
            if dests and not isinstance(dests[0], str):
                moves = timed_moves(tb, orch, dep, ue, dests, args, progress)
                dests = []
            for i, site in enumerate(dests, start=1):
                old = _serving(dep)
                before = counter.read() if counter else None
                move = tb.network.move(ue, site)
                handled, cause = handle(orch, dep, ue, site, args.move_timeout)
                if counter and handled == outcomes.OK:
                    _etsi.wait_context(events, move.t_request)
                new = _serving(dep) if handled == outcomes.OK else None
                moves.append((move, old, new, handled, cause))
                progress.note(f"  move {i}/{len(dests)} {move.from_site}->{site}: "
                              + (f"handled in {time.monotonic() - move.t_attached:.1f} s, "
                                 f"now served by {new}" if handled == outcomes.OK else
                                 f"{handled.upper()}: {cause}"))
                time.sleep(args.dwell)
                if counter:
                    reads[len(moves) - 1] = (before, counter.read())
            end = time.monotonic()
            records = probe.stop()
        if counter:
            counter.save_state(rd.file(f"app-state-{label}.json"))
            counter.close()
        joined = _common.replica_identity(tb, dep, ue, records, rd.file(f"ledger-{label}.json"))
    records = joined.records
    evs = events.events()
    detach: Any = None
    for i, (move, old, new, handled, cause, *timing) in enumerate(moves):
        if not move.to_site:  # a detach: no row of its own; the re-attach's row carries it
            detach = move
            continue
        until = moves[i + 1][0].t_request if i + 1 < len(moves) else end
        # a re-attach's window opens at the detach: the requests lost out of coverage count
        window = dataclasses.replace(move, t_request=detach.t_request) if detach else move
        row = {"strategy": strategy, "source": source, "image": image, "service": service.name,
               "move": len(rows) + 1,
               "from_site": move.from_site, "to_site": move.to_site, "old": old, "new": new,
               **move_row(records, evs, window, until, new, args.sla_ms, strategy,
                          handled=handled, cause=cause),
               "move_s": move.t_attached - move.t_request,
               "out_of_coverage_s": (move.t_attached - detach.t_detached) if detach else None,
               "late_s": timing[0] if timing else None,
               "identity": "network", **joined.counts_in(window.t_request, until)}
        if etsi:
            row.update(_etsi.move_numbers([e for e in evs if window.t_request <= e.t < until],
                                          move.t_attached, records, *reads.get(i, (None, None))))
        detach = None
        rows.append(row)
        on_row(len(rows), row)
    return rows


def timed_moves(tb: Any, orch: Any, dep: Any, ue: str, schedule: Sequence[Any],
                args: argparse.Namespace, progress: Any) -> list[tuple]:
    """Make SCHEDULE's moves (``topologies.mobility.Move``, detaches included) at their
    times from now; each move is made once the orchestrator handled the previous one, so
    a move can be late (``late_s``, measured). Returns (event, old, new, outcome, cause,
    late_s) per move."""
    made = []
    t0 = time.monotonic()
    for i, m in enumerate(schedule, start=1):
        late = time.monotonic() - (t0 + m.at_s)
        if late < 0:
            time.sleep(-late)
            late = 0.0
        if m.detach:
            event = tb.network.detach(ue)
            made.append((event, _serving(dep), None, outcomes.OK, "", late))
            progress.note(f"  {m.at_s:g} s: {ue} out of coverage of {event.from_site}: detached")
            continue
        old = _serving(dep)
        event = tb.network.move(ue, m.to_site)
        handled, cause = handle(orch, dep, ue, m.to_site, args.move_timeout)
        new = _serving(dep) if handled == outcomes.OK else None
        made.append((event, old, new, handled, cause, late))
        progress.note(f"  {m.at_s:g} s (late {late:.2f} s): {event.from_site}->{m.to_site} "
                      + (f"handled in {time.monotonic() - event.t_attached:.1f} s, served by {new}"
                         if handled == outcomes.OK else f"{handled.upper()}: {cause}"))
    time.sleep(args.dwell)
    return made


def _write_json(path: Path, data: Any) -> None:
    import json

    path.write_text(json.dumps(data, indent=1, ensure_ascii=False))


def _serving(dep: Any) -> Optional[str]:
    primary = dep.replicas.primary
    return primary.instance if primary is not None else None


def handle(orch: Any, dep: Any, ue: str, site: str, timeout: float) -> tuple[str, str]:
    """Wait for the orchestrator to handle UE's move to SITE: (outcome, cause)."""
    from mec.orchestrator import OrchestrationError

    try:
        orch.wait_for_site(ue, site, timeout=timeout)
    except OrchestrationError as exc:
        return outcomes.FAILED, str(exc)
    except TimeoutError as exc:
        return (outcomes.NO_LOCATION if dep.site != site else outcomes.TIMEOUT), str(exc)
    return outcomes.OK, ""


if __name__ == "__main__":
    sys.exit(_common.script_main(sys.modules[__name__], NAME))
