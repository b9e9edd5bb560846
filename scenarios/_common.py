"""What every scenario shares: common options, the run skeleton, the script entry point.

A scenario module has ``add_arguments(parser)``, ``run(args) -> int`` (what
``mec run NAME`` calls) and ``make_plots(run_dir, groups) -> [paths]`` (also used
by ``mec report`` to redraw from the raw CSVs). Its ``run`` hands the measuring
part to :func:`execute`, which owns the run folder, Ctrl-C handling, the summary,
the plots and the final table.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

from mec.measure import outcomes
from mec.measure.progress import EXIT_INTERRUPTED, StopGuard
from mec.measure.results import Metric, ResultDir, SummarySpec, environment, format_table

log = logging.getLogger(__name__)

CONTROLLERS = ("os-ken", "ryu", "none")
#: exit status of a run that completed with moves (rows) whose outcome is not ok
EXIT_NOT_OK = 3


def add_common_arguments(parser: argparse.ArgumentParser, default_reps: int, quick_reps: int,
                         topology: bool = True) -> None:
    g = parser.add_argument_group("common options")
    g.add_argument("--reps", type=int, default=None, metavar="N",
                   help=f"repetitions (default {default_reps}; the paper used 30; "
                        f"--quick: {quick_reps})")
    g.add_argument("--quick", action="store_true",
                   help="a fast check: few repetitions, small images")
    g.add_argument("--json", action="store_true", help="print the summary as JSON at the end")
    g.add_argument("--out", type=Path, default=None, metavar="DIR",
                   help="base folder of the results: DIR/SCENARIO/TIMESTAMP/ "
                        "(default ./results)")
    g.add_argument("--tolerate-failures", action="store_true",
                   help=f"exit 0 even when moves (or repetitions) did not end ok (default: "
                        f"exit {EXIT_NOT_OK}; the outcomes are in the table and summary.json)")
    g.add_argument("--controller", choices=CONTROLLERS, default="os-ken",
                   help="Network Manager line (default os-ken; none = standalone switches)")
    g.add_argument("--view", action="store_true",
                   help="serve a live view of the run on 127.0.0.1 (its address is printed)")
    g.add_argument("--view-port", type=int, default=0, metavar="PORT",
                   help="port of the live view (default 0: a free one)")
    if topology:
        g.add_argument("--topology", type=Path, default=None, metavar="FILE",
                       help="topology file instead of the built-in one")
        g.add_argument("--servers", default=None, metavar="A,B,...",
                       help="split the network over these servers (localhost = this "
                            "machine; the test servers after `mec setup --servers`; "
                            "docs/scale-out.md)")


def add_service_argument(parser: argparse.ArgumentParser) -> None:
    """``--service FILE``: the service the scenario runs (docs/services.md)."""
    parser.add_argument("--service", default=None, metavar="FILE",
                        help="service file (docs/services.md), or the name of a built-in one "
                             "(busybox, debian, httpd); default: the built-in service of the "
                             "scenario's image")


def service_of(args: argparse.Namespace, default_image: str) -> Any:
    """The run's service (`mec.core.servicefile.ServiceDef`): ``--service``, else the
    built-in service of ``--image`` (or DEFAULT_IMAGE). A bad file ends the run before
    anything starts: its problems on stderr, exit 2."""
    from mec.core import servicefile

    image = getattr(args, "image", None)
    if args.service and image:
        print("--service and --image: give one (a service file names its image)",
              file=sys.stderr)
        raise SystemExit(2)
    try:
        return servicefile.resolve(args.service, image or default_image)
    except servicefile.ServiceFileError as exc:
        print(f"bad service file:\n{exc}", file=sys.stderr)
        raise SystemExit(2) from None


def deployment_name(args: argparse.Namespace, service: Any, builtin_name: str) -> str:
    """The name a scenario deploys SERVICE under: a service file's own name; for a
    built-in service the scenario's historical name (``svc``, ``store``), so the paper's
    runs keep their instance names (``svc-c2``)."""
    return service.name if getattr(args, "service", None) else builtin_name


def service_config(service: Any) -> dict[str, Any]:
    """What config.json says of a run's service (the file's text too, like a topology's)."""
    path = service.path
    return {"name": service.name, "image": service.image, "port": service.port,
            "protocol": service.protocol, "probe": service.probe.describe(),
            "health": service.health.describe(), "data": service.data,
            "sla_ms": service.sla_ms, "path": str(path) if path else None,
            "content": path.read_text() if path else None}


