"""Scale of the emulator itself: bring-up, teardown, memory, idle CPU and move cost vs. size.

For each size N (``--sizes``, default 3,12,24,48,96) a generated ring of N sites
(``topologies.generate.ring``: one cloudlet with its own Docker engine and one UE
per site, ``mec`` backbone links with a delay line each, the cloud behind the
``wan`` link) is started with the Network Manager (`mec.testbed.Testbed`) and
measured:

* ``up_s``: wall time of ``Testbed.start()`` (controller, switches, links, engines,
  and the registry answering from every cloudlet); ``phases``: the network's own
  phase times (``MecNetwork.timings``); ``down_s``: wall time of ``Testbed.stop()``;
  ``leftovers``: bridges and namespaces of the prefix still there after it (0 expected).
* Memory, two ways: ``pss_mb``, the summed proportional set size (PSS, from
  /proc/PID/smaps_rollup, shared pages divided among their users) of the project's
  processes (engines and their containerd, node shells, delay lines, registry,
  controller: every process whose command line names the prefix's run or engine
  folders or node shells, plus the links' delay lines); ``mem_available_delta_mb``,
  the drop of /proc/meminfo MemAvailable from before the start to after the idle
  window (it includes kernel memory: namespaces, interfaces, sockets; and whatever
  else the machine did meanwhile). Both also per site.
* Idle CPU over ``--idle-s`` seconds once up, nothing running in the network:
  ``idle_cpu_pct``, the project's processes' CPU time (utime+stime from
  /proc/PID/stat) in percent of one core; ``vswitchd_cpu_pct``, ovs-vswitchd's
  (shared by every network on the machine, so an upper bound of ours;
  ``vswitchd_baseline_cpu_pct`` is its CPU over a window of the same length just
  before the start: the difference is what this network adds);
  ``machine_busy_pct``, the whole machine's (/proc/stat, all cores);
  ``idle_switch_rx_packets``, packets the network's switch ports received in the
  window: ovs-vswitchd's main thread polls every port of the machine at each
  wake-up, so another run's traffic costs more with our ports there, but only
  these packets are wake-ups this network causes (`topologies.quiet`: none but the
  bring-up's last ones, the registry check's connections closing: 6 at 3 sites).
* ``move_ms``: wall time of each ``MecNetwork.move()`` call (``--moves`` moves of UE
  u1 between s1 and s2) and ``move_emulator_ms`` where the move reports the
  emulator's own part (``MobilityEvent.emulator_ms``).

Every run records ``load1`` (1-minute load average) at its start: on a shared
2-core machine the numbers depend on it. ``--repeat`` runs per size give the
median and spread (min, max) of up_s and down_s. ``--quick``: sizes 3 and 6,
a 3 s idle window and 2 moves.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any, Optional

from mec.core import config

log = logging.getLogger(__name__)

DEFAULT_SIZES = (3, 12, 24, 48, 96)
QUICK_SIZES = (3, 6)
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------- /proc readers

def load1() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def mem_available_mb() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no MemAvailable in /proc/meminfo")


def machine_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot (/proc/stat; idle and iowait are not busy)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    total = sum(fields[:8])  # guest time is already inside user
    return total - fields[3] - fields[4], total


def cpu_seconds(pid: int) -> Optional[float]:
    """utime+stime of PID in seconds, None once it is gone."""
    try:
        rest = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(rest[11]) + int(rest[12])) / CLK_TCK


def pss_kb(pid: int) -> Optional[int]:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _cmdline(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(
            errors="replace")
    except OSError:
        return ""


def project_pids(network: Any = None) -> dict[int, str]:
    """pid -> program of this prefix's processes (see the module docstring)."""
    marks = (f"{config.RUN_DIR}/", f"{config.ENGINES_DIR}/", f"mininet:{config.name()}")
    out: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            cmd = _cmdline(entry.name)
            if any(m in cmd for m in marks):
                out[int(entry.name)] = Path(cmd.split(" ", 1)[0]).name
    for link in (network.links if network is not None else []):
        for pid in link.pids:
            out[pid] = "delay-line"
    return out


def vswitchd_pid() -> Optional[int]:
    try:
        return int(Path("/var/run/openvswitch/ovs-vswitchd.pid").read_text().strip())
    except (OSError, ValueError):
        return None


# --------------------------------------------------------------------------- one run

