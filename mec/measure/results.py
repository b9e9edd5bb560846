"""The results layer every scenario writes through: one folder per run, raw data kept.

A run of scenario NAME writes into ``results/NAME/TIMESTAMP/`` (``results`` under
the current directory unless another base folder is given, e.g. ``--out``):

* ``config.json``: the exact configuration: command line, parsed arguments, the
  topology (file path and its full text, or the data it was built from);
* ``<table>.csv``: raw data, one row per repetition and group (e.g. image and cache
  state) with one column per measured phase; each row is appended and flushed as
  soon as its repetition finishes, so an interrupted run keeps what it measured;
* ``summary.json``: :func:`mec.core.stats.summarize` (n, mean, Student-t 95% CI,
  median, p5/p95, min, max, std) and the number of missing values of every
  metric per group, the rows' outcomes per group and in all (``outcomes``,
  ``not_ok``: see `mec.measure.outcomes`), whether the run completed, and the
  environment (:func:`environment`: kernel, delay mechanism,
  OVS datapath, controller line, versions, machine);
* plots (PNG) made by the scenario from the same rows.

When the run is started with ``sudo``, the files are handed to the invoking user
at the end (so they can be edited or deleted without root).
"""

from __future__ import annotations

import argparse
import csv
import datetime as _dt
import importlib.metadata
import json
import logging
import os
import platform
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, Sequence, Union

from mec import __version__

from mec.core import config
from mec.core.stats import summarize
from mec.measure import outcomes

log = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
SUMMARY_FILE = "summary.json"
TIMESTAMP_FORMAT = "%Y%m%d-%H%M%S"


# ---------------------------------------------------------------------- values
def _jsonable(value: Any) -> Any:
    """VALUE made JSON-serialisable (paths and other objects become strings)."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def to_number(text: Any) -> Optional[float]:
    """A CSV cell as a float, None when empty or not a number."""
    if text is None or text == "":
        return None
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return float(text)
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6f}"
    return str(value)


# ---------------------------------------------------------------------- summaries
@dataclass(frozen=True)
class SummarySpec:
    """How a scenario's raw rows are summarised: grouped by these columns, these metrics."""

    table: str
    group_by: tuple[str, ...]
    metrics: tuple[str, ...]


def summarize_rows(rows: Iterable[Mapping[str, Any]], group_by: Sequence[str],
                   metrics: Sequence[str]) -> list[dict[str, Any]]:
    """Per group (in order of first appearance): ``{"group": {...}, "n": rows, "metrics": {...}}``
    and, when the rows carry an ``outcome`` column, ``"outcomes": {outcome: rows}``.

    Each metric is :func:`mec.core.stats.summarize` of the group's numeric values of
    that column plus ``missing``: how many rows of the group have no value there
    (an empty cell: a pull time of a pre-cached run, or a time that was never
    measured because the move failed); they are counted, never averaged in.
    """
    groups: dict[tuple, list[Mapping[str, Any]]] = {}
    for row in rows:
        key = tuple(str(row.get(g, "")) for g in group_by)
        groups.setdefault(key, []).append(row)
    out = []
    for key, members in groups.items():
        stats = {}
        for metric in metrics:
            values = [v for v in (to_number(r.get(metric)) for r in members) if v is not None]
            stats[metric] = {**summarize(values), "missing": len(members) - len(values)}
        entry = {"group": dict(zip(group_by, key)), "n": len(members), "metrics": stats}
        counts = outcomes.count(members)
        if counts:
            entry["outcomes"] = counts
        out.append(entry)
    return out


def find_group(summary_groups: Sequence[Mapping[str, Any]], **key: str) -> Optional[Mapping[str, Any]]:
    """The entry of SUMMARY_GROUPS whose group matches every KEY=value, or None."""
    for g in summary_groups:
        if all(str(g["group"].get(k)) == str(v) for k, v in key.items()):
            return g
    return None


def read_rows(path: Path | str) -> list[dict[str, str]]:
    """Rows of a raw-data CSV (a row cut short by a killed writer is skipped)."""
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        return [row for row in reader if None not in row.values() and None not in row]