def probe_target(service: Any, vip: str) -> Any:
    """What the user's probe asks SERVICE through its virtual IP VIP
    (`mec.measure.target.Target`, from the service file's ``probe``)."""
    from mec.measure.target import Target

    p = service.probe
    if service.protocol == "http":
        return Target("http", vip, service.port, method=p.method, path=p.path,
                      expect_status=p.expect_status)
    return Target(service.protocol, vip, service.port, payload=p.payload, reply=p.reply)


def replica_identity(tb: Any, dep: Any, ue: str, records: Sequence[Any], keep: Path) -> Any:
    """The probe's records with the instance that answered each one, as the network
    recorded it (the Network Manager's connection ledger, kept in KEEP); the body's
    name is checked against it for a service whose replies name the instance."""
    from mec.measure.identity import from_network

    entries = tb.nm.connections(dep.name, ue=ue)
    keep.write_text(json.dumps(entries, indent=1))
    cloudlets = {c.name for c in tb.topology.cloudlets}
    return from_network(records, entries, ue=ue, check_body=dep.service.names_instance,
                        instance_of=lambda host: dep.instance(host) if host in cloudlets
                        else None)


def reps_of(args: argparse.Namespace, default_reps: int, quick_reps: int) -> int:
    reps = args.reps if args.reps is not None else (quick_reps if args.quick else default_reps)
    if reps < 1:
        raise SystemExit(f"--reps must be at least 1 (got {reps})")
    return reps


def controller_of(args: argparse.Namespace) -> Optional[str]:
    return None if args.controller == "none" else args.controller


def servers_of(args: argparse.Namespace) -> Optional[list[str]]:
    """``--servers`` as a list (None: the topology's own placement, or this machine)."""
    text = getattr(args, "servers", None)
    return [n.strip() for n in text.split(",") if n.strip()] if text else None


def prepare(images: Sequence[str]) -> None:
    """Root check, machine services (OVS, build engine) up, IMAGES built and published."""
    if os.geteuid() != 0:
        raise SystemExit("this scenario builds namespaces, OVS bridges and Docker engines: "
                         "run it as root (sudo)")
    from mec.host import daemons
    from mec.edge.images import ensure_images

    daemons.ensure_all()
    try:
        ensure_images(list(images))
    except ValueError as exc:  # an image nobody published: nothing has started yet
        print(exc, file=sys.stderr)
        raise SystemExit(2) from None


def quiet_logs(args: argparse.Namespace) -> None:
    """Without -v only warnings of the library reach the terminal (progress lines do)."""
    if not getattr(args, "verbose", False):
        logging.getLogger().setLevel(logging.WARNING)


def execute(name: str, args: argparse.Namespace, specs: Sequence[SummarySpec],
            measure: Callable[[ResultDir, Callable[[Any], None]], None],
            make_plots: Callable[[Path, Mapping[str, list]], list[Path]],
            table_metrics: Mapping[str, Sequence[Metric]],
            config: Optional[Mapping[str, Any]] = None,
            extra_report: Optional[Callable[[Mapping[str, Any]], str]] = None,
            summary_extra: Optional[Callable[[], Mapping[str, Any]]] = None) -> int:
    """Run MEASURE(result_dir, set_testbed) and write everything a run leaves behind.

    MEASURE writes rows into tables of the result dir as repetitions finish and
    calls ``set_testbed(tb)`` for every testbed it starts, once it is up (the
    environment is read from the first; every testbed's watchdog is judged at
    the end: a component that died and was not recovered makes the run invalid,
    ``valid`` and ``deaths`` in summary.json, and it exits EXIT_NOT_OK unless
    ``--tolerate-failures``; ``set_testbed(tb, judge=False)`` for a testbed whose
    deaths the scenario causes on purpose). EXTRA_REPORT(summary) may add text
    after the table (not with --json); SUMMARY_EXTRA() may add fields to
    summary.json. Ctrl-C or SIGTERM stop it (exit 130); an error ends it (exit 1);
    both leave a summary marked incomplete with the rows measured until then. A run
    whose rows have outcomes other than ``ok`` says so at the end and exits
    EXIT_NOT_OK (3) unless ``--tolerate-failures``.
    """
    view = start_view(name, args)
    rd = ResultDir(name, base=args.out)
    rd.write_config(args, **(config or {}))
    status, reason = 0, ""
    holder: dict[str, Any] = {"judged": []}

    def set_testbed(tb: Any, judge: bool = True) -> None:
        holder.setdefault("env", environment(tb))
        if judge:
            holder["judged"].append(tb)
        if view is not None:
            view.attach(tb, rd.path, sla_ms=getattr(args, "sla_ms", None))

    with StopGuard():
        try:
            measure(rd, set_testbed)
        except KeyboardInterrupt as exc:
            status, reason = EXIT_INTERRUPTED, f"interrupted by {exc or 'Ctrl-C'}"
        except Exception as exc:  # noqa: BLE001 - reported, partial results kept
            log.error("%s failed: %s", name, exc, exc_info=True)
            status, reason = 1, f"failed: {type(exc).__name__}: {exc}"
        rd.set_environment(holder.get("env") or environment())
        verdict = {**judge_testbeds(holder["judged"]),
                   **(summary_extra() if summary_extra is not None else {})}
        summary = rd.write_summary(specs, complete=status == 0, reason=reason, **verdict)
        groups = {t: s["groups"] for t, s in summary["tables"].items()}
        if any(s["rows"] for s in summary["tables"].values()):
            try:
                rd.plots = [p.name for p in make_plots(rd.path, groups)]
            except Exception as exc:  # noqa: BLE001 - the data is safe; say why no figure
                log.error("plotting failed: %s", exc, exc_info=True)
            summary = rd.write_summary(specs, complete=status == 0, reason=reason, **verdict)
        rd.close()
        if view is not None:
            view.stop()
    if args.json:
        print(json.dumps(summary, indent=1))
    else:
        print_report(rd.path, summary, table_metrics)
        if extra_report is not None:
            print(extra_report(summary))
    if status == EXIT_INTERRUPTED:
        print(f"stopped early: {reason}; results so far kept", file=sys.stderr)
    not_ok = outcomes.describe(summary.get("outcomes", {}))
    if not_ok:
        print(f"{name}: {not_ok}; see the outcome and cause columns of the CSV",
              file=sys.stderr)
    if not summary["valid"]:
        print(f"{name}: INVALID run: {describe_deaths(summary['deaths'])}", file=sys.stderr)
    if (not_ok or not summary["valid"]) and status == 0 \
            and not getattr(args, "tolerate_failures", False):
        status = EXIT_NOT_OK
    return status