def switch_rx_packets(network: Any) -> int:
    """Packets received so far by the network's switch ports (kernel counters of their
    root-namespace ends): each one wakes the shared ovs-vswitchd."""
    total = 0
    for sw in network.switches.values():
        for intf in sw.intfList():
            if intf.name == "lo":  # a switch's node is the root namespace: its lo is the machine's
                continue
            try:
                total += int(Path(f"/sys/class/net/{intf.name}/statistics/rx_packets").read_text())
            except (OSError, ValueError):
                continue  # a port on another server
    return total


def idle_cpu(network: Any, seconds: float) -> dict[str, Any]:
    """CPU used over SECONDS by the project's processes, ovs-vswitchd and the machine,
    and the packets the network's switch ports received meanwhile (what of
    ovs-vswitchd's wake-ups this network causes itself)."""
    pids = project_pids(network)
    vsw = vswitchd_pid()
    rx0 = switch_rx_packets(network)
    before = {pid: cpu_seconds(pid) for pid in pids}
    vsw0 = cpu_seconds(vsw) if vsw else None
    busy0, total0 = machine_jiffies()
    t0 = time.monotonic()
    time.sleep(seconds)
    window = time.monotonic() - t0
    used = 0.0
    for pid, start in before.items():
        end = cpu_seconds(pid)
        if start is not None and end is not None:
            used += end - start
    vsw1 = cpu_seconds(vsw) if vsw else None
    busy1, total1 = machine_jiffies()
    return {
        "idle_window_s": round(window, 2),
        "idle_cpu_pct": round(100 * used / window, 2),
        "vswitchd_cpu_pct": (None if vsw0 is None or vsw1 is None
                             else round(100 * (vsw1 - vsw0) / window, 2)),
        "machine_busy_pct": round(100 * (busy1 - busy0) / max(1, total1 - total0), 1),
        "idle_switch_rx_packets": switch_rx_packets(network) - rx0,
    }


def memory(network: Any) -> dict[str, Any]:
    pids = project_pids(network)
    by_program: dict[str, float] = {}
    total = 0
    for pid, program in pids.items():
        kb = pss_kb(pid) or 0
        total += kb
        by_program[program] = by_program.get(program, 0) + kb / 1024
    return {"processes": len(pids), "pss_mb": round(total / 1024, 1),
            "pss_by_program_mb": {k: round(v, 1) for k, v in sorted(by_program.items())}}


def time_moves(network: Any, count: int) -> dict[str, Any]:
    """Move u1 between s1 and s2 COUNT times; wall time of each move() call."""
    calls, emulator = [], []
    for i in range(count):
        to = "s2" if i % 2 == 0 else "s1"
        t0 = time.perf_counter()
        event = network.move("u1", to)
        calls.append(round(1000 * (time.perf_counter() - t0), 3))
        own = getattr(event, "emulator_ms", None)
        if own is not None:
            emulator.append(round(own, 3))
    return {"move_ms": calls,
            "move_ms_median": statistics.median(calls) if calls else None,
            "move_emulator_ms": emulator,
            "move_emulator_ms_median": statistics.median(emulator) if emulator else None}


def leftovers() -> int:
    """Bridges and named namespaces of this prefix still on the machine."""
    bridges = subprocess.run(["ovs-vsctl", "--timeout=10", "list-br"], capture_output=True,
                             text=True, timeout=15).stdout.split()
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                           timeout=15).stdout.split("\n")
    names = bridges + [row.split()[0] for row in netns if row.strip()]
    return sum(1 for n in names if config.is_ours(n))


def measure(sites: int, idle_s: float, moves: int) -> dict[str, Any]:
    """One bring-up, idle window, moves and teardown of a ring of SITES sites."""
    from mec.testbed import Testbed
    from topologies.generate import ring

    topo = ring(sites)
    row: dict[str, Any] = {"sites": sites, "load1": load1()}
    vsw, base = vswitchd_pid(), None
    if vsw:  # what ovs-vswitchd spends without this network (other networks, traffic)
        c0, t0 = cpu_seconds(vsw), time.monotonic()
        time.sleep(idle_s)
        c1 = cpu_seconds(vsw)
        if c0 is not None and c1 is not None:
            base = round(100 * (c1 - c0) / (time.monotonic() - t0), 2)
    row["vswitchd_baseline_cpu_pct"] = base
    avail0 = mem_available_mb()
    tb = Testbed(topo, controller="os-ken")
    t0 = time.perf_counter()
    try:
        tb.start()
        row["up_s"] = round(time.perf_counter() - t0, 3)
        net = tb.network
        row["links"] = len(net.links)
        row["delay_lines"] = sum(len(l.pids) for l in net.links)
        row.update(idle_cpu(net, idle_s))
        row.update(memory(net))
        row["mem_available_delta_mb"] = round(avail0 - mem_available_mb(), 1)
        row.update(time_moves(net, moves))
        row["phases"] = {k: round(v, 3) for k, v in net.timings.items()}
    finally:
        net = tb.network
        t1 = time.perf_counter()
        tb.stop()
        row["down_s"] = round(time.perf_counter() - t1, 3)
        if net is not None:
            row.setdefault("phases", {}).update(
                {k: round(v, 3) for k, v in net.timings.items() if "down" in k})
    row["leftovers"] = leftovers()
    row["pss_per_site_mb"] = round(row["pss_mb"] / sites, 1)
    row["mem_available_delta_per_site_mb"] = round(row["mem_available_delta_mb"] / sites, 1)
    return row


