"""The plane of a position-driven run: access points, coverage circles, UE tracks, handovers.

:func:`plane_data` collects what to draw from a topology and its position schedule
(``topologies.coverage.PositionSchedule``) as plain JSON-able data (a run saves it as
``plane.json``); :func:`plane_plot` draws it with matplotlib: each access point a
triangle with its name and its coverage circle, each UE's track a line, handover
points as dots (labelled with the new access point), detaches as crosses and
re-attaches as circles. A run's plot can be redrawn from its ``plane.json``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from mec.measure.plots import PALETTE, _save, plt


def plane_data(topology: Any, schedule: Any) -> dict[str, Any]:
    """Access points, tracks and handover points, as plain data."""
    return {
        "access_points": [{"name": s.name, "x": s.position[0], "y": s.position[1], "r": s.coverage_m}
                          for s in topology.access_points()],
        "tracks": {ue: [list(p) for p in track] for ue, track in schedule.tracks.items()},
        "points": list(schedule.points),
        "summary": {ue: vars(s) for ue, s in schedule.summary.items()},
    }


def plane_plot(data: Mapping[str, Any], path: Path | str, title: str = "") -> Path:
    """Draw DATA (from :func:`plane_data`) to PATH (PNG)."""
    fig, ax = plt.subplots(figsize=(8, 6))
    for ap in data["access_points"]:
        ax.add_patch(plt.Circle((ap["x"], ap["y"]), ap["r"], color="#4C72B0", alpha=0.12))
        ax.add_patch(plt.Circle((ap["x"], ap["y"]), ap["r"], color="#4C72B0", fill=False, lw=0.8))
        ax.plot(ap["x"], ap["y"], marker="^", color="#4C72B0", ms=9)
        ax.annotate(ap["name"], (ap["x"], ap["y"]), textcoords="offset points", xytext=(5, 6), fontsize=8)
    for i, (ue, track) in enumerate(sorted(data["tracks"].items())):
        color = PALETTE[(i + 1) % len(PALETTE)]
        if track:
            ax.plot([p[1] for p in track], [p[2] for p in track], color=color, lw=1.2, label=f"UE {ue}")
        for p in (q for q in data["points"] if q["ue"] == ue):
            if p["to"] is None:
                ax.plot(p["x"], p["y"], marker="x", color="#C44E52", ms=9, mew=2)
            else:
                ax.plot(p["x"], p["y"], marker="o" if p["from"] else "s", color=color, ms=6,
                        mfc=color if p["from"] else "white")
                ax.annotate(f"{p['t_s']:g}s -> {p['to']}", (p["x"], p["y"]), textcoords="offset points",
                            xytext=(4, -12), fontsize=7, color=color)
    ax.plot([], [], marker="o", ls="", color="#555", label="handover")
    ax.plot([], [], marker="x", ls="", color="#C44E52", mew=2, label="detached (no coverage)")
    ax.plot([], [], marker="s", ls="", color="#555", mfc="white", label="re-attached")
    ax.set_aspect("equal", adjustable="datalim")
    ax.autoscale_view()
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.set_title(title or "access points, coverage and UE tracks")
    ax.legend(loc="best", fontsize=8)
    return _save(fig, path)