def judge_testbeds(testbeds: Sequence[Any]) -> dict[str, Any]:
    """``{"valid", "deaths"}`` over the watchdogs of TESTBEDS (valid: no death left unrecovered)."""
    deaths = [d for tb in testbeds for d in tb.watchdog.verdict()["deaths"]]
    return {"valid": all(d["recovered"] for d in deaths), "deaths": deaths}


def describe_deaths(deaths: Sequence[Mapping[str, Any]]) -> str:
    """``"engine c1 died (pid 12 exited with -9); network-manager died, restarted in 1.1 s"``."""
    parts = []
    for d in deaths:
        text = f"{d['name']} died ({d['detail'] or 'no detail'})"
        if d["recovered"]:
            text += f", restarted in {d['recovery_s']:.1f} s"
        elif d.get("recovery_error"):
            text += f", restart failed: {d['recovery_error']}"
        parts.append(text)
    return "; ".join(parts)


def start_view(name: str, args: argparse.Namespace) -> Any:
    """With ``--view``: the live view's server, started, its address printed (else None);
    a port in use ends the run before it starts (exit 2)."""
    if not getattr(args, "view", False):
        return None
    from mec.view.errors import ViewError
    from mec.view.live import LiveView

    try:
        view = LiveView(port=args.view_port, title=name)
    except ViewError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    print(f"view: {view.start()}", flush=True)
    return view


def print_report(path: Path, summary: Mapping[str, Any],
                 table_metrics: Mapping[str, Sequence[Metric]]) -> None:
    state = "complete" if summary["complete"] else f"INCOMPLETE ({summary['reason']})"
    not_ok = outcomes.describe(summary.get("outcomes", {}))
    if not_ok:
        state += f"; NOT ALL OK: {not_ok}"
    if not summary.get("valid", True):
        state += f"; INVALID: {describe_deaths(summary['deaths'])}"
    print(f"\n{summary['scenario']}: {state}")
    for table, s in summary["tables"].items():
        print(f"\n{table}.csv: {s['rows']} rows")
        if s["groups"]:
            print(format_table(s["groups"], table_metrics.get(table, ())))
    print()
    for plot in summary.get("plots", []):
        print(f"plot:    {path / plot}")
    print(f"summary: {path / 'summary.json'}")


def script_main(module: Any, name: str, argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``python3 scenarios/NAME.py``: parse, set up logging, run."""
    parser = argparse.ArgumentParser(prog=f"scenarios/{name}.py", description=module.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true", help="library log messages too")
    module.add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    try:
        return int(module.run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
