"""Shaped links between two Mininet nodes: bandwidth, delay, jitter, loss, queue.

One call, :func:`add_shaped_link`, adds a link with the given parameters to a
Mininet network and returns a :class:`ShapedLink` saying how it was built.

Parameters (any object with these attributes, e.g. ``topologies.model.LinkParams``):
``bw_mbps`` (rate per direction, None = unshaped), ``delay_ms`` (the ROUND-TRIP time
the link adds: half in each direction), ``jitter_ms`` (round-trip jitter: each
direction's delay is drawn from a normal distribution with sd ``jitter_ms/2``),
``loss_pct`` (drop probability applied in EACH direction), ``queue_pkts`` (leaf
queue limit of the rate shaper, None = default).

Every shaped link is built as a transparent HOP in the middle of the link: a
:class:`DelayHop` node in its own network namespace with a Linux bridge between its
two interfaces, shaping on the hop's two EGRESS interfaces (HTB rate, leaf queue of
``queue_pkts``). The hop is needed because OVS's userspace datapath bypasses both
netfilter and the qdiscs of its own ports: HTB on an OVS port was measured to have
no effect (437 Mbit/s through a "25 Mbit/s" port), so Mininet's TCLink cannot shape
a switch-to-switch link here. ``ShapedLink.mechanism`` names how delay/jitter/loss
are made:

- ``"netem"`` where the kernel has sch_netem: a netem leaf (delay/2, jitter/2 normal,
  loss) under the HTB class on each hop egress.
- ``"nfqueue"`` otherwise: bridge netfilter sends each direction's packets
  (``-m physdev --physdev-in``) to its own NFQUEUE, served by one delay line
  process: the compiled ``mec-delayline`` where setup built it, else the Python
  ``topologies.delayline`` (``ShapedLink.delay_line`` says which; queueing on a
  sender's OUTPUT chain would throttle TCP, so the delay sits on this forwarding hop).
- ``"none"``: no delay, jitter or loss asked: the hop only shapes the rate, or, when
  nothing at all is asked, a plain veth link without hop.

Hop processes are recorded in ``run_dir()/delayhops/HOP.json`` (pids, queues, the
hop's namespace) so that :func:`cleanup_leftovers` can remove what a killed run
left, and they are stopped when the Mininet network stops (the hop's two link
segments stop the hop, whose ``terminate()`` stops the delay lines).
"""

from __future__ import annotations

import fcntl
import itertools
import json
import logging
import os
import select
import signal
import subprocess
import sys
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from mininet.examples.cluster import RemoteMixin
from mininet.link import Intf, Link
from mininet.node import Node

from mec.core import config
from topologies import delayline, netem
from topologies.cluster import ClusterNode, VxlanLink

LOG = logging.getLogger(__name__)

#: Each prefix owns this many NFQUEUE numbers, in a block chosen from its name.
QUEUES_PER_PREFIX = 256
#: Seconds a delay line may take to bind its queue and say READY.
READY_TIMEOUT_S = 15.0
#: Run delay lines with SCHED_FIFO priority 1 (less lateness when the CPUs are busy).
REALTIME_LINES = os.environ.get("MEC_DELAYLINE_REALTIME", "1") != "0"
_counter = itertools.count(1)


class ShapedLinkError(RuntimeError):
    """A shaped link cannot be built as asked (never silently degraded)."""


# --------------------------------------------------------------------------- records

def records_dir() -> Path:
    path = config.run_dir() / "delayhops"
    path.mkdir(parents=True, exist_ok=True)
    return path


def queue_range(prefix: Optional[str] = None) -> range:
    """NFQUEUE numbers owned by a prefix (a block of QUEUES_PER_PREFIX above 1023)."""
    blocks = 65536 // QUEUES_PER_PREFIX
    block = 4 + zlib.crc32((prefix or config.PREFIX).encode()) % (blocks - 4)
    return range(block * QUEUES_PER_PREFIX, (block + 1) * QUEUES_PER_PREFIX)


