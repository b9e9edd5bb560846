"""Mobility schedules: when which UE moves to which site, and records of executed moves.

A schedule is a time-sorted list of :class:`Move` (``at_s`` = seconds after the
scenario starts). Builders:

- :func:`scripted` -- an explicit list of ``(time_s, site)`` for one UE;
- :func:`from_trace` -- a CSV file with header ``time_s,ue,site``;
- :func:`random_walk` -- moves to a random graph neighbour every ``interval_s``,
  reproducible from ``seed``;
- :func:`from_topology` -- the ``mobility:`` section of a topology file.

The network layer executes moves (detach the UE's interface from one access
point, attach it to another) and fills a :class:`MobilityEvent` per move.
Invalid input raises :class:`topologies.model.TopologyError` listing every problem.
"""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Collection, Iterable, Optional, Sequence, Union

from topologies.csvrows import in_file_order, read_rows, seconds
from topologies.model import Topology, TopologyError, name_problem

TRACE_HEADER = ("time_s", "ue", "site")
#: ``Move.to_site`` of a detach: the UE leaves every access point's coverage (no site
#: name can be empty). Its next move attaches it again.
DETACH = ""


@dataclass(frozen=True, order=True)
class Move:
    """At ``at_s`` seconds after start, UE ``ue`` moves to the access point of ``to_site``
    (:data:`DETACH`: it is detached, out of every coverage)."""

    at_s: float
    ue: str
    to_site: str

    @property
    def detach(self) -> bool:
        return self.to_site == DETACH


@dataclass
class MobilityEvent:
    """What happened when a move was executed (times are ``time.monotonic()`` seconds).

    ``t_request``: the move was started; ``t_detached``: the UE's link left the old
    access point; ``t_attached``: it is up at the new one. ``None`` until known.
    ``radio_ms``: the emulated radio's own time, measured (break-before-make: the
    UE without a link; make-before-break: the overlap of both links);
    ``emulator_ms``: what the emulator's own operations took, measured (the move
    minus the radio); ``mode``: the radio's handover mode; ``prepared``: False when
    the link to the new site had to be wired during the move (slow).
    """

    ue: str
    from_site: str
    to_site: str
    t_request: Optional[float] = None
    t_detached: Optional[float] = None
    t_attached: Optional[float] = None
    radio_ms: Optional[float] = None
    emulator_ms: Optional[float] = None
    mode: Optional[str] = None
    prepared: Optional[bool] = None

    @property
    def handover_s(self) -> Optional[float]:
        """Time without attachment (detached -> attached; 0 when the new link came up
        first), if both are known."""
        if self.t_detached is None or self.t_attached is None:
            return None
        return max(0.0, self.t_attached - self.t_detached)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["handover_s"] = self.handover_s
        return d


def _check_moves(ue: str, moves: Sequence[tuple[Any, Any]], where: str,
                 sites: Optional[Collection[str]], start_site: Optional[str]) -> list[str]:
    errors: list[str] = []
    if name_problem(ue) is not None:
        errors.append(f"{where}: bad UE name {ue!r}: {name_problem(ue)}")
    last_t: Optional[float] = None
    last_site = start_site
    for i, item in enumerate(moves):
        if not isinstance(item, (list, tuple)) or len(item) != 2:
            errors.append(f"{where}[{i}]: must be a pair [time_s, site], got {item!r}")
            continue
        t, site = item
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t) or t < 0:
            errors.append(f"{where}[{i}]: time {t!r} must be a number of seconds >= 0")
        elif last_t is not None and t <= last_t:
            errors.append(f"{where}[{i}]: time {t:g} is not after the previous move's time {last_t:g} (times must increase)")
        else:
            last_t = float(t)
        if not isinstance(site, str):
            errors.append(f"{where}[{i}]: site must be a site name, got {site!r}")
            continue
        if sites is not None and site not in sites:
            errors.append(f"{where}[{i}]: unknown site {site!r} (known sites: {', '.join(sites)})")
        elif site == last_site:
            errors.append(f"{where}[{i}]: UE {ue} is already at {site} (each move must change site)")
        last_site = site
    return errors


def scripted(ue: str, moves: Iterable[tuple[float, str]], topology: Optional[Topology] = None) -> list[Move]:
    """Moves of one UE at given times, e.g. ``scripted('u1', [(5, 's2'), (10, 's3')])``.

    Times are seconds after start and must increase; each move must change site.
    With ``topology``, sites are checked and the first move must leave the UE's start site.
    """
    moves = list(moves)
    sites = topology.site_names if topology else None
    start = None
    if topology is not None:
        try:
            start = topology.ue(ue).site
        except KeyError as e:
            raise TopologyError(f"scripted moves: {e}") from None
    errors = _check_moves(ue, moves, f"scripted moves of {ue}", sites, start)
    if errors:
        raise TopologyError(errors)
    return [Move(float(t), ue, site) for t, site in moves]


