"""`mec clean`: remove everything this project created on the machine, and nothing else.

What counts as ours: processes recorded in pid files under RUN_DIR whose command
line still carries their recorded marker; Docker engines whose exec root is under
RUN_DIR and the containers in their cgroups; Mininet node shells, network
namespaces, OVS bridges, interfaces and containers whose names are this prefix's
(``mec.core.config.is_ours``: ``PREFIX-rest``, so prefix ``mec`` never takes
``mecb-s1``); engine state under ENGINES_DIR. Shared services (Open vSwitch, the build Docker
engine) and built images stay.
"""

from __future__ import annotations

import logging
import os
import signal
from dataclasses import dataclass, field
from pathlib import Path

from mec.core import config
from mec.core.proc import cmdline, read_record, run, terminate

log = logging.getLogger(__name__)

CGROUP_ROOT = Path("/sys/fs/cgroup")


@dataclass
class CleanReport:
    """What a clean-up removed (or, in a dry run, would remove)."""

    removed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    dry: bool = False  # a dry run: nothing is removed, the log says so

    def add(self, what: str) -> None:
        self.removed.append(what)
        log.info("%s %s", "would remove" if self.dry else "removed", what)


def _pids_where(matches) -> list[int]:
    """Pids (not ours) whose command-line arguments satisfy MATCHES(args)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            args = cmdline(int(entry.name)).split()
            if args and matches(args):
                pids.append(int(entry.name))
    return pids


def names_path(args: list[str], path: Path) -> bool:
    """True when an argument is PATH or a path under it (also as ``--opt=PATH``).

    Exact by path component: ``/run/mec/mec/engines/c1`` does not name ``.../c10``.
    """
    root = str(path)
    return any(a == root or a.endswith("=" + root) or root + "/" in a for a in args)


def mininet_shell_name(args: list[str]) -> str | None:
    """The node name of a Mininet node shell (``bash ... -is mininet:NAME``), else None."""
    last = args[-1] if args else ""
    return last[len("mininet:"):] if last.startswith("mininet:") else None


def _engine_pids(exec_root: Path) -> list[int]:
    return _pids_where(lambda args: names_path(args, exec_root))


def _kill(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def clean_recorded_processes(report: CleanReport, dry: bool) -> None:
    """Processes recorded in RUN_DIR/*.pid (controllers, registries, delay lines...)."""
    for path in sorted(config.RUN_DIR.glob("*.pid")):
        record = read_record(path)
        if record and record.is_ours():
            if not dry:
                terminate(record.pid, record.marker)
            report.add(f"{record.kind} {record.name} (pid {record.pid})")
        if not dry:
            path.unlink(missing_ok=True)


def _engine_containers_cgroups(name: str) -> list[Path]:
    return [p for p in CGROUP_ROOT.glob(f"*/{name}-containers") if p.is_dir()]


def clean_engines(report: CleanReport, dry: bool) -> None:
    """Per-cloudlet Docker engines: their containers, daemons, containerd, and state."""
    from topologies.engine import DockerEngine, engine_dirs, remove_engine_state

    names = set()
    for base in (config.RUN_DIR / "engines", config.ENGINES_DIR):
        if base.is_dir():
            names.update(p.name for p in base.iterdir() if p.is_dir())
    for name in sorted(names):
        exec_root = engine_dirs(name)[1]
        pids = _engine_pids(exec_root)
        dockerd = [pid for pid in pids if Path(cmdline(pid).split()[0]).name == "dockerd"]
        if dry:
            report.add(f"docker engine {name} ({len(pids)} processes)")
            continue
        if dockerd:
            engine = DockerEngine(name=name, netns_path="")
            try:
                for container in engine.client().containers.list(all=True):
                    container.remove(force=True)
                    report.add(f"container {container.name} on engine {name}")
            except Exception as exc:  # noqa: BLE001 - fall through to the cgroup kill
                log.debug("engine %s API unusable: %s", name, exc)
            for pid in dockerd:
                terminate(pid, str(exec_root), timeout=15)
        # Whatever survived: containerd, shims, container processes (by our cgroup name).
        _kill(_engine_pids(exec_root))
        for cg in _engine_containers_cgroups(name):
            for procs in cg.glob("*/cgroup.procs"):
                _kill([int(p) for p in procs.read_text().split()])
        remove_engine_state(name)
        for cg in _engine_containers_cgroups(name):
            for sub in sorted(cg.glob("*"), reverse=True):
                if sub.is_dir():
                    try:
                        sub.rmdir()
                    except OSError:
                        pass
            try:
                cg.rmdir()
            except OSError:
                pass
        report.add(f"docker engine {name} and its state")


def clean_mininet_shells(report: CleanReport, dry: bool) -> None:
    """Shells of Mininet nodes named with our prefix (they hold the nodes' namespaces)."""
    pids = _pids_where(lambda args: config.is_ours(mininet_shell_name(args) or ""))
    for pid in pids:
        report.add(f"mininet node shell pid {pid} ({cmdline(pid).split()[-1]})")
    if not dry:
        _kill(pids)