# ---------------------------------------------------------------------- environment
def _first_line(argv: list[str]) -> Optional[str]:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    text = (proc.stdout or proc.stderr).strip()
    return text.splitlines()[0] if proc.returncode == 0 and text else None


def _pkg_version(name: str) -> Optional[str]:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _meminfo_mb() -> Optional[int]:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    except OSError:
        pass
    return None


def _cpu_model() -> Optional[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def _git() -> dict[str, Any]:
    head = _first_line(["git", "-C", str(config.REPO_DIR), "rev-parse", "HEAD"])
    if head is None:
        return {}
    try:
        dirty = bool(subprocess.run(["git", "-C", str(config.REPO_DIR), "status", "--porcelain"], capture_output=True, text=True,
                                    timeout=10).stdout.strip())
    except (OSError, subprocess.SubprocessError):
        dirty = None
    return {"commit": head, "dirty": dirty}


def environment(testbed: Any = None) -> dict[str, Any]:
    """Where and with what a run was measured.

    With a running TESTBED (:class:`mec.testbed.Testbed`) the values are read
    from it: the delay mechanisms its links really use, the datapath type of
    its bridges (from OVS), the controller line, its cloudlet engines' version.
    """
    env: dict[str, Any] = {
        "kernel": platform.release(),
        "machine": {
            "hostname": platform.node(),
            "arch": platform.machine(),
            "nproc": os.cpu_count(),
            "memory_mb": _meminfo_mb(),
            "cpu": _cpu_model(),
        },
        "versions": {
            "mec": __version__,
            "python": platform.python_version(),
            "python_executable": sys.executable,
            "ovs": _first_line(["ovs-vsctl", "--version"]),
            "docker_engine": None,
            "docker_sdk": _pkg_version("docker"),
            "mininet": _pkg_version("mininet"),
            "os-ken": _pkg_version("os-ken"),
            "ryu": _pkg_version("ryu"),
            "matplotlib": _pkg_version("matplotlib"),
        },
        "git": _git(),
        "prefix": config.PREFIX,
    }
    try:
        from topologies.netem import delay_mechanism

        env["delay_mechanism"] = delay_mechanism()
    except Exception as exc:  # noqa: BLE001 - the environment report must not fail a run
        env["delay_mechanism"] = f"unavailable: {exc}"
    if testbed is not None:
        env["controller"] = testbed.controller_line or "none (standalone learning switches)"
        net = testbed.network
        if net is not None:
            env["link_delay_mechanisms"] = sorted(net.delay_mechanisms)
            types = set()
            for sw in net.switches.values():
                dp = _first_line(["ovs-vsctl", "--timeout=5", "get", "Bridge", sw.name,
                                  "datapath_type"])
                if dp:
                    types.add(dp.strip('"'))
            env["ovs_datapath"] = ", ".join(sorted(types)) or None
            for engine in net.engines.values():
                try:
                    env["versions"]["docker_engine"] = engine.client().version().get("Version")
                    break
                except Exception:  # noqa: BLE001
                    continue
    return env


# ---------------------------------------------------------------------- raw tables
class CsvTable:
    """A raw-data CSV that grows one row at a time (appended and flushed at once)."""

    def __init__(self, path: Path, columns: Sequence[str]):
        self.path = path
        self.columns = tuple(columns)
        self.rows: list[dict[str, Any]] = []
        self._fh = open(path, "w", newline="", encoding="utf-8")
        self._writer = csv.DictWriter(self._fh, fieldnames=self.columns, extrasaction="raise")
        self._writer.writeheader()
        self._fh.flush()

    def append(self, row: Mapping[str, Any]) -> None:
        unknown = set(row) - set(self.columns)
        if unknown:
            raise KeyError(f"{self.path.name}: unknown columns {sorted(unknown)}")
        self._writer.writerow({c: _cell(row.get(c)) for c in self.columns})
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self.rows.append(dict(row))

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.close()


# ---------------------------------------------------------------------- the run folder
@dataclass
class ResultDir:
    """The folder of one scenario run (see the module docstring)."""

    scenario: str
    base: Optional[Path] = None  # default: ./results
    stamp: Optional[str] = None  # default: now
    path: Path = field(init=False)
    tables: dict[str, CsvTable] = field(init=False, default_factory=dict)
    env: dict[str, Any] = field(init=False, default_factory=dict)
    started: str = field(init=False, default="")
    plots: list[str] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        base = Path(self.base) if self.base else Path.cwd() / "results"
        now = _dt.datetime.now()
        self.started = now.isoformat(timespec="seconds")
        stamp = self.stamp or now.strftime(TIMESTAMP_FORMAT)
        path = base / self.scenario / stamp
        n = 2
        while path.exists():  # two runs in one second: never mix their files
            path = base / self.scenario / f"{stamp}-{n}"
            n += 1
        path.mkdir(parents=True)
        self.path = path
        log.info("results of this run: %s", path)

    def file(self, name: str) -> Path:
        return self.path / name

    def write_config(self, args: argparse.Namespace | Mapping[str, Any] | None = None,
                     topology_path: Optional[Path | str] = None,
                     topology_data: Optional[Mapping[str, Any]] = None,
                     **extra: Any) -> Path:
        """config.json: command line, arguments, the topology (file text or data), EXTRA."""
        if isinstance(args, argparse.Namespace):
            args = {k: v for k, v in vars(args).items() if not callable(v)}
        cfg: dict[str, Any] = {
            "scenario": self.scenario,
            "started": self.started,
            "argv": list(sys.argv),
            "args": _jsonable(args or {}),
        }
        if topology_path is not None:
            p = Path(topology_path)
            cfg["topology"] = {"path": str(p.resolve()), "content": p.read_text()}
        elif topology_data is not None:
            cfg["topology"] = {"path": None, "data": _jsonable(topology_data)}
        cfg.update(_jsonable(extra))
        return self._write_json(CONFIG_FILE, cfg)

    def table(self, name: str, columns: Sequence[str]) -> CsvTable:
        """A new raw-data table NAME.csv with COLUMNS."""
        if name in self.tables:
            raise ValueError(f"table {name} exists already")
        t = CsvTable(self.file(f"{name}.csv"), columns)
        self.tables[name] = t
        return t

    def set_environment(self, env: Mapping[str, Any]) -> None:
        self.env = dict(env)

    def write_summary(self, specs: Sequence[SummarySpec], complete: bool,
                      reason: str = "", **extra: Any) -> dict[str, Any]:
        """summary.json from the rows written so far; COMPLETE False marks a partial run."""
        summary: dict[str, Any] = {
            "scenario": self.scenario,
            "started": self.started,
            "finished": _dt.datetime.now().isoformat(timespec="seconds"),
            "complete": complete,
            "reason": reason,
            "tables": {},
            "plots": list(self.plots),
            "environment": _jsonable(self.env),
        }
        for spec in specs:
            t = self.tables.get(spec.table)
            rows = t.rows if t is not None else []
            summary["tables"][spec.table] = {
                "file": f"{spec.table}.csv",
                "rows": len(rows),
                "group_by": list(spec.group_by),
                "groups": summarize_rows(rows, spec.group_by, spec.metrics),
            }
        counts: dict[str, int] = {}
        for t in summary["tables"].values():
            for g in t["groups"]:
                for o, n in g.get("outcomes", {}).items():
                    counts[o] = counts.get(o, 0) + n
        summary["outcomes"] = counts
        summary["not_ok"] = outcomes.not_ok(counts)
        summary.update(_jsonable(extra))
        self._write_json(SUMMARY_FILE, summary)
        return summary

    def close(self) -> None:
        """Close the tables and, under sudo, give the files to the invoking user."""
        for t in self.tables.values():
            t.close()
        chown_to_sudo_user(self.path)

    def _write_json(self, name: str, data: Any) -> Path:
        path = self.file(name)
        tmp = path.with_name(name + ".tmp")
        tmp.write_text(json.dumps(data, indent=1) + "\n")
        os.replace(tmp, path)
        return path


def chown_to_sudo_user(path: Path) -> None:
    """Under sudo, hand PATH (recursively) and its new parents to SUDO_UID:SUDO_GID."""
    uid, gid = os.environ.get("SUDO_UID"), os.environ.get("SUDO_GID")
    if os.geteuid() != 0 or not uid or not gid:
        return
    try:
        uid_i, gid_i = int(uid), int(gid)
    except ValueError:
        return
    targets = [path]
    # The results/<scenario> parents made by this run too, up to an existing user folder.
    for parent in list(path.parents)[:2]:
        if parent.exists() and parent.stat().st_uid == 0:
            targets.append(parent)
    for target in targets:
        try:
            os.chown(target, uid_i, gid_i)
        except OSError:
            continue
        if target == path:
            for root, dirs, files in os.walk(path):
                for name in dirs + files:
                    try:
                        os.chown(os.path.join(root, name), uid_i, gid_i)
                    except OSError:
                        pass


def load_run(path: Path | str) -> dict[str, Any]:
    """summary.json (and config.json under ``"config"``) of a run folder."""
    path = Path(path)
    summary = json.loads((path / SUMMARY_FILE).read_text())
    cfg = path / CONFIG_FILE
    summary["config"] = json.loads(cfg.read_text()) if cfg.exists() else {}
    return summary


def find_runs(paths: Iterable[Path | str]) -> list[Path]:
    """Run folders among PATHS: a folder with summary.json, or every one below a folder."""
    runs: list[Path] = []
    for p in map(Path, paths):
        if (p / SUMMARY_FILE).exists():
            runs.append(p)
        elif p.is_dir():
            found = sorted(s.parent for s in p.rglob(SUMMARY_FILE))
            if not found:
                raise FileNotFoundError(f"{p}: no {SUMMARY_FILE} in it or below it")
            runs.extend(found)
        else:
            raise FileNotFoundError(f"{p}: not a results folder")
    return runs


Metric = Union[str, tuple[str, str, float]]


def format_table(groups: Sequence[Mapping[str, Any]], metrics: Sequence[Metric]) -> str:
    """A text table: one line per group and metric with n, median, mean and 95% CI.

    A metric is a column name or ``(column, label, factor)``, e.g.
    ``("bytes", "MB", 1e-6)`` to show bytes as megabytes.
    """
    lines = []
    keys = list(groups[0]["group"]) if groups else []
    widths = {k: max([len(k)] + [len(str(g["group"][k])) for g in groups]) + 2 for k in keys}
    mw = max([len("metric")] + [len(m if isinstance(m, str) else m[1]) for m in metrics]) + 2
    head = "".join(f"{k:<{widths[k]}}" for k in keys)
    lines.append(f"{head}{'metric':<{mw}}{'n':>4}{'miss':>5}{'median':>10}{'mean':>10}"
                 "  95% CI of the mean")
    for g in groups:
        label = "".join(f"{str(g['group'][k]):<{widths[k]}}" for k in keys)
        for m in metrics:
            col, name, f = (m, m, 1.0) if isinstance(m, str) else m
            s = g["metrics"].get(col)
            if not s or not (s.get("n") or s.get("missing")):
                continue
            missing = s.get("missing", 0)
            if not s.get("n"):
                lines.append(f"{label}{name:<{mw}}{0:>4}{missing:>5}{'-':>10}{'-':>10}  -")
                continue
            ci = (f"[{s['ci95_low'] * f:.3f}, {s['ci95_high'] * f:.3f}]"
                  if s.get("ci95_low") is not None else "-")
            lines.append(f"{label}{name:<{mw}}{s['n']:>4}{missing:>5}{s['median'] * f:>10.3f}"
                         f"{s['mean'] * f:>10.3f}  {ci}")
        if g.get("outcomes"):
            text = ", ".join(f"{o} {n}" for o, n in sorted(g["outcomes"].items()))
            lines.append(f"{label}{'outcomes':<{mw}}{text}")
    return "\n".join(lines)