def from_trace(path: Union[str, Path], topology: Optional[Topology] = None, *,
               ues: Optional[Collection[str]] = None, sites: Optional[Collection[str]] = None,
               start_sites: Optional[dict[str, str]] = None) -> list[Move]:
    """Read a CSV trace with header ``time_s,ue,site`` (one row per position report).

    Rows may come in any order; per UE, times must differ. A row that leaves the UE
    where it already is (same site as its previous row, or as its start site) is not
    a move and is dropped. ``topology`` (or ``ues``/``sites``/``start_sites``) enables
    name checks. Errors name ``FILE:LINE``.
    """
    path = Path(path)
    if topology is not None:
        ues = [u.name for u in topology.ues]
        sites = topology.site_names
        start_sites = {u.name: u.site for u in topology.ues}
    rows_, errors = read_rows(path, TRACE_HEADER, "trace")
    rows: list[tuple[float, int, str, str]] = []  # (time, line, ue, site)
    for line_no, (t_text, ue, site) in rows_:
        where = f"{path}:{line_no}"
        t = seconds(t_text)
        if t is None:
            errors.append(f"{where}: time_s {t_text!r} must be a number of seconds >= 0")
            continue
        if ues is not None and ue not in ues:
            errors.append(f"{where}: unknown UE {ue!r} (known UEs: {', '.join(ues) or 'none'})")
            continue
        if name_problem(ue) is not None:
            errors.append(f"{where}: bad UE name {ue!r}: {name_problem(ue)}")
            continue
        if sites is not None and site not in sites:
            errors.append(f"{where}: unknown site {site!r} (known sites: {', '.join(sites)})")
            continue
        rows.append((t, line_no, ue, site))
    seen: dict[tuple[str, float], int] = {}
    for t, line_no, ue, site in rows:
        if (ue, t) in seen:
            errors.append(f"{path}:{line_no}: UE {ue} already has a row at time {t:g} (line {seen[ue, t]})")
        else:
            seen[ue, t] = line_no
    if errors:
        raise TopologyError(in_file_order(errors))
    where_is = dict(start_sites or {})
    moves: list[Move] = []
    for t, _line, ue, site in sorted(rows):
        if where_is.get(ue) != site:
            moves.append(Move(t, ue, site))
        where_is[ue] = site
    return moves


def random_walk(topology: Topology, ue: str, start_site: Optional[str] = None, interval_s: float = 5.0,
                count: int = 10, seed: int = 0) -> list[Move]:
    """``count`` moves of ``ue``, one every ``interval_s`` seconds (first at ``interval_s``),
    each to a neighbour (in the site graph) of the current site chosen with ``random.Random(seed)``.
    ``start_site`` defaults to the UE's site in the topology."""
    errors: list[str] = []
    where = f"random walk of {ue}"
    try:
        start = start_site or topology.ue(ue).site
        topology.site(start)
    except KeyError as e:
        raise TopologyError(f"{where}: {e}") from None
    if isinstance(interval_s, bool) or not isinstance(interval_s, (int, float)) or not interval_s > 0:
        errors.append(f"{where}: interval_s {interval_s!r} must be a number of seconds > 0")
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        errors.append(f"{where}: count {count!r} must be an integer >= 0")
    if isinstance(seed, bool) or not isinstance(seed, int):
        errors.append(f"{where}: seed {seed!r} must be an integer")
    if not topology.neighbours(start):
        errors.append(f"{where}: site {start} has no neighbours to walk to")
    if errors:
        raise TopologyError(errors)
    rng = random.Random(seed)
    here, moves = start, []
    for k in range(1, count + 1):
        here = rng.choice(topology.neighbours(here))
        moves.append(Move(round(k * float(interval_s), 9), ue, here))
    return moves


def from_topology(topology: Topology) -> list[Move]:
    """The schedule given by the topology file's ``mobility:`` section (all UEs, time-sorted)."""
    moves: list[Move] = []
    for spec in topology.mobility:
        if spec.moves is not None:
            moves += scripted(spec.ue, spec.moves, topology)
        elif spec.random_walk is not None:
            rw = dict(spec.random_walk)
            moves += random_walk(topology, spec.ue, rw.get("start"), rw["interval_s"], rw["count"], rw.get("seed", 0))
        elif spec.trace is not None:
            moves += [m for m in from_trace(spec.trace, topology) if m.ue == spec.ue]
    return sorted(moves)


def merge(*schedules: Iterable[Move]) -> list[Move]:
    """One time-sorted schedule from several."""
    return sorted(m for s in schedules for m in s)