def clean_netns(report: CleanReport, dry: bool) -> None:
    proc = run(["ip", "netns", "list"], check=False)
    for line in proc.stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        if config.is_ours(name):
            if not dry:
                pids = run(["ip", "netns", "pids", name], check=False).stdout.split()
                _kill([int(p) for p in pids if p.isdigit()])
                run(["ip", "netns", "del", name], check=False)
            report.add(f"network namespace {name}")


def clean_bridges(report: CleanReport, dry: bool) -> None:
    proc = run(["ovs-vsctl", "--timeout=5", "list-br"], check=False)
    for name in proc.stdout.split():
        if config.is_ours(name):
            if not dry:
                run(["ovs-vsctl", "--timeout=10", "--if-exists", "del-br", name], check=False)
            report.add(f"OVS bridge {name}")


def clean_links(report: CleanReport, dry: bool) -> None:
    proc = run(["ip", "-o", "link", "show"], check=False)
    for line in proc.stdout.splitlines():
        parts = line.split(": ")
        if len(parts) < 2:
            continue
        name = parts[1].split("@")[0]
        if config.is_ours(name):
            if not dry:
                run(["ip", "link", "del", name], check=False)
            report.add(f"interface {name}")


def clean_build_containers(report: CleanReport, dry: bool) -> None:
    """Containers named with our prefix on the machine's build engine (from tests)."""
    proc = run(["docker", "ps", "-a", "--format", "{{.Names}}"], check=False, timeout=30)
    for name in proc.stdout.split():
        if config.is_ours(name):
            if not dry:
                run(["docker", "rm", "-f", name], check=False, timeout=60)
            report.add(f"container {name} on the build engine")


def clean_ue_containers(report: CleanReport, dry: bool) -> None:
    """Containernet UE containers of this prefix (the Containernet backend's Docker hosts)."""
    from topologies.backends import remove_ue_containers, ue_containers

    names = ue_containers()
    if not dry and names:
        remove_ue_containers()
    for name in names:
        report.add(f"Containernet UE container {name}")


def clean_data_volumes(report: CleanReport, dry: bool) -> None:
    """Data volumes of storage-dependent services (mec.service.datasync.data_dir) of this prefix."""
    import shutil

    root = config.STATE_DIR / "data" / config.PREFIX
    if root.is_dir() and any(root.iterdir()):
        if not dry:
            shutil.rmtree(root, ignore_errors=True)
        report.add(f"service data volumes in {root}")


def clean_run_files(report: CleanReport, dry: bool) -> None:
    """Logs, configurations and saved controller state of finished runs under RUN_DIR."""
    if not config.RUN_DIR.is_dir():
        return
    files = [p for p in config.RUN_DIR.iterdir() if p.is_file() and p.suffix != ".pid"]
    files += list((config.RUN_DIR / "delayhops").glob("*.log"))  # delay lines' own logs
    # remote engines' logs and SSH-forwarded sockets (topologies.engine.RemoteEngine)
    files += [p for p in (config.RUN_DIR / "engines").glob("*.*") if not p.is_dir()]
    if files:
        if not dry:
            for path in files:
                path.unlink(missing_ok=True)
        report.add(f"{len(files)} log, configuration and state files in {config.RUN_DIR}")


def clean_empty_dirs(report: CleanReport, dry: bool) -> None:
    """This prefix's folders once they are empty (nothing is reported: nothing was left)."""
    if dry:
        return
    hops = config.RUN_DIR / "delayhops"
    if hops.is_dir() and not list(hops.glob("*.json")):  # no hop record left: no run
        (hops / ".lock").unlink(missing_ok=True)
    for root in (config.ENGINES_DIR, config.STATE_DIR / "data" / config.PREFIX,
                 config.RUN_DIR / "engines", config.RUN_DIR / "delayhops", config.RUN_DIR):
        try:
            root.rmdir()  # only succeeds when empty
        except OSError:
            pass


def clean_ssh_files(report: CleanReport, dry: bool) -> None:
    """The keys and configurations of this prefix's test servers (mec.host.servers); their
    sshd is a recorded process, stopped by clean_recorded_processes."""
    from mec.host import servers

    if servers.files().root.exists():
        if not dry:
            if ended := servers.end_connections():
                report.add(f"{ended} shared SSH connection(s) to the test servers")
            servers.remove_files()
        report.add(f"SSH keys and configurations in {servers.files().root}")


STEPS = (clean_recorded_processes, clean_ssh_files, clean_ue_containers, clean_engines, clean_mininet_shells,
         clean_netns, clean_bridges, clean_links, clean_build_containers, clean_data_volumes,
         clean_run_files)


def clean(dry: bool = False) -> CleanReport:
    """Remove every resource of this prefix; safe to run any time, idempotent."""
    report = CleanReport(dry=dry)
    for step in STEPS:
        try:
            step(report, dry)
        except Exception as exc:  # noqa: BLE001 - go on with the other steps, report at the end
            report.errors.append(f"{step.__name__}: {exc}")
            log.warning("%s failed: %s", step.__name__, exc)
    try:
        from topologies.link import cleanup_leftovers
    except ImportError:
        cleanup_leftovers = None
    if cleanup_leftovers and not dry:
        for item in cleanup_leftovers() or []:
            report.add(str(item))
    clean_empty_dirs(report, dry)
    return report