def _pid_alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def _cmdline(pid: int) -> List[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [p.decode(errors="replace") for p in raw.split(b"\0") if p]


def _is_delayline(pid: int, queue: int) -> bool:
    cmd = _cmdline(pid)
    is_line = "topologies.delayline" in cmd or (
        bool(cmd) and Path(cmd[0]).name == delayline.COMPILED_BINARY.name)
    return is_line and str(queue) in cmd


def _is_hop_shell(pid: int, hop: str) -> bool:
    return f"mininet:{hop}" in _cmdline(pid)


def _read_records(skip: frozenset | set = frozenset()) -> List[Dict[str, Any]]:
    """The hop records of this prefix, but those of the hops named in SKIP."""
    out = []
    for path in sorted(records_dir().glob("*.json")):
        if path.stem in skip:
            continue
        try:
            rec = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        rec["_path"] = str(path)
        out.append(rec)
    return out


#: Queues of the hops this process runs (hop name -> queues): their records need no reading.
_OWN_QUEUES: Dict[str, List[int]] = {}


def _allocate_queues(hop: str, count: int) -> List[int]:
    """Reserve ``count`` free queue numbers of this prefix; writes the hop's record.

    Only the records of other processes are read (this process knows its own hops'
    queues), and none when no queue is asked: a network's hops would otherwise read
    each other's records, a cost growing with the square of the network."""
    if count == 0:
        _write_record({"hop": hop, "owner_pid": os.getpid(), "queues": [], "lines": []})
        return []
    lock_path = records_dir() / ".lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        used = {q for name, queues in _OWN_QUEUES.items() if name != hop for q in queues}
        for rec in _read_records(skip=set(_OWN_QUEUES) | {hop}):
            owner = int(rec.get("owner_pid", 0))
            alive = (owner and _pid_alive(owner)) or any(
                _is_delayline(int(l["pid"]), int(l["queue"])) for l in rec.get("lines", []))
            if alive:
                used.update(rec.get("queues", []))
        free = [q for q in queue_range() if q not in used][:count]
        if len(free) < count:
            raise ShapedLinkError(
                f"no free NFQUEUE numbers left in {queue_range()} for prefix {config.PREFIX}"
            )
        _write_record({"hop": hop, "owner_pid": os.getpid(), "queues": free, "lines": []})
        _OWN_QUEUES[hop] = free
        return free


def _write_record(rec: Dict[str, Any]) -> None:
    path = records_dir() / f"{rec['hop']}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({k: v for k, v in rec.items() if not k.startswith("_")}, indent=1))
    tmp.replace(path)


# --------------------------------------------------------------------------- shaping

def _batch(node: Node, tool: str, commands: List[List[str]]) -> None:
    """Run COMMANDS (argument lists without the program) with one ``TOOL -batch -`` process
    in NODE's namespace (``ip`` and ``tc`` read one command a line): one process where
    there would be one per command, which is most of a hop's set-up time."""
    if commands:
        _feed(node, [tool, "-batch", "-"], "".join(" ".join(cmd) + "\n" for cmd in commands))


def _feed(node: Node, argv: List[str], script: str) -> None:
    """Run ARGV in NODE's namespace with SCRIPT on its standard input; raise if it fails."""
    proc = node.popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                      stderr=subprocess.PIPE)
    try:
        out, err = proc.communicate(script.encode(), timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate(timeout=10)
        raise ShapedLinkError(f"{argv[0]} in {node.name} timed out:\n{script}") from None
    if proc.returncode != 0:
        raise ShapedLinkError(f"{' '.join(argv)} in {node.name} failed: "
                              f"{err.decode(errors='replace').strip() or out.decode()}\n{script}")


def egress_commands(dev: str, bw_mbps: Optional[float], queue_pkts: Optional[int],
                    netem_args: Optional[List[str]] = None) -> List[List[str]]:
    """The ``tc`` commands shaping DEV's egress: HTB rate (as Mininet's TCLink does), then
    a leaf that is netem (``netem_args``, where the kernel has it) or a pfifo of
    ``queue_pkts``; none when nothing is asked."""
    if bw_mbps is None and queue_pkts is None and not netem_args:
        return []
    cmds: List[List[str]] = []
    parent = ["root"]
    if bw_mbps is not None:
        if bw_mbps <= 0:
            raise ShapedLinkError(f"bw_mbps must be > 0, got {bw_mbps}")
        cmds.append(["qdisc", "replace", "dev", dev, "root", "handle", "5:", "htb", "default", "1"])
        cmds.append(["class", "add", "dev", dev, "parent", "5:", "classid", "5:1", "htb",
                     "rate", f"{bw_mbps}mbit", "burst", "15k"])
        parent = ["parent", "5:1"]
    verb = "add" if bw_mbps is not None else "replace"
    if netem_args:
        limit = ["limit", str(int(queue_pkts))] if queue_pkts is not None else []
        cmds.append(["qdisc", verb, "dev", dev, *parent, "handle", "10:", "netem",
                     *netem_args, *limit])
    elif queue_pkts is not None:
        cmds.append(["qdisc", verb, "dev", dev, *parent, "handle", "10:", "pfifo",
                     "limit", str(int(queue_pkts))])
    return cmds


def shape_egress(intf: Intf, bw_mbps: Optional[float], queue_pkts: Optional[int],
                 netem_args: Optional[List[str]] = None) -> None:
    """Shape ``intf``'s egress (see `egress_commands`), one ``tc`` process."""
    _batch(intf.node, "tc", egress_commands(intf.name, bw_mbps, queue_pkts, netem_args))


# --------------------------------------------------------------------------- delay hop

@dataclass
class DelayLineProc:
    """One running delay line (one direction of a hop)."""

    direction: str  # "a->b" or "b->a"
    queue: int
    in_intf: str
    popen: subprocess.Popen
    log_path: str
    stats: Optional[Dict[str, Any]] = None
    kind: str = "python"  # which line runs: "compiled" (mec-delayline) or "python"

    @property
    def pid(self) -> int:
        return self.popen.pid


class DelayHop(Node):
    """A node in its own namespace bridging two interfaces, with one delay line per direction.

    ``terminate()`` stops the delay lines (SIGTERM, counters kept in ``lines[i].stats``),
    removes the hop's record and then the namespace's shell.
    """

    def __init__(self, name: str, **params: Any) -> None:
        params["inNamespace"] = True
        super().__init__(name, **params)
        self.lines: List[DelayLineProc] = []
        self.bridge = f"{name}br"
        self.queues: List[int] = []
        self._terminated = False
        self._lines_stopped = False

    # Not a host: never give it an address or default route.
    def configDefault(self, **moreParams: Any) -> None:  # noqa: N802 (Mininet API)
        pass

    def _must(self, *args: str) -> str:
        out, err, rc = self.pexec(list(args))
        if rc != 0:
            raise ShapedLinkError(f"{' '.join(args)} in hop {self.name} failed: {err.strip()}")
        return out

    def setup_bridge(self, intf_a: str, intf_b: str, netfilter: bool = True) -> None:
        """Bridge the two interfaces (one ``ip`` process); NETFILTER: bridged packets go
        through iptables (needed by the delay lines' NFQUEUE rules only)."""
        # no multicast snooping: a snooping bridge joins the all-snoopers group and
        # announces it (IGMP reports into the switches, each waking ovs-vswitchd)
        cmds = [["link", "add", self.bridge, "type", "bridge", "mcast_snooping", "0"]]
        for dev in (intf_a, intf_b):
            # no address learning: the hop is a wire. A learning bridge drops a frame whose
            # destination it last saw on the side the frame comes from, which is where a
            # host that moved was (replies to a UE black-holed for the 300 s ageing time)
            cmds += [["link", "set", dev, "master", self.bridge],
                     ["link", "set", "dev", dev, "type", "bridge_slave", "learning", "off"],
                     ["link", "set", dev, "up"]]
        _batch(self, "ip", cmds + [["link", "set", self.bridge, "up"]])
        if netfilter:
            self._must("sysctl", "-q", "-w", "net.bridge.bridge-nf-call-iptables=1")

    def start_line(self, direction: str, in_intf: str, queue: int, delay_ms: float,
                   jitter_ms: float, loss_pct: float, seed: Optional[int]) -> DelayLineProc:
        """Start one delay line (the compiled one where it is built, see
        ``delayline.line_command``), wait for its READY line, then divert ``in_intf`` to it."""
        line = self.launch_line(direction, in_intf, queue, delay_ms, jitter_ms, loss_pct, seed)
        self.divert([line])
        return line

    def launch_line(self, direction: str, in_intf: str, queue: int, delay_ms: float,
                    jitter_ms: float, loss_pct: float, seed: Optional[int]) -> DelayLineProc:
        """Start one delay line, not waiting for it (`divert` does)."""
        argv, kind = delayline.line_command()
        args = argv + ["--queue", str(queue), "--delay-ms", repr(delay_ms),
                       "--jitter-ms", repr(jitter_ms), "--loss-pct", repr(loss_pct)]
        if REALTIME_LINES:
            args.append("--realtime")
        if seed is not None:
            args += ["--seed", str(seed)]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(config.REPO_DIR)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
        )
        log_path = str(records_dir() / f"{self.name}-q{queue}.log")
        with open(log_path, "ab") as log:
            popen = self.popen(args, stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL,
                               env=env, cwd=str(config.REPO_DIR))
        line = DelayLineProc(direction, queue, in_intf, popen, log_path, kind=kind)
        self.lines.append(line)
        return line

    def divert(self, lines: List[DelayLineProc]) -> None:
        """Wait for LINES to say READY, then send each one's input interface to its queue
        (one ``iptables-restore`` for all)."""
        deadline = time.monotonic() + READY_TIMEOUT_S
        for line in lines:
            popen = line.popen
            poller = select.poll()  # not select(): a large network's descriptors pass 1024
            poller.register(popen.stdout, select.POLLIN)
            ready = poller.poll(1000 * max(0.0, deadline - time.monotonic()))
            first = popen.stdout.readline().decode(errors="replace") if ready else ""
            if not first.startswith("READY"):
                popen.kill()
                tail = Path(line.log_path).read_text(errors="replace")[-800:]
                raise ShapedLinkError(
                    f"delay line for queue {line.queue} in hop {self.name} did not start "
                    f"(got {first!r}); log {line.log_path}:\n{tail}"
                )
        rules = "".join(f"-A FORWARD -m physdev --physdev-in {line.in_intf} "
                        f"-j NFQUEUE --queue-num {line.queue}\n" for line in lines)
        _feed(self, ["iptables-restore", "--noflush"], f"*filter\n{rules}COMMIT\n")

    def record(self, extra: Dict[str, Any]) -> None:
        _write_record({
            "hop": self.name, "owner_pid": os.getpid(), "hop_pid": self.pid,
            "netns": f"/proc/{self.pid}/ns/net", "queues": self.queues,
            "lines": [{"pid": l.pid, "queue": l.queue, "direction": l.direction,
                       "in_intf": l.in_intf, "log": l.log_path, "kind": l.kind}
                      for l in self.lines],
            "created": time.time(), **extra,
        })

    def signal_lines(self) -> None:
        """Ask every delay line of the hop to stop (SIGTERM); `stop_lines` collects them."""
        for line in self.lines:
            if line.popen.poll() is None:
                line.popen.send_signal(signal.SIGTERM)

    def stop_lines(self, timeout: float = 5.0) -> None:
        """Stop the delay lines and keep their counters (``lines[i].stats``); idempotent."""
        if self._lines_stopped:
            return
        self._lines_stopped = True
        self.signal_lines()
        for line in self.lines:
            try:
                out, _ = line.popen.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                LOG.warning("delay line pid %d did not stop on SIGTERM: killing", line.pid)
                line.popen.kill()
                out, _ = line.popen.communicate(timeout=10)
            for text in out.decode(errors="replace").splitlines():
                if text.startswith("STATS "):
                    line.stats = json.loads(text[6:])
            if line.popen.returncode == 0 and line.stats is not None:
                Path(line.log_path).unlink(missing_ok=True)  # kept only when something broke
            LOG.info("hop %s %s (queue %d): %s", self.name, line.direction, line.queue, line.stats)

    def terminate(self) -> None:
        if self._terminated:
            return
        self._terminated = True
        try:
            self.stop_lines()
        finally:
            try:
                (records_dir() / f"{self.name}.json").unlink()
            except FileNotFoundError:
                pass
            _OWN_QUEUES.pop(self.name, None)
            super().terminate()


