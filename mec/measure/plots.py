"""Figures of the experiments, drawn with matplotlib (Agg backend: no display needed).

* :func:`grouped_bars` / :func:`startup_figure`: the paper's Fig. 4: container
  start-up time per image, pre-cached vs pulled, bars at the mean with 95%
  confidence-interval error bars;
* :func:`stacked_bars` / :func:`transfer_figure`: the paper's Fig. 5: the phases
  of moving an image between edges (export, transfer, load, launch) stacked per
  link profile, with the 95% CI of the total;
* :func:`timeline`: one dot per user request (send time vs latency) coloured by
  the replica that answered, failed requests marked, vertical lines at events
  (UE moves, migration phases), the SLA bound as a horizontal line.

Inputs are plain data (summaries from :func:`mec.measure.results.summarize_rows`, probe
records, event dicts), so the figures can be redrawn from a run's raw files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from mec.measure.probelog import ProbeRecord  # noqa: E402

Stats = Mapping[str, Any]  # one mec.measure.metrics.summarize() result

PALETTE = ("#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3",
           "#8C8C8C", "#CCB974", "#64B5CD")
DPI = 130


def _err(stats: Optional[Stats]) -> tuple[float, float, float]:
    """(mean, error below, error above) of a summary; no error bar with fewer than 2 values."""
    if not stats or not stats.get("n"):
        return 0.0, 0.0, 0.0
    mean = float(stats["mean"])
    if stats.get("ci95_low") is None:
        return mean, 0.0, 0.0
    return mean, max(0.0, mean - stats["ci95_low"]), max(0.0, stats["ci95_high"] - mean)


def _label(v: float) -> str:
    return f"{v:.2f}" if v < 10 else f"{v:.1f}"


def _save(fig, path: Path | str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def _style_bars(ax, xs, categories: Sequence[str], ylabel: str, xlabel: str, title: str,
                headroom: float) -> None:
    """Axes of a bar chart: category ticks, labels, room above the tallest bar, y grid."""
    ax.set_xticks(list(xs))
    ax.set_xticklabels(categories)
    ax.set_ylabel(ylabel)
    if xlabel:
        ax.set_xlabel(xlabel)
    if title:
        ax.set_title(title, fontsize=10)
    ax.set_ylim(bottom=0, top=ax.get_ylim()[1] * headroom)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)


def grouped_bars(categories: Sequence[str], series: Sequence[str],
                 stats: Mapping[tuple[str, str], Stats], path: Path | str,
                 ylabel: str, title: str = "", series_labels: Optional[Mapping[str, str]] = None,
                 xlabel: str = "") -> Path:
    """Bars per category, one per series, at the mean with 95% CI error bars.

    STATS maps (category, series) to a summary; missing pairs are left empty.
    Each bar is labelled with its mean (and n).
    """
    fig, ax = plt.subplots(figsize=(max(5.0, 1.6 * len(categories) + 2), 4.2))
    width = 0.8 / max(1, len(series))
    for j, ser in enumerate(series):
        xs, means, lo, hi = [], [], [], []
        for i, cat in enumerate(categories):
            s = stats.get((cat, ser))
            if not s or not s.get("n"):
                continue
            m, el, eh = _err(s)
            xs.append(i + (j - (len(series) - 1) / 2) * width)
            means.append(m)
            lo.append(el)
            hi.append(eh)
        if not xs:
            continue
        label = (series_labels or {}).get(ser, ser)
        bars = ax.bar(xs, means, width * 0.92, yerr=[lo, hi], capsize=4, label=label,
                      color=PALETTE[j % len(PALETTE)], edgecolor="black", linewidth=0.5,
                      error_kw={"elinewidth": 1, "ecolor": "black"})
        for bar, m, h in zip(bars, means, hi):
            ax.annotate(_label(m), (bar.get_x() + bar.get_width() / 2, m + h),
                        xytext=(0, 3), textcoords="offset points", ha="center", va="bottom",
                        fontsize=8)
    _style_bars(ax, range(len(categories)), categories, ylabel, xlabel, title, headroom=1.08)
    ax.legend(frameon=False)
    return _save(fig, path)


def stacked_bars(categories: Sequence[str], phases: Sequence[str],
                 means: Mapping[tuple[str, str], float], path: Path | str, ylabel: str,
                 totals: Optional[Mapping[str, Stats]] = None, title: str = "",
                 phase_labels: Optional[Mapping[str, str]] = None, xlabel: str = "") -> Path:
    """One bar per category stacking the mean of each phase; error bar = 95% CI of TOTALS."""
    fig, ax = plt.subplots(figsize=(max(4.5, 1.5 * len(categories) + 2.5), 4.4))
    bottoms = [0.0] * len(categories)
    xs = list(range(len(categories)))
    top = max((sum(means.get((c, p), 0.0) for p in phases) for c in categories), default=1.0)
    for j, phase in enumerate(phases):
        heights = [float(means.get((c, phase), 0.0) or 0.0) for c in categories]
        bars = ax.bar(xs, heights, 0.55, bottom=bottoms, color=PALETTE[j % len(PALETTE)],
                      edgecolor="black", linewidth=0.5,
                      label=(phase_labels or {}).get(phase, phase))
        for bar, h, b in zip(bars, heights, bottoms):
            if h >= 0.045 * top:  # label segments tall enough to hold text
                ax.text(bar.get_x() + bar.get_width() / 2, b + h / 2, _label(h), ha="center",
                        va="center", fontsize=8)
        bottoms = [b + h for b, h in zip(bottoms, heights)]
    if totals:
        for x, cat, stacked in zip(xs, categories, bottoms):
            s = totals.get(cat)
            m, el, eh = _err(s)
            if not s or not s.get("n"):
                continue
            # The bar's top is the sum of the phase means, which is the total's mean.
            # Drawn beside the bar's right edge, so it never hides a segment's label.
            ax.errorbar([x + 0.55 / 2 + 0.05], [stacked], yerr=[[el], [eh]], fmt="none",
                        ecolor="black", capsize=4, elinewidth=1)
            ax.annotate(f"{_label(m)} s", (x, stacked), xytext=(0, 3),
                        textcoords="offset points", ha="center", va="bottom", fontsize=8,
                        fontweight="bold")
    _style_bars(ax, xs, categories, ylabel, xlabel, title, headroom=1.1)
    handles, labels = ax.get_legend_handles_labels()
    ax.legend(handles[::-1], labels[::-1], frameon=False, loc="upper left",
              bbox_to_anchor=(1.0, 1.0))
    return _save(fig, path)


# ---------------------------------------------------------------------- paper figures
def _index(groups: Iterable[Mapping[str, Any]], *keys: str) -> dict[tuple[str, ...], Mapping]:
    return {tuple(str(g["group"][k]) for k in keys): g for g in groups}


def _n_text(stats: Iterable[Stats]) -> str:
    ns = sorted({int(s.get("n") or 0) for s in stats if s})
    if not ns:
        return "n=0"
    return f"n={ns[0]}" if len(ns) == 1 else f"n={ns[0]}-{ns[-1]}"


def startup_figure(groups: Sequence[Mapping[str, Any]], path: Path | str,
                   images: Optional[Sequence[str]] = None, metric: str = "total_s",
                   title: str = "") -> Path:
    """Fig. 4: start-up time per image, pre-cached vs pulled (summary groups by image, state)."""
    idx = _index(groups, "image", "state")
    images = list(images or dict.fromkeys(k[0] for k in idx))
    states = [s for s in ("cached", "pulled") if any(k[1] == s for k in idx)]
    stats = {(img, st): idx[(img, st)]["metrics"][metric] for img, st in idx}
    return grouped_bars(images, states, stats, path, ylabel="start-up time (s)",
                        title=title or "Container start-up: deploy to first HTTP answer\n"
                        f"(mean of {_n_text(stats.values())}, error bars: 95% CI)",
                        series_labels={"cached": "pre-cached", "pulled": "pulled from cloud"},
                        xlabel="image")


TRANSFER_PHASES = ("export_s", "transfer_s", "load_s", "launch_s")
TRANSFER_LABELS = {"export_s": "export (save + gzip)", "transfer_s": "transfer",
                   "load_s": "load", "launch_s": "launch"}


def transfer_figure(groups: Sequence[Mapping[str, Any]], path: Path | str,
                    links: Optional[Sequence[str]] = None, title: str = "",
                    link_labels: Optional[Mapping[str, str]] = None) -> Path:
    """Fig. 5: export, transfer, load, launch stacked per link (summary groups by link)."""
    idx = _index(groups, "link")
    links = list(links or [k[0] for k in idx])
    means = {(lk, ph): (idx[(lk,)]["metrics"][ph].get("mean") or 0.0)
             for (lk,) in idx for ph in TRANSFER_PHASES}
    totals = {lk: idx[(lk,)]["metrics"]["total_s"] for (lk,) in idx}
    labels = [(link_labels or {}).get(lk, lk) for lk in links]
    n_text = _n_text(totals.values())
    means = {((link_labels or {}).get(lk, lk), ph): v for (lk, ph), v in means.items()}
    totals = {(link_labels or {}).get(lk, lk): v for lk, v in totals.items()}
    return stacked_bars(labels, TRANSFER_PHASES, means, path, ylabel="time (s)", totals=totals,
                        title=title or "Image transfer between edges, per phase\n"
                        f"(means of {n_text}; error bar: 95% CI of the total)",
                        phase_labels=TRANSFER_LABELS, xlabel="edge-to-edge link")


# ---------------------------------------------------------------------- timeline
def timeline(records: Iterable[ProbeRecord], events: Iterable[Mapping[str, Any]],
             path: Path | str, sla_ms: Optional[float] = None, title: str = "",
             t0: Optional[float] = None, log_y: bool = False) -> Path:
    """Per-request latency over time, coloured by serving replica, with event marks.

    RECORDS are probe records (:class:`mec.measure.probelog.ProbeRecord`); EVENTS are
    dicts with ``t`` (``time.monotonic()``, the probe's clock) and ``kind``
    (optionally ``label``). Time 0 is T0, default the first send or event.
    Failed requests are red crosses on the time axis; SLA_MS draws the bound.
    """
    recs = sorted(records, key=lambda r: r.t_send)
    evs = sorted(events, key=lambda e: float(e["t"]))
    starts = [r.t_send for r in recs[:1]] + [float(e["t"]) for e in evs[:1]]
    if t0 is None:
        t0 = min(starts) if starts else 0.0
    fig, ax = plt.subplots(figsize=(9, 4.6))
    replicas = list(dict.fromkeys(r.replica or "?" for r in recs if r.ok))
    for i, rep in enumerate(replicas):
        pts = [(r.t_send - t0, r.latency_ms) for r in recs
               if r.ok and (r.replica or "?") == rep and r.latency_ms is not None]
        ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=6, color=PALETTE[i % len(PALETTE)],
                   label=f"served by {rep}", linewidths=0, zorder=3)
    failed = [r for r in recs if r.failed]
    if failed:
        lats = [r.latency_ms for r in recs if r.ok and r.latency_ms]
        fail_y = (min(lats) / 2 if lats else 0.1) if log_y else 0.0
        ax.scatter([r.t_send - t0 for r in failed], [fail_y] * len(failed), marker="x", s=14,
                   color="red", label=f"failed ({len(failed)})", zorder=4, clip_on=False)
    if sla_ms is not None:
        ax.axhline(sla_ms, color="black", linestyle=":", linewidth=1, label=f"SLA {sla_ms:g} ms")
    if log_y:
        ax.set_yscale("log")
    else:
        ax.set_ylim(bottom=0, top=ax.get_ylim()[1] * 1.05)
    marks = ax.get_xaxis_transform()  # x in data, y in axes fraction
    for e in evs:
        x = float(e["t"]) - t0
        ax.axvline(x, color="0.35", linestyle="--", linewidth=0.8, zorder=1)
        ax.text(x, 1.01, str(e.get("label") or e["kind"]), transform=marks, rotation=35,
                ha="left", va="bottom", fontsize=7, color="0.2")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("request latency (ms)")
    if title:
        ax.set_title(title, fontsize=10, pad=40 if evs else 6)
    ax.grid(alpha=0.3)
    ax.set_axisbelow(True)
    if replicas or failed or sla_ms is not None:
        ax.legend(frameon=True, fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0),
                  markerscale=2)
    return _save(fig, path)
