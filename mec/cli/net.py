"""The ``mec net`` command group: work with topology files and the emulated network.

``mec net check FILE`` validates a topology file without creating anything.
Further subcommands (``net up`` ...) are added by writing one function
``_add_<name>(subparsers)`` that adds a parser with ``func=...`` and listing it
in :data:`NET_SUBCOMMANDS`.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Callable, Optional

from topologies.loader import TopologyError, load
from topologies.coverage import schedule
from topologies.model import Topology

_net_subparsers: Optional[argparse._SubParsersAction] = None


def net_subparsers() -> argparse._SubParsersAction:
    """The subparsers object of ``mec net`` (after :func:`register` ran)."""
    if _net_subparsers is None:
        raise RuntimeError("mec.cli.net.register() has not been called")
    return _net_subparsers


def load_or_report(path: str) -> Optional[Topology]:
    """Load a topology; on errors print each one to stderr and return None (callers exit 2)."""
    try:
        return load(path)
    except TopologyError as e:
        for line in e.errors:
            print(line, file=sys.stderr)
        n = len(e.errors)
        print(f"{path}: {n} error{'s' if n != 1 else ''}", file=sys.stderr)
        return None


def describe(topo: Topology) -> list[str]:
    """Human-readable listing of a topology: sites, nodes with addresses, links, mobility."""
    lines = [f"topology {topo.name} ({topo.source}), subnet {topo.subnet}, service VIPs {topo.vip_subnet}"]
    for s in topo.sites:
        lines.append(f"  site {s.name}: switch {topo.switch_name(s.name)} dpid {topo.dpid(s.name)}, "
                     f"neighbours {', '.join(topo.neighbours(s.name)) or '-'}")
        for c in s.cloudlets:
            cap = f"cpus {c.cpus if c.cpus is not None else 'unlimited'}, memory " \
                  f"{f'{c.memory_mb} MB' if c.memory_mb is not None else 'unlimited'}"
            lines.append(f"    cloudlet {c.name} [{topo.host_name(c.name)}] {c.ip} ({cap}; "
                         f"link {c.link.describe()})")
        for u in topo.ues:
            if u.site == s.name:
                lines.append(f"    UE {u.name} [{topo.host_name(u.name)}] {u.ip} (link {u.link.describe()})")
        if topo.cloud.site == s.name:
            lines.append(f"    cloud {topo.cloud.name} [{topo.host_name(topo.cloud.name)}] {topo.cloud.ip} "
                         f"(link {topo.cloud.link.describe()})")
    for link in topo.links:
        lines.append(f"  link {link.a} - {link.b}: {link.profile or 'custom'}, {link.params.describe()}")
    for s in topo.access_points():
        lines.append(f"  access point {s.name}: at ({s.position[0]:.0f}, {s.position[1]:.0f}) m, "
                     f"coverage {s.coverage_m:g} m")
    lines += schedule(topo).lines()
    return lines


def cmd_check(args: argparse.Namespace) -> int:
    topo = load_or_report(args.file)
    if topo is None:
        return 2
    try:
        moves = schedule(topo).moves
    except TopologyError as exc:
        for line in exc.errors:
            print(f"{args.file}: mobility: {line}", file=sys.stderr)
        return 2
    mob = f", {len(moves)} scheduled move{'s' if len(moves) != 1 else ''}" if moves else ""
    print(f"{args.file}: OK: {topo.summary()}{mob} (delay mechanism is decided at run time)")
    if args.list:
        print("\n".join(describe(topo)))
    return 0


def _add_check(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("check", help="validate a topology file (creates nothing)",
                       description="Validate a topology file and print a summary; exit 2 listing every error.")
    p.add_argument("file", metavar="FILE", help="topology YAML file, e.g. topologies/paper.yaml")
    p.add_argument("-l", "--list", action="store_true", help="also list sites, nodes, addresses, links, moves")
    p.set_defaults(func=cmd_check)


def cmd_up(args: argparse.Namespace) -> int:
    import signal
    import time

    topo = load_or_report(args.file)
    if topo is None:
        return 2
    from mec.host import daemons
    from mec.testbed import Testbed, split_of
    from topologies.backends import get_backend

    try:
        get_backend(args.backend)  # fail early, with the reason, when it is not usable
    except (ValueError, RuntimeError) as exc:
        print(f"mec net up: {exc}", file=sys.stderr)
        return 2
    view = None
    if args.view:
        from mec.core.events import EventLog
        from mec.view.errors import ViewError
        from mec.view.live import LiveView

        try:
            view = LiveView(port=args.view_port, title=f"net up {topo.name}")
        except ViewError as exc:
            print(f"mec net up: {exc}", file=sys.stderr)
            return 2
    daemons.ensure_all()
    controller = None if args.controller == "none" else args.controller
    t0 = time.perf_counter()
    names = [n.strip() for n in args.servers.split(",") if n.strip()] if args.servers else None
    try:
        split_of(topo, names)  # refused before anything starts, with the reason
    except ValueError as exc:
        print(f"mec net up: {exc}", file=sys.stderr)
        return 2
    with Testbed(topo, controller=controller, rest_port=args.rest_port,
                 backend=args.backend, events=EventLog() if view else None,
                 servers=names) as tb:
        net = tb.network
        tb.watchdog.listeners.append(_report_death)
        print("\n".join(describe(topo)))
        if tb.split is not None:
            for server in tb.split.servers:
                sites = [s for s, srv in tb.split.site_server.items() if srv == server]
                print(f"  server {server}: sites {', '.join(sites)}")
        print(f"backend: {net.backend.name}"
              + (" (UEs are Docker hosts of the build engine)" if net.backend.docker_ues else ""))
        print(f"up in {time.perf_counter() - t0:.1f} s; delay mechanism: "
              f"{', '.join(sorted(net.delay_mechanisms - {'none'})) or 'none needed'}; "
              f"registry at {net.registry_addr}")
        if tb.controller:
            print(f"Network Manager ({tb.controller_line}): REST {tb.controller.url}, "
                  f"OpenFlow 127.0.0.1:{tb.controller.ofp_port}  (try: mec flows --url "
                  f"{tb.controller.url})")
        for name, info in net.hosts.items():
            extra = (f", docker -H {net.engines[name].url}" if name in net.engines else "")
            server = getattr(info.node, "site_server", None)
            where = f" on server {server.name}" if server is not None and server.remote else ""
            print(f"  {info.kind} {name}: {info.ip}, ip netns exec {info.node.name} ...{where}"
                  f"{extra}")
        if view is not None:
            view.start()
            view.attach(tb)
            print(f"view: {view.url}", flush=True)
        if args.cli and sys.stdin.isatty():
            from mininet.cli import CLI
            CLI(net.net)
        else:
            print(f"holding the network {'until Ctrl-C' if not args.hold else f'{args.hold:g} s'}"
                  , flush=True)
            signal.signal(signal.SIGTERM, _stop_on_sigterm(os.getpid()))
            try:
                if args.hold:
                    time.sleep(args.hold)
                else:
                    signal.pause()
            except KeyboardInterrupt:
                pass
        if view is not None:
            view.stop()
        t1 = time.perf_counter()
    print(f"torn down in {time.perf_counter() - t1:.1f} s")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    """Turn a Topology Zoo GraphML file or a topohub network into a checked topology file."""
    import yaml

    from topologies.loader import from_dict
    from topologies.zoo import ImportOptions, read_source, to_topology_data

    opts = ImportOptions(speed_mps=args.speed, per_hop_ms=args.per_hop_ms,
                         default_delay_ms=args.default_delay_ms, profile=args.profile,
                         bw_mbps=args.bw, bw_from_graph=args.bw_from_graph,
                         cloudlets=args.cloudlets, cloud_site=args.cloud_site, ues=args.ues,
                         ue_sites=args.ue_at or [])
    try:
        data = to_topology_data(read_source(args.source), opts)
        topo = from_dict(data, args.output)  # validated before anything is written
    except TopologyError as exc:
        for line in exc.errors:
            print(line, file=sys.stderr)
        print(f"mec net import: nothing written to {args.output}", file=sys.stderr)
        return 2
    with open(args.output, "w", encoding="utf-8") as out:
        yaml.safe_dump(data, out, allow_unicode=True, sort_keys=False, width=120, default_flow_style=None)
    delays = [link.params.delay_ms for link in topo.links]
    print(f"{args.output}: {topo.summary()}; link delay_ms (round trip) min {min(delays, default=0):g}, "
          f"median {sorted(delays)[len(delays) // 2] if delays else 0:g}, max {max(delays, default=0):g}")
    return 0


def _add_import(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("import", help="import a Topology Zoo GraphML file or a topohub network",
                       description="Write a topology file from SOURCE: a GraphML file in the "
                       "Internet Topology Zoo's format, or topohub:GROUP/NAME (e.g. "
                       "topohub:topozoo/Abilene). Sites keep their real names; a link's delay_ms "
                       "is the round trip over fibre along the great circle. Nothing is written "
                       "on error (exit 2).")
    p.add_argument("source", metavar="SOURCE", help="GraphML file or topohub:GROUP/NAME")
    p.add_argument("-o", "--output", required=True, metavar="FILE.yaml", help="topology file to write")
    p.add_argument("--speed", type=float, default=2e8, metavar="M_PER_S",
                   help="propagation speed in fibre (default 2e8 m/s)")
    p.add_argument("--per-hop-ms", type=float, default=0.0, metavar="MS",
                   help="added to every link's round trip (switching, queueing; default 0)")
    p.add_argument("--default-delay-ms", type=float, default=None, metavar="MS",
                   help="round trip of links with an end without coordinates (default: refuse)")
    p.add_argument("--profile", default="mec", help="link profile of every link (default mec)")
    p.add_argument("--bw", type=float, default=None, metavar="MBPS", help="bandwidth of every link")
    p.add_argument("--bw-from-graph", action="store_true",
                   help="bandwidth from the edges' LinkSpeedRaw (bit/s) where present")
    p.add_argument("--cloudlets", type=int, default=None, metavar="N",
                   help="cloudlets only at the N most central sites (default: one per site)")
    p.add_argument("--cloud-site", default=None, metavar="SITE",
                   help="site of the cloud (default: the most central, by closeness over delay)")
    p.add_argument("--ues", type=int, default=1, metavar="N",
                   help="one UE at each of the N most central sites (default 1)")
    p.add_argument("--ue-at", action="append", metavar="SITE",
                   help="put a UE at SITE (repeatable; replaces --ues)")
    p.set_defaults(func=cmd_import)


def _stop_on_sigterm(owner: int):
    """SIGTERM stops `mec net up` like Ctrl-C; a forked child (a library's helper
    process) that inherits the handler just ends, without tearing anything down."""
    def handler(signum: int, _frame) -> None:
        if os.getpid() != owner:
            os._exit(128 + signum)
        raise KeyboardInterrupt()
    return handler


def _report_death(death) -> None:
    """Say at once, on stderr, that a part of the running testbed died (and if it came back)."""
    if death.recovered:
        print(f"mec net up: {death.name} is back, restarted {death.recovery_s:.2f} s after its "
              "death was seen", file=sys.stderr, flush=True)
    elif death.recovery_error:
        print(f"mec net up: {death.name} could not be restarted: {death.recovery_error}",
              file=sys.stderr, flush=True)
    else:
        print(f"mec net up: {death.name} ({death.kind}) DIED: {death.detail}",
              file=sys.stderr, flush=True)


def _add_up(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("up", help="bring a topology up (switches, hosts, shaped links, engines, "
                       "registry, controller) until Ctrl-C",
                       description="Bring the emulated network of FILE up and keep it up until "
                       "Ctrl-C (or --hold seconds), or open the Mininet CLI with --cli.")
    p.add_argument("file", metavar="FILE", help="topology YAML file, e.g. topologies/paper.yaml")
    p.add_argument("--controller", choices=("os-ken", "ryu", "none"), default="os-ken",
                   help="Network Manager line; none = standalone switches (loop-free only)")
    p.add_argument("--rest-port", type=int, default=None, help="REST port of the controller "
                   "(default: a free port)")
    p.add_argument("--backend", choices=("mininet", "containernet", "auto"), default="mininet",
                   help="emulator: plain Mininet, or Containernet with UEs as Docker hosts "
                   "(where installed, docs/containernet.md); auto = Containernet if importable")
    p.add_argument("--servers", default=None, metavar="A,B,...",
                   help="split the network over these servers (localhost = this machine; "
                        "the test servers 127.0.0.2, 127.0.0.3 after `mec setup --servers`), "
                        "sites placed by a partition that cuts few links; overrides the "
                        "file's servers:/server: (docs/scale-out.md)")
    p.add_argument("--cli", action="store_true", help="open the Mininet CLI (needs a terminal)")
    p.add_argument("--view", action="store_true",
                   help="serve a live view of the testbed on 127.0.0.1 (its address is printed)")
    p.add_argument("--view-port", type=int, default=0, metavar="PORT",
                   help="port of the live view (default 0: a free one)")
    p.add_argument("--hold", type=float, default=0.0, metavar="S",
                   help="tear down after S seconds (default: wait for Ctrl-C)")
    p.set_defaults(func=cmd_up)


#: One function per ``mec net`` subcommand; each adds its parser to the given subparsers.
NET_SUBCOMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [_add_check, _add_up, _add_import]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``net`` and its subcommands to the ``mec`` command."""
    global _net_subparsers
    net = subparsers.add_parser("net", help="topology files and the emulated network",
                                description="Topology files and the emulated MEC network.")
    _net_subparsers = net.add_subparsers(dest="net_command", metavar="SUBCOMMAND")

    def _usage(_args: argparse.Namespace) -> int:
        net.print_help()
        return 2

    net.set_defaults(func=_usage)
    for add in NET_SUBCOMMANDS:
        add(_net_subparsers)