class ClusterDelayHop(ClusterNode, RemoteMixin, DelayHop):
    """A delay hop on its link's server (`topologies.cluster`): its shell, bridge, shaping
    and delay lines are there."""


class HopSegment(VxlanLink):
    """One of the two links of a delay hop; once both are stopped, the hop stops. A veth
    pair; a VXLAN tunnel when the hop and the far node are on different servers (the
    cut link of a split network, `topologies.cluster`)."""

    def __init__(self, *args: Any, hop: DelayHop, **kwargs: Any) -> None:
        self.hop = hop
        self.stopped = False
        super().__init__(*args, **kwargs)

    def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        if not self.hop._terminated:
            super().stop()
        if all(getattr(s, "stopped", True) for s in getattr(self.hop, "segments", [])):
            self.hop.terminate()


# --------------------------------------------------------------------------- shaped link

@dataclass
class ShapedLink:
    """What add_shaped_link built: mechanism, end interfaces, hop and its processes."""

    name: str
    mechanism: str  # "netem" | "nfqueue" | "none"
    params: Any
    intf_a: Intf  # the interface on node_a
    intf_b: Intf  # the interface on node_b
    hop: Optional[DelayHop] = None
    links: List[Link] = field(default_factory=list)
    #: the hop's configuration, when the caller deferred it (see `configure_links`)
    pending: Optional[Callable[[], None]] = field(default=None, repr=False)

    @property
    def pids(self) -> List[int]:
        return [l.pid for l in self.hop.lines] if self.hop else []

    @property
    def queues(self) -> List[int]:
        return [l.queue for l in self.hop.lines] if self.hop else []

    @property
    def delay_line(self) -> Optional[str]:
        """Which delay line serves the link: "compiled", "python" or None (no line)."""
        kinds = {l.kind for l in self.hop.lines} if self.hop else set()
        return kinds.pop() if len(kinds) == 1 else (None if not kinds else "mixed")

    @property
    def stats(self) -> Dict[str, Optional[Dict[str, Any]]]:
        """Per direction counters of the delay lines (filled in once stopped)."""
        return {l.direction: l.stats for l in self.hop.lines} if self.hop else {}

    def stop(self) -> None:
        """Remove the link (and stop the hop's delay lines); safe to call twice."""
        for link in self.links:
            link.stop()


