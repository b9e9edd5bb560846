"""From positions to attachments: which access point serves a moving UE, with hysteresis.

:func:`attachments` walks a UE's position samples (``topologies.positions``) over the
topology's access points (sites with a position and ``coverage_m``) under its
``attachment`` policy (``topologies.model.Attachment``: nearest, or strongest by the
log-distance path-loss model; a margin and a minimum dwell against ping-pong) and yields
the same :class:`topologies.mobility.Move` the scenarios consume: a move to a site, or a
detach (``to_site`` is :data:`topologies.mobility.DETACH`) when no access point reaches
the UE. Between two samples the UE is where the earlier one puts it (sample and hold:
sample densely, e.g. SUMO's 1 s steps, for fine decisions).

:func:`read_associations` replays access-point association logs (``time_s,ue,ap`` with
``OFF`` = not associated, as campus Wi-Fi traces record them) into the same moves.

A :class:`PositionSchedule` keeps, besides the moves, what the plane plot and
``mec net check --list`` show: per UE the handovers, detaches and time out of
coverage, its track and the points where it changed access point.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional, Union

from topologies.csvrows import in_file_order, read_rows, seconds
from topologies.mobility import DETACH, Move
from topologies.model import Attachment, Site, Topology, TopologyError
from topologies.positions import Sample

#: What an association log writes for "not associated with any access point".
OFF = "OFF"


@dataclass
class UeSummary:
    """One UE's schedule: handovers (moves between access points), detaches, re-attaches,
    the time it spends out of every coverage up to its last sample, and its span."""

    handovers: int = 0
    detaches: int = 0
    reattaches: int = 0
    out_of_coverage_s: float = 0.0
    duration_s: float = 0.0


@dataclass
class PositionSchedule:
    """Moves (time-sorted) plus what they came from, for listings and the plane plot."""

    moves: list[Move] = field(default_factory=list)
    summary: dict[str, UeSummary] = field(default_factory=dict)
    tracks: dict[str, list[tuple[float, float, float]]] = field(default_factory=dict)
    points: list[dict[str, Any]] = field(default_factory=list)  # t_s, ue, x, y, from, to

    def lines(self) -> list[str]:
        """Human listing: one line per UE, then one per move."""
        out = []
        for ue, s in self.summary.items():
            out.append(f"  UE {ue}: {s.handovers} handover{'s' if s.handovers != 1 else ''}, "
                       f"{s.detaches} out of coverage ({s.out_of_coverage_s:.1f} s of {s.duration_s:.1f} s), "
                       f"{s.reattaches} re-attach{'es' if s.reattaches != 1 else ''}")
        for m in self.moves:
            what = "out of coverage: detached" if m.to_site == DETACH else f"-> {m.to_site}"
            out.append(f"  move at {m.at_s:g} s: {m.ue} {what}")
        return out

    def merge(self, other: "PositionSchedule") -> None:
        self.moves = sorted(self.moves + other.moves)
        self.summary.update(other.summary)
        self.tracks.update(other.tracks)
        self.points += other.points


def _score(policy: Attachment, site: Site, d: float) -> float:
    """Higher is better: minus the distance (m), or the received power (dBm)."""
    if policy.policy == "nearest":
        return -d
    tx = site.tx_power_dbm if site.tx_power_dbm is not None else policy.tx_power_dbm
    return tx - policy.ref_loss_db - 10 * policy.path_loss_exponent * math.log10(max(d, 1.0))


def _in_range(aps: Iterable[Site], policy: Attachment, x: float, y: float) -> dict[str, float]:
    scores = {}
    for ap in aps:
        assert ap.position is not None and ap.coverage_m is not None
        d = math.hypot(x - ap.position[0], y - ap.position[1])
        if d <= ap.coverage_m:
            scores[ap.name] = _score(policy, ap, d)
    return scores


def attachments(topology: Topology, samples: Iterable[Sample], ue: str,
                policy: Optional[Attachment] = None) -> PositionSchedule:
    """UE's moves from its samples (see module doc). The UE starts at its topology site;
    the first sample already decides (a UE placed outside that site's coverage moves, or
    is detached, at the first sample's time)."""
    topology.ue(ue)
    policy = policy or topology.attachment
    aps = topology.access_points()
    if not aps:
        raise TopologyError(f"{topology.source}: no access point has a position and coverage_m: "
                            "position-based mobility needs them")
    own = sorted(s for s in samples if s.ue == ue)
    sched = PositionSchedule(summary={ue: UeSummary()}, tracks={ue: [(s.t_s, s.x, s.y) for s in own]})
    summary = sched.summary[ue]
    serving: Optional[str] = topology.ue(ue).site
    since = -math.inf
    detached_at: Optional[float] = None
    for s in own:
        scores = _in_range(aps, policy, s.x, s.y)
        best = max(scores, key=lambda n: (scores[n], n)) if scores else None
        target = serving
        if best is None:
            target = None
        elif serving is None or serving not in scores:
            target = best  # lost the serving access point (or had none): the best at once
        elif best != serving and scores[best] > scores[serving] + policy.margin \
                and s.t_s - since >= policy.min_dwell_s:
            target = best
        if target == serving:
            continue
        if target is None:
            sched.moves.append(Move(s.t_s, ue, DETACH))
            summary.detaches += 1
            detached_at = s.t_s
        else:
            if serving is None:
                summary.reattaches += 1
                summary.out_of_coverage_s += s.t_s - (detached_at or 0.0)
                detached_at = None
            else:
                summary.handovers += 1
            sched.moves.append(Move(s.t_s, ue, target))
            since = s.t_s
        sched.points.append({"t_s": s.t_s, "ue": ue, "x": s.x, "y": s.y, "from": serving, "to": target})
        serving = target
    if own:
        summary.duration_s = own[-1].t_s - own[0].t_s
        if detached_at is not None:
            summary.out_of_coverage_s += own[-1].t_s - detached_at
    return sched


def read_associations(path: Union[str, Path], topology: Topology, speedup: float = 1.0) -> PositionSchedule:
    """Moves from an association log ``time_s,ue,ap`` (``OFF``: not associated); rows that
    leave a UE where it is are no moves. Errors name ``FILE:LINE``."""
    path = Path(path)
    rows_, errors = read_rows(path, ("time_s", "ue", "ap"), "association log")
    ues, sites = [u.name for u in topology.ues], topology.site_names
    rows = []
    for line, (t, ue, ap) in rows_:
        tv = seconds(t)
        if tv is None:
            errors.append(f"{path}:{line}: time_s {t!r} must be a number of seconds >= 0")
        elif ue not in ues:
            errors.append(f"{path}:{line}: unknown UE {ue!r} (known UEs: {', '.join(ues) or 'none'})")
        elif ap != OFF and ap not in sites:
            errors.append(f"{path}:{line}: unknown access point {ap!r} (sites: {', '.join(sites)}; {OFF}: "
                          "not associated)")
        else:
            rows.append((tv / speedup, line, ue, None if ap == OFF else ap))
    if errors:
        raise TopologyError(in_file_order(errors))
    sched = PositionSchedule()
    where = {u.name: u.site for u in topology.ues}
    off_since: dict[str, float] = {}
    for t, _line, ue, ap in sorted(rows):
        s = sched.summary.setdefault(ue, UeSummary())
        s.duration_s = t
        if where.get(ue) == ap:
            continue
        if ap is None:
            s.detaches += 1
            off_since[ue] = t
        elif where.get(ue) is None:
            s.reattaches += 1
            s.out_of_coverage_s += t - off_since.pop(ue)
        else:
            s.handovers += 1
        sched.moves.append(Move(t, ue, DETACH if ap is None else ap))
        where[ue] = ap
    for ue, t in off_since.items():
        sched.summary[ue].out_of_coverage_s += sched.summary[ue].duration_s - t
    return sched


#: Keys of a ``positions:`` mobility entry (exactly one source key, the rest optional).
POSITION_SOURCES = ("fcd", "csv", "random_waypoint", "gauss_markov")
POSITION_KEYS = POSITION_SOURCES + ("vehicle", "offset", "scale", "speedup")
RWP_KEYS = ("area", "speed_mps", "pause_s", "duration_s", "step_s", "seed", "start")
GM_KEYS = ("area", "speed_mps", "duration_s", "step_s", "alpha", "sigma_speed", "sigma_dir", "seed", "start")


def _resolve(path: Any, base: Optional[Path]) -> Path:
    p = Path(str(path))
    return p if p.is_absolute() or base is None else base / p


def position_samples(spec: dict[str, Any], ue: str, base: Optional[Path] = None) -> list[Sample]:
    """The samples of one UE's ``positions:`` entry (see docs/mobility.md); relative paths
    against BASE. Raises TopologyError naming what is wrong."""
    from topologies import positions as pos

    unknown = sorted(set(spec) - set(POSITION_KEYS))
    given = [k for k in POSITION_SOURCES if k in spec]
    if unknown or len(given) != 1:
        raise TopologyError(f"give exactly one of {', '.join(POSITION_SOURCES)}"
                            + (f"; unknown keys {', '.join(unknown)}" if unknown else "")
                            + f" (allowed keys: {', '.join(POSITION_KEYS)})")
    kind = given[0]
    if "vehicle" in spec and kind != "fcd":
        raise TopologyError("vehicle is only for fcd (the SUMO vehicle id that is this UE)")
    if kind == "fcd":
        samples = pos.read_fcd(_resolve(spec["fcd"], base), {str(spec.get("vehicle", ue)): ue})
    elif kind == "csv":
        samples = [s for s in pos.read_csv(_resolve(spec["csv"], base)) if s.ue == ue]
        if not samples:
            raise TopologyError(f"{spec['csv']}: no rows of UE {ue}")
    else:
        params = spec[kind]
        keys = RWP_KEYS if kind == "random_waypoint" else GM_KEYS
        if not isinstance(params, dict) or set(params) - set(keys):
            raise TopologyError(f"{kind} must be a mapping with keys among {', '.join(keys)}; got {params!r}")
        model = pos.random_waypoint if kind == "random_waypoint" else pos.gauss_markov
        try:
            samples = model(ue, **params)
        except TypeError as e:
            raise TopologyError(f"{kind}: {e}") from None
    offset, scale, speedup = spec.get("offset", [0, 0]), spec.get("scale", 1), spec.get("speedup", 1)
    ok = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)  # noqa: E731
    if not (isinstance(offset, list) and len(offset) == 2 and all(map(ok, offset))):
        raise TopologyError(f"offset must be [dx, dy] in metres; got {offset!r}")
    if not (ok(scale) and scale > 0 and ok(speedup) and speedup > 0):
        raise TopologyError(f"scale {scale!r} and speedup {speedup!r} must be numbers > 0")
    return pos.transform(samples, offset, scale, speedup)


