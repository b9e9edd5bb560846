"""The ``mec net`` command group: work with topology files and the emulated network.

``mec net check FILE`` validates a topology file without creating anything.
Further subcommands (``net up`` ...) are added by writing one function
``_add_<name>(subparsers)`` that adds a parser with ``func=...`` and listing it
in :data:`NET_SUBCOMMANDS`.
"""

from __future__ import annotations

import argparse
import sys
from typing import Callable, Optional

from topologies.loader import TopologyError, load
from topologies.mobility import from_topology
from topologies.model import Topology

_net_subparsers: Optional[argparse._SubParsersAction] = None


def net_subparsers() -> argparse._SubParsersAction:
    """The subparsers object of ``mec net`` (after :func:`register` ran)."""
    if _net_subparsers is None:
        raise RuntimeError("topologies.cli.register() has not been called")
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
            lines.append(f"    cloudlet {c.name} {c.ip} ({cap}; link {c.link.describe()})")
        for u in topo.ues:
            if u.site == s.name:
                lines.append(f"    UE {u.name} {u.ip} (link {u.link.describe()})")
        if topo.cloud.site == s.name:
            lines.append(f"    cloud {topo.cloud.name} {topo.cloud.ip} (link {topo.cloud.link.describe()})")
    for link in topo.links:
        lines.append(f"  link {link.a} - {link.b}: {link.profile or 'custom'}, {link.params.describe()}")
    for m in from_topology(topo):
        lines.append(f"  move at {m.at_s:g} s: {m.ue} -> {m.to_site}")
    return lines


def cmd_check(args: argparse.Namespace) -> int:
    topo = load_or_report(args.file)
    if topo is None:
        return 2
    moves = from_topology(topo)
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


#: One function per ``mec net`` subcommand; each adds its parser to the given subparsers.
NET_SUBCOMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [_add_check]


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