def _needs_delay(params: Any) -> bool:
    return bool(params.delay_ms or params.jitter_ms or params.loss_pct)


def _attach_if_running(node: Node, intf: Intf) -> None:
    """Add a new port to an OVS switch that is already running (net.start() done)."""
    if hasattr(node, "attach") and hasattr(node, "dpid"):
        res = subprocess.run(["ovs-vsctl", "--timeout=10", "br-exists", node.name],
                             capture_output=True, timeout=15)
        if res.returncode == 0:
            node.attach(intf)


def _netem_args(one_way_ms: float, jitter_sd_ms: float, loss_pct: float) -> List[str]:
    args = ["delay", f"{one_way_ms}ms"]
    if jitter_sd_ms:
        args += [f"{jitter_sd_ms}ms", "distribution", "normal"]
    if loss_pct:
        args += ["loss", f"{loss_pct}%"]
    return args


def add_shaped_link(net: Any, node_a: Node, node_b: Node, params: Any,
                    name: Optional[str] = None, seed: Optional[int] = None,
                    running: Optional[bool] = None, defer: bool = False) -> ShapedLink:
    """Link ``node_a`` and ``node_b`` in ``net`` with ``params`` (see module doc).

    ``name`` names the hop node (<= 10 chars, must carry the prefix; default
    PREFIX-x+counter). ``seed`` makes loss and jitter of the delay lines
    reproducible. ``running``: whether the network's switches run already (their new
    port is then added at once); None asks OVSDB, False is for a caller that builds the
    network first (it saves one ``ovs-vsctl`` per end). ``defer``: only wire the link
    (Mininet's part, which is not thread-safe) and leave the hop's configuration in
    ``pending`` for `configure_links`, which configures many hops at once (with
    ``running=False`` only). Raises ShapedLinkError / netem.NoDelayMechanism rather than
    build a link that lacks what was asked.
    """
    name = name or config.name(f"x{next(_counter)}")
    if not config.is_ours(name) or len(name) > 10:
        raise ShapedLinkError(f"link name {name!r} must start with {config.name()!r}, <= 10 chars")
    for attr in ("bw_mbps", "delay_ms", "jitter_ms", "loss_pct", "queue_pkts"):
        if not hasattr(params, attr):
            raise ShapedLinkError(f"link params {params!r} lack {attr!r}")
    if (params.delay_ms or 0) < 0 or (params.jitter_ms or 0) < 0 \
            or not 0 <= (params.loss_pct or 0) <= 100:
        raise ShapedLinkError(f"invalid link params {params!r}")

    if not _needs_delay(params) and params.bw_mbps is None and params.queue_pkts is None:
        link = net.addLink(node_a, node_b)
        if running is not False:
            for intf in (link.intf1, link.intf2):
                _attach_if_running(intf.node, intf)
        return ShapedLink(name, "none", params, link.intf1, link.intf2, links=[link])
    mechanism = netem.delay_mechanism() if _needs_delay(params) else "none"
    return _add_hop(net, node_a, node_b, params, name, seed, mechanism, running, defer)


