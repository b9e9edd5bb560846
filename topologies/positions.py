"""Where UEs are over time: position samples on the access points' plane, from traces or models.

Every source yields time-sorted :class:`Sample` (seconds after start, UE, x, y in metres);
``topologies.coverage`` turns them into the handovers and detaches the network executes.

- :func:`read_fcd` -- SUMO floating-car data, the XML written by ``sumo --fcd-output``
  (``<timestep time=..><vehicle id=.. x=.. y=../>``; persons too), read with ``sumolib``;
  a mapping picks which vehicle is which UE;
- :func:`read_csv` -- a CSV of positions with header ``time_s,ue,x,y``;
- :func:`random_waypoint` -- the random waypoint model as defined by Johnson and Maltz
  (*Dynamic Source Routing in Ad Hoc Wireless Networks*, 1996) and analysed by Bettstetter
  et al. (IEEE Trans. Mobile Computing 2(3), 2003): pick a destination uniformly in the
  area and a speed uniformly in [v_min, v_max], travel in a straight line, pause, repeat;
- :func:`gauss_markov` -- the Gauss-Markov model of Liang and Haas (*Predictive
  distance-based mobility management for PCS networks*, INFOCOM 1999) in the form of Camp,
  Boleng and Davies (*A survey of mobility models for ad hoc network research*, WCMC 2002):
  ``s_n = a s_{n-1} + (1-a) s_mean + sqrt(1-a^2) N(0, sigma_s)``, likewise the direction;
  ``x_n = x_{n-1} + s_{n-1} cos d_{n-1} * dt``; near an edge the mean direction turns
  towards the area's centre.

:func:`transform` applies an offset and a scale onto the access points' plane and a
speed-up factor (times divided by it) for long traces. Invalid input raises
:class:`topologies.model.TopologyError` listing every problem (``FILE:LINE`` for CSV).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable, Mapping, Optional, Sequence, Union

from topologies.csvrows import finite, in_file_order, read_rows, seconds
from topologies.model import TopologyError, name_problem

POSITIONS_HEADER = ("time_s", "ue", "x", "y")


@dataclass(frozen=True, order=True)
class Sample:
    """UE ``ue`` is at ``(x, y)`` metres at ``t_s`` seconds after start."""

    t_s: float
    ue: str
    x: float
    y: float


def transform(samples: Iterable[Sample], offset: Sequence[float] = (0.0, 0.0), scale: float = 1.0,
              speedup: float = 1.0) -> list[Sample]:
    """``x' = (x + offset_x) * scale`` (likewise y), ``t' = t / speedup``; time-sorted."""
    if not (scale > 0 and speedup > 0):
        raise TopologyError(f"scale {scale!r} and speedup {speedup!r} must be > 0")
    ox, oy = offset
    return sorted(Sample(s.t_s / speedup, s.ue, (s.x + ox) * scale, (s.y + oy) * scale) for s in samples)


def read_fcd(path: Union[str, Path], vehicles: Mapping[str, str]) -> list[Sample]:
    """Samples of the FCD file's vehicles (or persons) named in VEHICLES (vehicle id -> UE).

    Errors: unreadable or malformed XML, a vehicle of VEHICLES never seen (the ids that
    are in the file are listed), a timestep without a number."""
    import xml.sax
    from xml.etree.ElementTree import ParseError

    from sumolib import xml as sumo_xml

    path = Path(path)
    if not path.is_file():
        raise TopologyError(f"{path}: cannot read FCD file: no such file")
    samples: list[Sample] = []
    seen: set[str] = set()
    errors: list[str] = []
    try:
        for step in sumo_xml.parse(str(path), "timestep"):
            t = finite(step.time)
            if t is None or t < 0:
                errors.append(f"{path}: timestep time {step.time!r} is not a number of seconds >= 0")
                continue
            for kind in ("vehicle", "person"):
                for v in (step.getChild(kind) if step.hasChild(kind) else []):
                    seen.add(v.id)
                    if v.id in vehicles:
                        x, y = finite(v.x), finite(v.y)
                        if x is None or y is None:
                            errors.append(f"{path}: time {t:g}: {kind} {v.id} has no numeric x, y")
                            continue
                        samples.append(Sample(t, vehicles[v.id], x, y))
    except (xml.sax.SAXException, ParseError, OSError, AttributeError) as e:
        raise TopologyError(f"{path}: not SUMO floating-car data (sumo --fcd-output): {e}") from None
    missing = sorted(set(vehicles) - seen)
    if missing:
        errors.append(f"{path}: no vehicle or person {', '.join(missing)} in the file (ids in it: "
                      f"{', '.join(sorted(seen)[:20]) or 'none'}{' ...' if len(seen) > 20 else ''})")
    if errors:
        raise TopologyError(errors)
    return sorted(samples)


def read_csv(path: Union[str, Path], ues: Optional[Sequence[str]] = None) -> list[Sample]:
    """Samples from a CSV with header ``time_s,ue,x,y`` (rows in any order; per UE, times differ)."""
    path = Path(path)
    rows, errors = read_rows(path, POSITIONS_HEADER, "positions")
    samples, seen = [], {}
    for line, (t, ue, xs, ys) in rows:
        where, tv, x, y = f"{path}:{line}", seconds(t), finite(xs), finite(ys)
        if tv is None:
            errors.append(f"{where}: time_s {t!r} must be a number of seconds >= 0")
        elif x is None or y is None:
            errors.append(f"{where}: x and y must be numbers of metres, got {xs!r}, {ys!r}")
        elif name_problem(ue) is not None or (ues is not None and ue not in ues):
            errors.append(f"{where}: unknown UE {ue!r} (known UEs: {', '.join(ues or []) or 'none'})")
        elif (ue, tv) in seen:
            errors.append(f"{where}: UE {ue} already has a row at time {tv:g} (line {seen[ue, tv]})")
        else:
            seen[ue, tv] = line
            samples.append(Sample(tv, ue, x, y))
    if errors:
        raise TopologyError(in_file_order(errors))
    return sorted(samples)


def _area_check(area: Sequence[float], duration_s: float, step_s: float) -> None:
    problems = []
    if len(area) != 2 or not all(a > 0 for a in area):
        problems.append(f"area {list(area)!r} must be [width, height] in metres, both > 0")
    if not duration_s > 0 or not 0 < step_s <= duration_s:
        problems.append(f"duration_s {duration_s!r} and step_s {step_s!r}: 0 < step_s <= duration_s")
    if problems:
        raise TopologyError(problems)


def random_waypoint(ue: str, area: Sequence[float], speed_mps: Sequence[float], pause_s: Sequence[float],
                    duration_s: float, step_s: float = 1.0, seed: int = 0,
                    start: Optional[Sequence[float]] = None) -> list[Sample]:
    """Random waypoint in [0, w] x [0, h]: uniform destination, uniform speed in
    ``speed_mps = [v_min, v_max]`` (v_min > 0: the model's known speed decay at 0), uniform
    pause in ``pause_s = [p_min, p_max]``; sampled every ``step_s`` up to ``duration_s``."""
    _area_check(area, duration_s, step_s)
    if not (len(speed_mps) == 2 and 0 < speed_mps[0] <= speed_mps[1]):
        raise TopologyError(f"speed_mps {list(speed_mps)!r} must be [v_min, v_max] with 0 < v_min <= v_max")
    if not (len(pause_s) == 2 and 0 <= pause_s[0] <= pause_s[1]):
        raise TopologyError(f"pause_s {list(pause_s)!r} must be [p_min, p_max] with 0 <= p_min <= p_max")
    rng = random.Random(seed)
    w, h = area
    x, y = start if start is not None else (rng.uniform(0, w), rng.uniform(0, h))
    # legs: (t_start, x0, y0, t_arrive, x1, y1, t_leave)
    legs, t = [], 0.0
    while t <= duration_s:
        dx, dy, v = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(*speed_mps)
        arrive = t + math.hypot(dx - x, dy - y) / v
        leave = arrive + rng.uniform(*pause_s)
        legs.append((t, x, y, arrive, dx, dy))
        x, y, t = dx, dy, leave
    samples, k, i = [], 0, 0
    while k * step_s <= duration_s + 1e-9:
        now = k * step_s
        while i + 1 < len(legs) and legs[i + 1][0] <= now:
            i += 1
        t0, x0, y0, t1, x1, y1 = legs[i]
        f = 1.0 if now >= t1 or t1 == t0 else (now - t0) / (t1 - t0)
        samples.append(Sample(round(now, 9), ue, x0 + f * (x1 - x0), y0 + f * (y1 - y0)))
        k += 1
    return samples


def gauss_markov(ue: str, area: Sequence[float], speed_mps: float, duration_s: float, step_s: float = 1.0,
                 alpha: float = 0.75, sigma_speed: float = 1.0, sigma_dir: float = 0.5, seed: int = 0,
                 start: Optional[Sequence[float]] = None) -> list[Sample]:
    """Gauss-Markov in [0, w] x [0, h] (see module doc): mean speed ``speed_mps``, memory
    ``alpha`` in [0, 1] (0: memoryless, 1: straight line), Gaussian noise of standard
    deviation ``sigma_speed`` (m/s) and ``sigma_dir`` (rad); within 10% of the area's size
    from an edge the mean direction points to the centre. Positions are clamped to the area."""
    _area_check(area, duration_s, step_s)
    if not (0 <= alpha <= 1) or not speed_mps > 0:
        raise TopologyError(f"alpha {alpha!r} must be in [0, 1] and speed_mps {speed_mps!r} > 0")
    rng = random.Random(seed)
    w, h = area
    x, y = start if start is not None else (rng.uniform(0, w), rng.uniform(0, h))
    s, d = speed_mps, rng.uniform(0, 2 * math.pi)
    root = math.sqrt(1 - alpha ** 2)
    samples, k = [], 0
    while k * step_s <= duration_s + 1e-9:
        samples.append(Sample(round(k * step_s, 9), ue, x, y))
        x = min(w, max(0.0, x + s * math.cos(d) * step_s))
        y = min(h, max(0.0, y + s * math.sin(d) * step_s))
        near_edge = min(x, w - x) < 0.1 * w or min(y, h - y) < 0.1 * h
        to_centre = math.atan2(h / 2 - y, w / 2 - x)
        # the mean direction, unwrapped next to d so that the blend turns the short way
        mean_d = d + math.remainder(to_centre - d, 2 * math.pi) if near_edge else d
        s = max(0.0, alpha * s + (1 - alpha) * speed_mps + root * rng.gauss(0, sigma_speed))
        d = alpha * d + (1 - alpha) * mean_d + root * rng.gauss(0, sigma_dir)
        k += 1
    return samples


def rename(samples: Iterable[Sample], ue: str) -> list[Sample]:
    """The samples with their UE set to UE."""
    return [replace(s, ue=ue) for s in samples]