def association_source(spec: Any) -> tuple[str, float]:
    """(file, speedup) of an ``associations:`` entry: a path or ``{file: PATH, speedup: N}``."""
    if isinstance(spec, str) and spec:
        return spec, 1.0
    if isinstance(spec, dict) and isinstance(spec.get("file"), str) and set(spec) <= {"file", "speedup"}:
        speedup = spec.get("speedup", 1)
        if isinstance(speedup, (int, float)) and not isinstance(speedup, bool) and speedup > 0:
            return spec["file"], float(speedup)
    raise TopologyError(f"must be a CSV path (time_s,ue,ap) or {{file: PATH, speedup: N > 0}}; got {spec!r}")


def schedule(topology: Topology) -> PositionSchedule:
    """Every UE's moves from the topology's ``mobility:`` section: the position-based and
    association-log entries through coverage, the site-level ones as they are."""
    from topologies.mobility import from_topology

    base = None if topology.source.startswith("<") else Path(topology.source).parent
    sched = PositionSchedule(moves=from_topology(topology))
    for spec in topology.mobility:
        if spec.positions is not None:
            sched.merge(attachments(topology, position_samples(dict(spec.positions), spec.ue, base), spec.ue))
        elif spec.associations is not None:
            path, speedup = association_source(spec.associations)
            logged = read_associations(_resolve(path, base), topology, speedup)
            sched.merge(PositionSchedule(moves=[m for m in logged.moves if m.ue == spec.ue],
                                         summary={k: v for k, v in logged.summary.items() if k == spec.ue}))
    return sched