def _add_hop(net: Any, node_a: Node, node_b: Node, params: Any, name: str,
             seed: Optional[int], mechanism: str, running: Optional[bool],
             defer: bool = False) -> ShapedLink:
    if name in net.nameToNode:
        raise ShapedLinkError(f"a node named {name} already exists")
    queues = _allocate_queues(name, 2 if mechanism == "nfqueue" else 0)
    # the hop runs where NODE_A runs: on a split network, on its server
    hop = ClusterDelayHop(name, site_server=node_a.site_server, ssh=node_a.ssh) \
        if isinstance(node_a, ClusterNode) else DelayHop(name)
    hop.queues = queues
    net.nameToNode[name] = hop  # reachable by name, but not a host: pingAll ignores it
    seg_a = net.addLink(node_a, hop, cls=HopSegment, hop=hop, intfName2=f"{name}-eth0")
    seg_b = net.addLink(hop, node_b, cls=HopSegment, hop=hop, intfName1=f"{name}-eth1")
    hop.segments = [seg_a, seg_b]
    shaped = ShapedLink(name, mechanism, params, seg_a.intf1, seg_b.intf2, hop=hop,
                        links=[seg_a, seg_b])
    if defer:
        if running is not False:
            raise ShapedLinkError("only a link of a network not started yet can be deferred")
        shaped.pending = lambda: _configure_hop(shaped, node_a, node_b, seed, running)
        return shaped
    try:
        _configure_hop(shaped, node_a, node_b, seed, running)
    except BaseException:
        shaped.stop()
        net.nameToNode.pop(name, None)
        raise
    return shaped