def summarize(sites: int, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Median and (min, max) of the runs of one size."""
    out: dict[str, Any] = {"sites": sites, "runs": len(runs),
                           "failed": sum(1 for r in runs if "error" in r)}
    for key in ("up_s", "down_s", "pss_mb", "mem_available_delta_mb", "idle_cpu_pct",
                "vswitchd_cpu_pct", "vswitchd_baseline_cpu_pct", "idle_switch_rx_packets",
                "move_ms_median",
                "move_emulator_ms_median", "load1"):
        values = [r[key] for r in runs if r.get(key) is not None]
        out[key] = statistics.median(values) if values else None
        out[f"{key}_range"] = [min(values), max(values)] if values else None
    return out


# --------------------------------------------------------------------------- CLI

def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES)),
                   help="comma-separated numbers of sites (default %(default)s)")
    p.add_argument("--repeat", type=int, default=1, help="runs per size (median and range)")
    p.add_argument("--idle-s", type=float, default=10.0,
                   help="idle window for the CPU measurement (default 10 s)")
    p.add_argument("--moves", type=int, default=6, help="timed moves per run (default 6)")
    p.add_argument("--quick", action="store_true",
                   help=f"sizes {','.join(map(str, QUICK_SIZES))}, 3 s idle window, 2 moves")


def run(args: argparse.Namespace) -> int:
    from mec.host import daemons

    daemons.ensure_all()
    sizes = list(QUICK_SIZES) if args.quick else [int(x) for x in args.sizes.split(",") if x]
    idle_s, moves = (3.0, 2) if args.quick else (args.idle_s, args.moves)
    runs, sizes_out = [], []
    for sites in sizes:
        mine = []
        for i in range(args.repeat):
            if not args.json:
                print(f"ring of {sites} sites, run {i + 1}/{args.repeat} ...", flush=True)
            try:
                mine.append(measure(sites, idle_s, moves))
            except Exception as exc:  # noqa: BLE001 - a failed run is counted and named
                log.exception("ring of %d sites failed", sites)
                mine.append({"sites": sites, "error": f"{type(exc).__name__}: {exc}"})
        runs += mine
        sizes_out.append(summarize(sites, mine))
    result = {"prefix": config.PREFIX, "cores": os.cpu_count(), "sizes": sizes_out,
              "runs": runs}
    failed = sum(s["failed"] for s in sizes_out)
    if args.json:
        print(json.dumps(result, indent=1))
        return 1 if failed else 0
    fmt = lambda v: "-" if v is None else f"{v:g}"  # noqa: E731
    print(f"{'sites':>5}{'up s':>8}{'down s':>8}{'PSS MB':>9}{'/site':>7}{'MemAvail MB':>12}"
          f"{'idle CPU %':>11}{'vswitchd %':>11}{'move ms':>9}{'load1':>7}")
    for s in sizes_out:
        print(f"{s['sites']:>5}{fmt(s['up_s']):>8}{fmt(s['down_s']):>8}{fmt(s['pss_mb']):>9}"
              f"{fmt(round(s['pss_mb'] / s['sites'], 1) if s['pss_mb'] else None):>7}"
              f"{fmt(s['mem_available_delta_mb']):>12}{fmt(s['idle_cpu_pct']):>11}"
              f"{fmt(s['vswitchd_cpu_pct']):>11}{fmt(s['move_ms_median']):>9}"
              f"{fmt(s['load1']):>7}")
    for r in runs:
        if "error" in r:
            print(f"FAILED: ring of {r['sites']} sites: {r['error']}")
    return 1 if failed else 0