def _configure_hop(shaped: ShapedLink, node_a: Node, node_b: Node, seed: Optional[int],
                   running: Optional[bool]) -> None:
    """Bridge, delay lines, shaping and record of a wired hop: commands in the hop's own
    namespace only, so that many hops can be configured at once."""
    hop, params, mechanism, queues = shaped.hop, shaped.params, shaped.mechanism, shaped.hop.queues
    seg_a, seg_b = shaped.links
    hop_a, hop_b = seg_a.intf2, seg_b.intf1  # a->b enters at hop_a, leaves at hop_b
    hop.setup_bridge(hop_a.name, hop_b.name, netfilter=mechanism == "nfqueue")
    one_way = params.delay_ms / 2
    jitter_sd = (params.jitter_ms or 0) / 2
    loss = params.loss_pct or 0
    netem_args = None
    if mechanism == "nfqueue":
        hop.divert([  # both lines start at once
            hop.launch_line("a->b", hop_a.name, queues[0], one_way, jitter_sd, loss, seed),
            hop.launch_line("b->a", hop_b.name, queues[1], one_way, jitter_sd, loss,
                            None if seed is None else seed + 1)])
    elif mechanism == "netem":
        netem_args = _netem_args(one_way, jitter_sd, loss)
    # Shape where the hop's bridge transmits: OVS's userspace datapath bypasses the
    # qdiscs of its own ports (HTB there was measured to have no effect).
    _batch(hop, "tc", egress_commands(hop_b.name, params.bw_mbps, params.queue_pkts, netem_args)
           + egress_commands(hop_a.name, params.bw_mbps, params.queue_pkts, netem_args))
    hop.record({"mechanism": mechanism, "intf_a": shaped.intf_a.name,
                "intf_b": shaped.intf_b.name, "node_a": node_a.name, "node_b": node_b.name})
    for intf in (shaped.intf_a, shaped.intf_b) if running is not False else ():
        _attach_if_running(intf.node, intf)
    LOG.info("shaped link %s: %s <-> %s via hop (%s; queues %s, pids %s)",
             shaped.name, node_a.name, node_b.name, mechanism, shaped.queues, shaped.pids)


def configure_links(links: List[ShapedLink], workers: int = 8) -> None:
    """Configure the deferred hops of LINKS, WORKERS at a time; raises the first failure
    once all have ended (the caller removes the whole network then)."""
    from concurrent.futures import ThreadPoolExecutor

    pending = [link for link in links if link.pending is not None]
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(pending))),
                            thread_name_prefix="hop") as pool:
        futures = [pool.submit(link.pending) for link in pending]
    for link in pending:
        link.pending = None
    for future in futures:
        future.result()


def _del_bridges(switches: List[Any]) -> List[str]:
    """One ``ovs-vsctl`` removing SWITCHES' bridges, not waiting for ovs-vswitchd."""
    args = ["ovs-vsctl", "--timeout=20", "--no-wait"]
    for sw in switches:
        args += ["--", "--if-exists", "del-br", sw.name]
    return args


def remove_network(net: Any, links: List[ShapedLink]) -> None:
    """Remove a whole Mininet network of shaped links at once, faster than ``net.stop()``.

    ``net.stop()`` deletes every interface with its own command and stops each hop's
    delay lines one hop after the other: seconds per hundred links. Here every delay
    line is signalled first (they write their counters while the rest goes on), the
    bridges leave OVSDB in one transaction, and every node's shell is ended: a veth
    pair disappears with the namespace of either end, and the kernel removes the
    devices of all ending namespaces in one batch. Returns once no interface of the
    switches is left in the root namespace (those left after 30 s are deleted) and
    ovs-vswitchd has applied the removal of the bridges.
    """
    hops = [link.hop for link in links if link.hop is not None]
    for hop in hops:
        hop.signal_lines()
    switches = [sw for sw in net.switches if hasattr(sw, "dpid")]
    remote = [sw for sw in switches if isinstance(sw, ClusterNode) and sw.site_server.remote]
    switches = [sw for sw in switches if sw not in remote]
    ports = [intf.name for sw in switches for intf in sw.intfList() if intf.name != "lo"]
    if switches:  # committed now, applied by ovs-vswitchd while the shells end
        res = subprocess.run(_del_bridges(switches), capture_output=True, text=True, timeout=30)
        if res.returncode != 0:
            LOG.warning("removing bridges failed: %s", res.stderr.strip())
    for server in {sw.site_server for sw in remote}:  # each server's own OVS
        group = [sw for sw in remote if sw.site_server == server]
        group[0].run([a for a in _del_bridges(group) if a != "--no-wait"], check=False,
                     timeout=30)
    for link in links:
        for segment in link.links:
            if getattr(segment, "tunnel", None):  # VXLAN ends outlive namespaces: delete them
                segment.terminate()
            segment.stopped = True  # removed with its namespace: nothing to delete
    for hop in hops:
        hop.terminate()  # lines' counters, the hop's record, its shell
    for node in [*net.hosts, *net.switches, *net.controllers]:
        node.terminate()
    deadline = time.monotonic() + 30
    while (left := [p for p in ports if Path(f"/sys/class/net/{p}").exists()]) \
            and time.monotonic() < deadline:
        time.sleep(0.02)
    if left:
        LOG.warning("%d switch ports outlived their namespaces: deleting them", len(left))
        subprocess.run(["ip", "-force", "-batch", "-"], input="".join(
            f"link del {p}\n" for p in left), capture_output=True, text=True, timeout=60)
    if switches:  # and ovs-vswitchd has removed the bridges
        subprocess.run(["ovs-vsctl", "--timeout=20", "sync"], capture_output=True, timeout=30)


# --------------------------------------------------------------------------- clean-up

def cleanup_leftovers() -> List[str]:
    """Remove what killed runs of THIS prefix left: delay lines, hop shells, records.

    Kills only pids recorded under run_dir() whose /proc cmdline still is a
    ``topologies.delayline`` of the recorded queue (or the recorded hop's Mininet
    shell), deletes recorded interfaces that carry the prefix, and probe namespaces
    of this prefix. Returns a description of every action.
    """
    done: List[str] = []
    for rec in _read_records():
        owner = int(rec.get("owner_pid", 0))
        if owner and owner != os.getpid() and _pid_alive(owner) and "hop_pid" in rec and \
                _is_hop_shell(int(rec["hop_pid"]), rec["hop"]):
            continue  # a live run still owns it
        for line in rec.get("lines", []):
            pid, queue = int(line["pid"]), int(line["queue"])
            if _is_delayline(pid, queue):
                os.kill(pid, signal.SIGTERM)
                deadline = time.monotonic() + 3
                while _pid_alive(pid) and _is_delayline(pid, queue) and time.monotonic() < deadline:
                    time.sleep(0.05)
                if _is_delayline(pid, queue):
                    os.kill(pid, signal.SIGKILL)
                done.append(f"killed delay line pid {pid} (queue {queue})")
            try:
                Path(line.get("log", "")).unlink()
            except (FileNotFoundError, IsADirectoryError):
                pass
        hop_pid = int(rec.get("hop_pid", 0))
        if hop_pid and _is_hop_shell(hop_pid, rec["hop"]):
            os.kill(hop_pid, signal.SIGKILL)
            done.append(f"killed hop {rec['hop']} shell pid {hop_pid}")
        for key in ("intf_a", "intf_b"):
            dev = rec.get(key)
            if dev and config.is_ours(dev) and Path(f"/sys/class/net/{dev}").exists():
                subprocess.run(["ip", "link", "del", dev], capture_output=True, timeout=20)
                done.append(f"deleted interface {dev}")
        Path(rec["_path"]).unlink(missing_ok=True)
        done.append(f"removed record of hop {rec['hop']}")
    res = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=20)
    for row in res.stdout.splitlines():
        ns = row.split()[0] if row.split() else ""
        if ns.startswith((config.name("nm"), config.name("nq"))) and ns[len(config.name("nm")):].isdigit():
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=20)
            done.append(f"deleted probe namespace {ns}")
    return done
