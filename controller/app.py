"""The Network Manager: an OpenFlow 1.3 app (os-ken or ryu, via controller.compat).

It forwards along shortest paths of the pushed switch graph, answers all ARP
itself (so nothing is flooded and looped topologies are safe), steers each
UE's traffic for a service VIP to a replica with rewrites at the UE's access
point, tracks UE locations (a UE's access port coming up, an OpenFlow port
status, or a known source at another host port = location event; its
``signal`` says which, ``ts_signal`` when it arrived), re-steers make-before-break with Barrier timing, and re-installs its
state on every switch (re)connect.

Each UE's attach is prepared at the other APs it may attach to (plan's table 3), so
its first connections after a move reach the replica there before the location's
flows are installed.

A re-steer of a UE that stays at its AP drains (``drain_s`` > 0): new
connections (SYN) go to the new replica at once and are pinned there, while
established ones keep the old replica until a timer moves the base rewrite
and removes the SYN rule, the pins and the old return rewrite. Drains live in
memory only; the state (and so every re-install) always holds the final flows. The REST API (controller.rest) calls the
public methods below from its own threads; all state changes hold ``lock``.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import threading
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Any, Callable

from controller import checksum
from controller import compat
from controller import cookies
from controller import plan
from controller.compat import (
    CONFIG_DISPATCHER,
    DEAD_DISPATCHER,
    MAIN_DISPATCHER,
    arp,
    ether_types,
    ethernet,
    ofp_event,
    ofproto_v1_3,
    packet,
    set_ev_cls,
)
from controller.cookies import FlowKind
from controller.model import Host, RequestError, Service, Topology
from controller.plan import FlowSpec, LedgerSpec, PinSpec, ReturnSpec
from controller.settings import ControllerSettings
from controller.state import NetworkState

LOG = logging.getLogger("controller.app")

#: Marker in a message list: "send a Barrier here" (ordering, not waited on).
ORDER = object()
BARRIER_TIMEOUT_S = 5.0
#: Packets of one host held for re-injection while its new location's flows are installed.
MAX_SETTLING_PACKETS = 256
#: How long a UE's packet from an access port still reported down is held: its 'up'
#: status may trail the packet (the switch reads both from the kernel apart). When the
#: port comes up within this time the packet goes through the new flows; else it is
#: dropped (it was sent before the UE left that port).
EARLY_HOLD_S = 0.1
#: How long after a host's new flows were confirmed its packets that still reach the
#: controller are re-injected (at most MAX_SETTLING_PACKETS): Open vSwitch answers the
#: Barrier once its tables hold the flows, but its datapath cache (the megaflow that sent
#: the host's first packets at the new AP to the controller) is revalidated a few ms
#: later, and packets in between still come up as packet-ins.
SETTLED_S = 1.0
MAX_EVENTS = 20000
SAVE_DEBOUNCE_S = 0.05
#: The running app (for the runner's exit handler).
INSTANCE: "NetworkManager | None" = None


#: Set by controller.run (from its options) before the framework instantiates the app.
CONFIG = ControllerSettings()


class BarrierGroup:
    """Waits for the Barrier replies of one commit (one per switch touched)."""

    def __init__(self, t0: float, on_done: Callable[["BarrierGroup"], None] | None = None):
        self.t0 = t0
        self.pending: set[tuple[int, int]] = set()
        self.touched: list[int] = []
        self.t_last: float | None = None
        self.done = threading.Event()
        self.on_done = on_done
        self.flow_mods = 0

    @property
    def elapsed_ms(self) -> float | None:
        return None if self.t_last is None else (self.t_last - self.t0) * 1000.0

    def finish(self) -> None:
        if self.t_last is None:
            self.t_last = time.perf_counter()
        self.done.set()
        if self.on_done:
            try:
                self.on_done(self)
            except Exception:  # noqa: BLE001 - a callback must not kill the event loop
                LOG.exception("barrier callback failed")


@dataclass
class Drain:
    """A re-steer of (service, UE) whose established connections still use ``old`` replicas.

    The base forward rewrite still points at the replica steering before the
    first re-steer; the SYN rule at the newest. ``old`` holds every replica
    whose return rewrite must stay until the end. ``token`` tells a stale timer
    from the current one.
    """

    service: str
    ue: str
    dpid: int
    old: set[str]
    token: int
    until: float = 0.0
    timer: threading.Timer | None = None


def _action_str(ofctl: Any, act: Any) -> str:
    if type(act).__name__ == "NXActionLearn":  # ofctl cannot print it (no .data)
        return (f"LEARN:{{table:{act.table_id}, priority:{act.priority}, "
                f"cookie:{act.cookie:#x}, idle_timeout:{act.idle_timeout}}}")
    try:
        return ofctl.action_to_str(act)
    except Exception:  # noqa: BLE001 - an unprintable action must not fail the dump
        return type(act).__name__


def _actions_str(ofctl: Any, instructions: list[Any]) -> list[Any]:
    """ofctl's actions_to_str, also for actions it cannot print (the drain's learn)."""
    try:
        return ofctl.actions_to_str(instructions)
    except Exception:  # noqa: BLE001 - fall back to one action at a time
        out: list[Any] = []
        for inst in instructions:
            if hasattr(inst, "actions"):
                out.extend(_action_str(ofctl, a) for a in inst.actions)
            elif hasattr(inst, "table_id"):
                out.append(f"GOTO_TABLE:{inst.table_id}")
            else:
                out.append(type(inst).__name__)
        return out


class NetworkManager(compat.BaseApp):
    """OpenFlow 1.3 Network Manager: forwarding, ARP, steering, location, REST."""

    OFP_VERSIONS = [ofproto_v1_3.OFP_VERSION]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.config = CONFIG
        self.lock = threading.RLock()
        self.datapaths: dict[int, Any] = {}
        self.event_log: list[dict[str, Any]] = []
        self._seq = 0
        self._barriers: dict[tuple[int, int], BarrierGroup] = {}
        self._stats: dict[tuple[int, int], tuple[threading.Event, list[Any]]] = {}
        self._drains: dict[tuple[str, str], Drain] = {}
        #: (dpid, port) -> when its port status last said it came up (perf_counter)
        self._up_since: dict[tuple[int, int], float] = {}
        #: (dpid, port)s whose last port status said they went down (no 'up' since)
        self._down: set[tuple[int, int]] = set()
        #: host name -> packets to re-inject once its location's flows are confirmed
        self._settling: dict[str, list[Callable[[], None]]] = {}
        #: (dpid, port) reported down -> (arrival, re-injection) of a UE's packets from it
        self._early: dict[tuple[int, int], list[tuple[float, Callable[[], None]]]] = {}
        #: host name -> [(dpid, port), until (perf_counter), re-injections left] after a move
        self._settled: dict[str, list[Any]] = {}
        self._drain_seq = 0
        self.state = self._load_state()
        if self.config.topology_file:
            import json

            from controller.model import parse_topology

            with open(self.config.topology_file) as f:
                self.state.set_topology(parse_topology(json.load(f)))
        self._dirty = threading.Event()
        threading.Thread(target=self._saver, name="mec-state-saver", daemon=True).start()
        self.rest = None
        from controller.rest import RestServer

        self.rest = RestServer(self, self.config.rest_host, self.config.rest_port)
        self.rest.start()
        LOG.info("NETWORK MANAGER READY line=%s ofp=%s rest=http://%s:%d pid=%d",
                 compat.LINE, self.config.ofp_port, self.config.rest_host,
                 self.rest.port, os.getpid())
        global INSTANCE
        INSTANCE = self

    def _load_state(self) -> NetworkState:
        """The saved state of this run (a restart), or a fresh one (a new run)."""
        path = self.config.state_file
        if not path or not os.path.exists(path):
            return NetworkState(run_id=self.config.run_id)
        try:
            run = NetworkState.saved_run(path)
        except (OSError, ValueError) as e:
            LOG.error("state file %s unreadable (%s): not loaded", path, e)
            return NetworkState(run_id=self.config.run_id)
        if run != self.config.run_id:
            LOG.warning("state file %s belongs to run %r, not this run %r: not loaded",
                        path, run, self.config.run_id)
            return NetworkState(run_id=self.config.run_id)
        LOG.info("state of run %r loaded from %s", run, path)
        return NetworkState.load(path)

    # ================================================================ events log
    def _event(self, etype: str, **fields: Any) -> dict[str, Any]:
        with self.lock:
            self._seq += 1
            ev = {"seq": self._seq, "type": etype, "ts": time.time(), **fields}
            self.event_log.append(ev)
            if len(self.event_log) > MAX_EVENTS:
                del self.event_log[: len(self.event_log) - MAX_EVENTS]
            return ev

    def events_since(self, since: int) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(e) for e in self.event_log if e["seq"] > since]

    def _save(self) -> None:
        """Ask the saver thread to persist the state (debounced, off the hot path)."""
        if self.config.state_file:
            self._dirty.set()

    def _saver(self) -> None:
        while True:
            self._dirty.wait()
            time.sleep(SAVE_DEBOUNCE_S)
            self.flush_state()

    def flush_state(self) -> None:
        """Write the state file now if anything changed (also called on exit)."""
        if not self.config.state_file or not self._dirty.is_set():
            return
        with self.lock:
            self._dirty.clear()
            doc = self.state.to_json()
        try:
            self.state.save_json(doc, self.config.state_file)
        except OSError:
            LOG.exception("cannot save state to %s", self.config.state_file)

    # ================================================================ OpenFlow I/O
    def _flow_mod(self, dp: Any, spec: FlowSpec, command: int | None = None) -> Any:
        ofp, parser = dp.ofproto, dp.ofproto_parser
        acts = self._actions(dp, spec.actions)
        inst = []
        if acts:
            inst.append(parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, acts))
        if spec.goto is not None:
            inst.append(parser.OFPInstructionGotoTable(spec.goto))
        return parser.OFPFlowMod(
            datapath=dp, cookie=spec.cookie, table_id=spec.table,
            command=ofp.OFPFC_ADD if command is None else command,
            priority=spec.priority, match=parser.OFPMatch(**spec.match), instructions=inst)

    @staticmethod
    def _actions(dp: Any, actions: list[tuple[Any, ...]]) -> list[Any]:
        """OpenFlow actions of a FlowSpec's action tuples."""
        ofp, parser = dp.ofproto, dp.ofproto_parser
        acts = []
        for a in actions:
            if a[0] == "output":
                acts.append(parser.OFPActionOutput(a[1]))
            elif a[0] == "controller":
                acts.append(parser.OFPActionOutput(ofp.OFPP_CONTROLLER, ofp.OFPCML_NO_BUFFER))
            elif a[0] == "set_field":
                acts.append(parser.OFPActionSetField(**{a[1]: a[2]}))
            elif a[0] == "move":
                acts.append(parser.NXActionRegMove(src_field=a[1], dst_field=a[2], n_bits=a[3]))
            elif a[0] == "pin":
                acts.extend(NetworkManager._pin_actions(parser, a[1]))
            elif a[0] == "ledger":
                acts.append(NetworkManager._ledger_action(parser, a[1]))
            elif a[0] == "return":
                acts.append(NetworkManager._return_action(parser, a[1]))
            else:
                raise ValueError(f"unknown action {a!r}")
        return acts

    @staticmethod
    def _pin_actions(parser: Any, pin: PinSpec) -> list[Any]:
        """reg0 := port towards the replica, then learn the UE->VIP flow of this SYN-ACK's
        connection: rewrite to the replica and output on reg0."""
        m, ld = parser.NXFlowSpecMatch, parser.NXFlowSpecLoad
        specs = [
            m(src=plan.ETH_IP, dst=("eth_type_nxm", 0), n_bits=16),
            m(src=plan.IPPROTO_TCP, dst=("ip_proto_nxm", 0), n_bits=8),
            m(src=("ipv4_dst_nxm", 0), dst=("ipv4_src_nxm", 0), n_bits=32),  # the UE
            m(src=int(ipaddress.IPv4Address(pin.vip)), dst=("ipv4_dst_nxm", 0), n_bits=32),
            m(src=("tcp_dst_nxm", 0), dst=("tcp_src_nxm", 0), n_bits=16),  # the UE's port
            m(src=pin.svc_port, dst=("tcp_dst_nxm", 0), n_bits=16),
            ld(src=int(pin.replica_mac.replace(":", ""), 16), dst=("eth_dst_nxm", 0), n_bits=48),
            ld(src=int(ipaddress.IPv4Address(pin.replica_ip)), dst=("ipv4_dst_nxm", 0),
               n_bits=32),
            parser.NXFlowSpecOutput(src=("reg0", 0), n_bits=16),
        ]
        return [parser.OFPActionSetField(reg0=pin.port),
                parser.NXActionLearn(table_id=pin.table, specs=specs,
                                     idle_timeout=pin.idle_timeout, priority=pin.priority,
                                     cookie=pin.cookie)]

    @staticmethod
    def _return_action(parser: Any, ret: ReturnSpec) -> Any:
        """Learn, from a UE's packet at a prepared attach, the way back of its connection:
        the replica's replies to that UE ip:port, source rewritten to the VIP, out of the
        port the packet came in by."""
        m, ld = parser.NXFlowSpecMatch, parser.NXFlowSpecLoad
        proto = ret.protocol
        specs = [
            m(src=plan.ETH_IP, dst=("eth_type_nxm", 0), n_bits=16),
            m(src=plan.IP_PROTO[proto], dst=("ip_proto_nxm", 0), n_bits=8),
            m(src=int(ipaddress.IPv4Address(ret.replica_ip)), dst=("ipv4_src_nxm", 0),
              n_bits=32),
            m(src=("ipv4_src_nxm", 0), dst=("ipv4_dst_nxm", 0), n_bits=32),  # the UE
            m(src=ret.svc_port, dst=(f"{proto}_src_nxm", 0), n_bits=16),
            m(src=(f"{proto}_src_nxm", 0), dst=(f"{proto}_dst_nxm", 0), n_bits=16),  # its port
            ld(src=int(ret.vmac.replace(":", ""), 16), dst=("eth_src_nxm", 0), n_bits=48),
            ld(src=int(ipaddress.IPv4Address(ret.vip)), dst=("ipv4_src_nxm", 0), n_bits=32),
            parser.NXFlowSpecOutput(src=("in_port_nxm", 0), n_bits=16),
        ]
        return parser.NXActionLearn(table_id=ret.table, specs=specs,
                                    idle_timeout=ret.idle_timeout, priority=ret.priority,
                                    cookie=ret.cookie)

    @staticmethod
    def _ledger_action(parser: Any, led: LedgerSpec) -> Any:
        """Learn the ledger entry of this reply: (UE ip, the reply's destination port,
        replica ip:port, protocol), no actions, cookie naming UE, service and replica.
        With ``from_request`` the packet is the UE's request (its source port)."""
        m = parser.NXFlowSpecMatch
        proto = led.protocol
        ue_port = f"{proto}_src_nxm" if led.from_request else f"{proto}_dst_nxm"
        specs = [
            m(src=plan.ETH_IP, dst=("eth_type_nxm", 0), n_bits=16),
            m(src=plan.IP_PROTO[proto], dst=("ip_proto_nxm", 0), n_bits=8),
            m(src=int(ipaddress.IPv4Address(led.ue_ip)), dst=("ipv4_src_nxm", 0), n_bits=32),
            m(src=(ue_port, 0), dst=(f"{proto}_src_nxm", 0), n_bits=16),  # UE port
            m(src=int(ipaddress.IPv4Address(led.replica_ip)), dst=("ipv4_dst_nxm", 0),
              n_bits=32),
            m(src=led.svc_port, dst=(f"{proto}_dst_nxm", 0), n_bits=16),
        ]
        return parser.NXActionLearn(table_id=led.table, specs=specs, priority=led.priority,
                                    hard_timeout=led.hard_timeout, cookie=led.cookie)

    @staticmethod
    def _delete_by_cookie(dp: Any, cookie: int, mask: int, table: int | None = None) -> Any:
        ofp, parser = dp.ofproto, dp.ofproto_parser
        return parser.OFPFlowMod(
            datapath=dp, cookie=cookie, cookie_mask=mask,
            table_id=ofp.OFPTT_ALL if table is None else table, command=ofp.OFPFC_DELETE,
            out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY, match=parser.OFPMatch())

    def _commit(self, work: dict[int, list[Any]], t0: float,
                on_done: Callable[[BarrierGroup], None] | None = None) -> BarrierGroup:
        """Send per-switch messages (FlowSpec, OFP message or ORDER), then a Barrier each.

        Must be called with ``lock`` held. Switches that are not connected are
        skipped (they get everything on connect).
        """
        group = BarrierGroup(t0, on_done)
        for dpid, items in work.items():
            dp = self.datapaths.get(dpid)
            if dp is None or not items:
                continue
            parser = dp.ofproto_parser
            for item in items:
                if item is ORDER:
                    dp.send_msg(parser.OFPBarrierRequest(dp))
                    continue
                msg = self._flow_mod(dp, item) if isinstance(item, FlowSpec) else item
                dp.send_msg(msg)
                group.flow_mods += 1
            barrier = parser.OFPBarrierRequest(dp)
            dp.set_xid(barrier)
            group.pending.add((dpid, barrier.xid))
            group.touched.append(dpid)
            self._barriers[(dpid, barrier.xid)] = group
            dp.send_msg(barrier)
        if not group.pending:
            group.finish()
        return group

    @set_ev_cls(ofp_event.EventOFPBarrierReply, MAIN_DISPATCHER)
    def _barrier_reply(self, ev: Any) -> None:
        t = time.perf_counter()
        key = (ev.msg.datapath.id, ev.msg.xid)
        with self.lock:
            group = self._barriers.pop(key, None)
            if group is None:
                return
            group.pending.discard(key)
            group.t_last = t
            last = not group.pending
        if last:
            group.finish()

    @set_ev_cls(ofp_event.EventOFPErrorMsg, [CONFIG_DISPATCHER, MAIN_DISPATCHER])
    def _error(self, ev: Any) -> None:
        m = ev.msg
        LOG.warning("OpenFlow error from %s: type=%s code=%s", m.datapath.id, m.type, m.code)
        self._event("of_error", dpid=m.datapath.id, err_type=m.type, code=m.code)

    # ================================================================ switches
    @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG_DISPATCHER)
    def _features(self, ev: Any) -> None:
        dp = ev.msg.datapath
        # under native threads this may run before ofp_handler has set dp.id
        dp.id = ev.msg.datapath_id
        t0 = time.perf_counter()
        with self.lock:
            self.datapaths[dp.id] = dp
            self._cancel_drains(lambda d: d.dpid == dp.id)  # the sync installs the final flows
            group = self._commit({dp.id: self._sync_items(dp)}, t0)
        self._event("switch_connected", dpid=dp.id, switch=self.state.switch_name(dp.id),
                    flow_mods=group.flow_mods)
        LOG.info("switch %s (dpid %d) connected: %d flow mods", self.state.switch_name(dp.id),
                 dp.id, group.flow_mods)

    def _sync_items(self, dp: Any) -> list[Any]:
        """Delete the project's flows on ``dp`` and re-install them from the state.

        The connection ledger (its own table) is kept: it is a record, not steering."""
        items: list[Any] = [self._delete_by_cookie(dp, cookies.PROJECT_COOKIE,
                                                   cookies.PROJECT_MASK, t)
                            for t in plan.STEERING_TABLES]
        items.append(ORDER)
        items.extend(plan.switch_flows(self.state, dp.id))
        return items

    def _prepare(self, ues: list[Host], t0: float) -> None:
        """Prepare UES's attaches again at their candidate APs (lock held; see plan's
        table 3): their prepared flows (and the returns learned there) go, then the
        prepared flows come back from the state. Sent after (and not timed with) the change
        that called it: until the new ones are in, an attach is handled as without them
        (the controller holds the first packets)."""
        st = self.state
        work: dict[int, list[Any]] = defaultdict(list)
        for ue in ues:
            if ue.kind != "ue" or len(ue.ports) < 2:
                continue
            hid = st.host_id(ue.name)
            for dpid in {d for d, _ in ue.ports}:
                dp = self.datapaths.get(dpid)
                if dp is None:
                    continue
                work[dpid].append(self._delete_by_cookie(
                    dp, cookies.encode(FlowKind.PREP, hid), cookies.HOST_MASK))
                work[dpid].append(ORDER)
            for spec in plan.prepared_flows(st, ue):
                if spec.dpid in work:
                    work[spec.dpid].append(spec)
        if work:
            self._commit(work, t0)

    @set_ev_cls(ofp_event.EventOFPStateChange, [MAIN_DISPATCHER, DEAD_DISPATCHER])
    def _state_change(self, ev: Any) -> None:
        dp = ev.datapath
        if ev.state != DEAD_DISPATCHER or dp.id is None:
            return
        with self.lock:
            if self.datapaths.get(dp.id) is dp:
                self._forget_datapath(dp)
        self._event("switch_disconnected", dpid=dp.id, switch=self.state.switch_name(dp.id))

    def _forget_datapath(self, dp: Any) -> None:
        """Drop a switch connection (lock held); its pending Barriers no longer hold commits."""
        del self.datapaths[dp.id]
        for key in [k for k in self._barriers if k[0] == dp.id]:
            group = self._barriers.pop(key)
            group.pending.discard(key)
            if not group.pending:
                group.finish()

    def _confirmed(self, group: BarrierGroup) -> list[int]:
        """Wait for a commit's Barrier replies; return the switches that stayed silent.

        A silent switch may hold some, all or none of the commit's flow mods, so it
        is disconnected: when it connects again its flows are re-installed from the
        state (``_features``), and switches and state agree again.
        """
        if group.done.wait(BARRIER_TIMEOUT_S):
            return []
        with self.lock:
            silent = sorted({dpid for dpid, _ in group.pending})
            dps = [self.datapaths[d] for d in silent if d in self.datapaths]
            for dp in dps:
                self._forget_datapath(dp)
        for dp in dps:
            name = self.state.switch_name(dp.id)
            LOG.warning("switch %s did not answer a Barrier in %.0f s: disconnecting it so that "
                        "it re-syncs on reconnect", name, BARRIER_TIMEOUT_S)
            self._event("switch_unresponsive", dpid=dp.id, switch=name, action="reconnect")
            dp.close()
        return silent

    # ================================================================ packet-in
    @set_ev_cls(ofp_event.EventOFPPacketIn, MAIN_DISPATCHER)
    def _packet_in(self, ev: Any) -> None:
        t_in = time.perf_counter()
        ts_in = time.time()
        msg = ev.msg
        dp = msg.datapath
        in_port = msg.match["in_port"]
        try:
            pkt = packet.Packet(msg.data)
        except Exception:  # noqa: BLE001 - malformed frame from the wire
            return
        eth = pkt.get_protocol(ethernet.ethernet)
        if eth is None:
            return
        LOG.debug("packet-in dpid=%s port=%s %s -> %s type=%04x", dp.id, in_port, eth.src,
                  eth.dst, eth.ethertype)
        is_arp = eth.ethertype == ether_types.ETH_TYPE_ARP

        def reinject() -> None:
            # the first packet at the new AP goes through the new flows, once every
            # switch touched has confirmed them (Barrier); with its checksum completed
            # (see controller.checksum: else the receiver drops it)
            ofp, parser = dp.ofproto, dp.ofproto_parser
            dp.send_msg(parser.OFPPacketOut(
                datapath=dp, buffer_id=ofp.OFP_NO_BUFFER, in_port=in_port,
                actions=[parser.OFPActionOutput(ofp.OFPP_TABLE)],
                data=checksum.complete(bytes(msg.data))))

        with self.lock:
            if not self.state.is_link_port(dp.id, in_port):
                host = self.state.host_by_mac(eth.src)
                if host is not None and any(s.dpid == dp.id for s in self.state.topology.switches) \
                        and (host.dpid, host.port) != (dp.id, in_port) \
                        and not self._attached_later(host, dp.id, in_port):
                    self._move(host, dp.id, in_port, t_in, ts_in, None if is_arp else reinject,
                               signal="packet_in")
                elif host is not None and not is_arp and host.name in self._settling \
                        and (host.dpid, host.port) == (dp.id, in_port) \
                        and len(self._settling[host.name]) < MAX_SETTLING_PACKETS:
                    # the host's flows at this AP are on their way: this packet goes
                    # through them once they are confirmed, not lost
                    self._settling[host.name].append(reinject)
                elif host is not None and not is_arp and self._settled_here(host, dp.id, in_port,
                                                                            t_in):
                    reinject()
                elif host is not None and not is_arp and (dp.id, in_port) in self._down \
                        and [dp.id, in_port] in host.ports:
                    self._hold_early((dp.id, in_port), t_in, reinject)
        if is_arp:
            a = pkt.get_protocol(arp.arp)
            if a is not None:
                self._answer_arp(dp, in_port, eth, a)

    def _answer_arp(self, dp: Any, in_port: int, eth: Any, a: Any) -> None:
        if a.opcode != arp.ARP_REQUEST:
            return
        with self.lock:
            svc = self.state.service_by_vip(a.dst_ip)
            if svc is not None:
                mac = svc.vmac
            else:
                h = self.state.host_by_ip(a.dst_ip)
                mac = h.mac if h is not None else None
        if mac is None or a.dst_ip == a.src_ip:
            return
        p = packet.Packet()
        p.add_protocol(ethernet.ethernet(ethertype=ether_types.ETH_TYPE_ARP, dst=eth.src, src=mac))
        p.add_protocol(arp.arp(opcode=arp.ARP_REPLY, src_mac=mac, src_ip=a.dst_ip,
                               dst_mac=a.src_mac, dst_ip=a.src_ip))
        p.serialize()
        ofp, parser = dp.ofproto, dp.ofproto_parser
        dp.send_msg(parser.OFPPacketOut(
            datapath=dp, buffer_id=ofp.OFP_NO_BUFFER, in_port=ofp.OFPP_CONTROLLER,
            actions=[parser.OFPActionOutput(in_port)], data=p.data))

    # ================================================================ location
    @set_ev_cls(ofp_event.EventOFPPortStatus, MAIN_DISPATCHER)
    def _port_status(self, ev: Any) -> None:
        """The emulated radio's attach signal: a UE's access port came up (carrier), so the
        UE is there now; a port going down only ends its 'up' record (see `_attached_later`)."""
        t_in, ts_in = time.perf_counter(), time.time()
        msg = ev.msg
        dp, desc = msg.datapath, msg.desc
        ofp = dp.ofproto
        up = msg.reason != ofp.OFPPR_DELETE and self._port_up(ofp, desc)
        key = (dp.id, desc.port_no)
        LOG.debug("port status dpid=%s port=%s reason=%s state=%#x config=%#x", dp.id,
                 desc.port_no, msg.reason, desc.state, desc.config)
        with self.lock:
            host = self.state.host_wired_at(dp.id, desc.port_no)
            if not up:
                self._up_since.pop(key, None)
                self._down.add(key)
                self._early.pop(key, None)  # sent before the UE left: never re-injected
                if host is not None and (host.dpid, host.port) == key:
                    # switches report apart, so an 'up' elsewhere may have been read before
                    # this port's own earlier 'up': the host is where a port is up now
                    live = [(self._up_since[(d, p)], (d, p)) for d, p in host.ports
                            if (d, p) in self._up_since]
                    if live:
                        d, p = max(live)[1]
                        self._move(host, d, p, t_in, ts_in, signal="port_status")
                return
            self._up_since[key] = t_in
            self._down.discard(key)
            early = [send for t, send in self._early.pop(key, []) if t_in - t <= EARLY_HOLD_S]
            if host is not None and (host.dpid, host.port) != key:
                self._move(host, dp.id, desc.port_no, t_in, ts_in, signal="port_status",
                           held=early)

    @staticmethod
    def _port_up(ofp: Any, desc: Any) -> bool:
        """Whether a port's description says its link is up. OVS reports a carrier loss as
        LIVE cleared, then LINK_DOWN set: up means LIVE, not LINK_DOWN, not PORT_DOWN."""
        return bool(desc.state & ofp.OFPPS_LIVE) and not desc.state & ofp.OFPPS_LINK_DOWN \
            and not desc.config & ofp.OFPPC_PORT_DOWN

    @set_ev_cls(ofp_event.EventOFPPortDescStatsReply, [CONFIG_DISPATCHER, MAIN_DISPATCHER])
    def _port_desc(self, ev: Any) -> None:
        """A switch's ports as it (re)connects: a UE's access port that is up where the state
        does not have the UE is an attach this Network Manager missed (it was down or
        restarting when the port status went by), handled as that port status. Needed
        since a prepared attach (plan's table 3) carries the UE's traffic without any
        packet reaching the controller."""
        t_in, ts_in = time.perf_counter(), time.time()
        dp = ev.msg.datapath
        if dp.id is None:
            return
        ofp = dp.ofproto
        with self.lock:
            for desc in ev.msg.body:
                key = (dp.id, desc.port_no)
                host = self.state.host_wired_at(dp.id, desc.port_no)
                if host is None:
                    continue
                if not self._port_up(ofp, desc):
                    self._up_since.pop(key, None)
                    self._down.add(key)
                    continue
                self._down.discard(key)
                self._up_since.setdefault(key, t_in)
                if (host.dpid, host.port) != key:
                    self._move(host, dp.id, desc.port_no, t_in, ts_in, signal="port_desc")

    def _hold_early(self, key: tuple[int, int], t_in: float, send: Callable[[], None]) -> None:
        """Keep a UE's packet from port KEY, reported down, until its 'up' status (lock held;
        see EARLY_HOLD_S). Without it the packets a UE sends in its first milliseconds at a
        new access point were lost whenever the switch's report of the port trailed them."""
        held = [(t, s) for t, s in self._early.get(key, []) if t_in - t <= EARLY_HOLD_S]
        if len(held) < MAX_SETTLING_PACKETS:
            held.append((t_in, send))
        self._early[key] = held

    def _settled_here(self, host: Host, dpid: int, port: int, t_in: float) -> bool:
        """True when HOST's packet from (DPID, PORT), its location, came up through the
        switch's stale datapath cache just after its flows there were confirmed (lock held;
        see SETTLED_S): the packet is to be re-injected, counted against the budget."""
        settled = self._settled.get(host.name)
        if settled is None or settled[0] != (dpid, port) or (host.dpid, host.port) != (dpid, port):
            return False
        if t_in > settled[1] or settled[2] <= 0:
            del self._settled[host.name]
            return False
        settled[2] -= 1
        return True

    def _attached_later(self, host: Host, dpid: int, port: int) -> bool:
        """True when a packet of HOST from (DPID, PORT) must not move it there (lock held):
        HOST's current port came up after that one did (a packet from the port it is leaving,
        make-before-break), or that port's last status said it went down. A packet from a
        port that is down was sent before the UE left it (queued for the controller, or
        re-injected after an install): moving the UE back there would strand it, and its own
        packets at the port it is really at would then count as coming from a port it is
        leaving. Were the port up again, its 'up' status is on its way (OVS reports the
        state it ends in) and moves the UE."""
        if [dpid, port] not in host.ports:
            return False
        if (dpid, port) in self._down:
            return True
        here, there = self._up_since.get((host.dpid, host.port)), self._up_since.get((dpid, port))
        # THERE unknown: its port status is still on its way (break-before-make): the packet
        # is the attach signal
        return here is not None and there is not None and there < here

    def _move(self, host: Host, dpid: int, port: int, t_in: float, ts_in: float,
              then: Callable[[], None] | None = None, signal: str = "packet_in",
              held: list[Callable[[], None]] | None = None) -> None:
        """Handle a host seen at a new AP port (lock held): event, stale flows, re-install.

        THEN and HELD (packets that came before the signal) are re-injected once every
        switch touched has confirmed the new flows."""
        st = self.state
        old_dpid, old_port = host.dpid, host.port
        self._up_since.setdefault((dpid, port), t_in)  # a packet from it: it is up
        hid = st.host_id(host.name)
        old_out = {d: st.out_port(d, host) for d in self.datapaths}
        work: dict[int, list[Any]] = defaultdict(list)
        old_dp = self.datapaths.get(old_dpid)
        # a drain at the old AP ends here: its flows go, the new AP gets the final ones
        self._cancel_drains(lambda d: d.ue == host.name)
        if old_dp is not None:
            for kind in (FlowKind.ADMIT, FlowKind.STEER_FWD, FlowKind.STEER_RET,
                         FlowKind.STEER_SYN, FlowKind.STEER_PIN):
                c = cookies.encode(kind, hid)
                work[old_dpid].append(self._delete_by_cookie(old_dp, c, cookies.HOST_MASK))
        host.dpid, host.port = dpid, port
        resteered: dict[str, str] = {}
        if host.kind == "ue":
            for svc_name, sites in st.policy.items():
                rep = sites.get(dpid)
                if rep and svc_name in st.services and st.replica_for(svc_name, host.name) != rep:
                    st.overrides[(svc_name, host.name)] = rep
                    resteered[svc_name] = rep
        for d in self.datapaths:
            if st.out_port(d, host) != old_out.get(d):
                f = plan.fwd_flow(st, d, host)
                if f:
                    work[d].append(f)
        # admission last (plan.host_flows_at_ap): until it is in, the host's packets at the
        # new AP go to the controller (held, re-injected after the Barrier), never into a
        # table 1 that does not steer them yet (dropped there)
        work[dpid].extend(plan.host_flows_at_ap(st, host))
        ev = self._event(
            "location", host=host.name, kind=host.kind,
            old={"dpid": old_dpid, "port": old_port, "switch": st.switch_name(old_dpid)},
            new={"dpid": dpid, "port": port, "switch": st.switch_name(dpid)},
            signal=signal, ts_signal=ts_in, ts_packet_in=ts_in,
            resteered=resteered, install_ms=None, switches_touched=None)

        waiting = self._settling[host.name] = list(held or [])

        def done(group: BarrierGroup) -> None:
            with self.lock:
                ev["install_ms"] = group.elapsed_ms
                ev["switches_touched"] = len(group.touched)
                ev["ts_installed"] = ts_in + (group.t_last - t_in)
                if self._settling.get(host.name) is waiting:
                    del self._settling[host.name]
                    self._settled[host.name] = [(dpid, port), group.t_last + SETTLED_S,
                                                MAX_SETTLING_PACKETS]
            for send in ([then] if then is not None else []) + waiting:
                send()

        self._commit(work, t_in, done)
        ev["sent_ms"] = (time.perf_counter() - t_in) * 1000  # signal -> flow mods sent
        self._prepare([host], t_in)  # from here: the attaches it may make next
        LOG.info("location: %s %s:%d -> %s:%d%s", host.name, st.switch_name(old_dpid), old_port,
                 st.switch_name(dpid), port, f" resteer {resteered}" if resteered else "")
        self._save()

    # ================================================================ public API (REST)
    def set_topology(self, topo: Topology) -> dict[str, Any]:
        t0 = time.perf_counter()
        with self.lock:
            self.state.set_topology(topo)
            self._cancel_drains(lambda d: True)
            # where a UE with attach ports starts, its link is up (no port status said so)
            self._up_since = {(h.dpid, h.port): t0 for h in topo.hosts if h.ports}
            self._down = set()
            work = {d: self._sync_items(dp) for d, dp in self.datapaths.items()}
            group = self._commit(work, t0)
            self._save()
        self._confirmed(group)
        self._event("topology", switches=len(topo.switches), links=len(topo.links),
                    hosts=len(topo.hosts), install_ms=group.elapsed_ms)
        return {"switches": len(topo.switches), "links": len(topo.links),
                "hosts": len(topo.hosts), "install_ms": group.elapsed_ms,
                "switches_touched": len(group.touched)}

    def _steer_delete_items(self, dp: Any, svc_name: str) -> list[Any]:
        sid = self.state.service_id(svc_name)
        mask = cookies.PROJECT_MASK | (0xFF << 40) | (cookies.MAX_ID << 16)
        return [self._delete_by_cookie(dp, cookies.encode(k, 0, sid), mask, plan.T_FWD)
                for k in (FlowKind.STEER_FWD, FlowKind.STEER_RET, FlowKind.STEER_SYN,
                          FlowKind.STEER_PIN)]

    def add_service(self, svc: Service) -> dict[str, Any]:
        t0 = time.perf_counter()
        with self.lock:
            existed = svc.name in self.state.services
            self._cancel_drains(lambda d: d.service == svc.name)
            self.state.add_service(svc)
            work: dict[int, list[Any]] = defaultdict(list)
            if existed:
                for d, dp in self.datapaths.items():
                    work[d].extend(self._steer_delete_items(dp, svc.name))
            for ue in self.state.ues():
                pair = plan.steer_flows(self.state, ue, svc)
                if pair:
                    work[ue.dpid].extend(pair)
            group = self._commit(work, t0)
            self._prepare(self.state.ues(), t0)
            self._save()
        self._confirmed(group)
        self._event("service", service=svc.name, vip=svc.vip, port=svc.port, primary=svc.primary,
                    protocol=svc.protocol)
        return self.service_json(svc)

    def remove_service(self, name: str) -> dict[str, Any]:
        t0 = time.perf_counter()
        with self.lock:
            self.state.service(name)
            self._cancel_drains(lambda d: d.service == name)
            work = {d: self._steer_delete_items(dp, name) for d, dp in self.datapaths.items()}
            svc = self.state.remove_service(name)
            group = self._commit(work, t0)
            self._prepare(self.state.ues(), t0)
            self._save()
        self._confirmed(group)
        return {"removed": svc.name}

    def service_json(self, svc: Service) -> dict[str, Any]:
        d = asdict(svc)
        d["id"] = self.state.service_id(svc.name)
        d["policy"] = {self.state.switch_name(k): v
                       for k, v in self.state.policy.get(svc.name, {}).items()}
        return d

    def set_primary(self, service: str, replica: str, ue: str | None = None,
                    t0: float | None = None, drain_s: float | None = None) -> dict[str, Any]:
        """Steer one UE (or the whole service) to ``replica``, make-before-break.

        With ``drain_s`` > 0 (default: the controller's ``--drain-s``) a UE that
        was steered to another replica drains (TCP services only: a UDP service
        has no connections to keep and switches at once): its new connections go to
        ``replica`` at once, established ones stay on the old replica for
        ``drain_s`` seconds (a timer finishes the switch). Returns timing:
        ``reroute_ms`` = request (``t0``) to the last Barrier reply of the switch
        of new connections (of all traffic when nothing drains).
        """
        t0 = time.perf_counter() if t0 is None else t0
        drain_s = self.config.drain_s if drain_s is None else float(drain_s)
        with self.lock:
            st = self.state
            svc = st.service(service)
            rep = st.replica_host(replica)
            ues = [st.ue_host(ue)] if ue is not None else st.ues()
            before = {u.name: st.replica_for(service, u.name) for u in ues}
            prev = (svc.primary, {k: v for k, v in st.overrides.items() if k[0] == service})
            for u in ues:
                if before[u.name] != rep.name and st.out_port(u.dpid, rep) is None:
                    raise RequestError(f"no path from {u.name}'s AP to replica {rep.name}", 409)
            if ue is not None:
                st.overrides[(service, ues[0].name)] = rep.name
            else:
                svc.primary = rep.name
                st.overrides = {k: v for k, v in st.overrides.items() if k[0] != service}
            hosts = {h.name for h in st.hosts}
            work: dict[int, list[Any]] = defaultdict(list)
            changed = []
            for u in ues:
                old = before[u.name]
                if old == rep.name:
                    continue
                pair = plan.steer_flows(st, u, svc, rep.name)
                assert pair is not None
                new_fwd, new_ret = pair
                old_known = old is not None and old in hosts
                key = (service, u.name)
                pending = self._drains.get(key)
                dp = self.datapaths.get(u.dpid)
                syn = (plan.steer_syn_flows(st, u, svc, rep.name)
                       if drain_s > 0 and old_known else None)
                if syn is not None:
                    # drain: new return rewrite and SYN-ACK pin rule, then connection
                    # openings to the new replica; the base rewrite keeps the
                    # established connections on the old one until the timer
                    work[u.dpid].extend([new_ret, syn[1], ORDER, syn[0]])
                    self._drain_seq += 1
                    if pending is None:
                        pending = Drain(service, u.name, u.dpid, {old}, self._drain_seq)
                        self._drains[key] = pending
                    else:
                        if pending.timer is not None:
                            pending.timer.cancel()
                        pending.old.add(old)
                        pending.token = self._drain_seq
                    pending.until = time.time() + drain_s
                    self._schedule_drain(pending, drain_s)
                else:
                    # make-before-break: new return rewrite, then the forward rewrite
                    # switch, then remove the old return rewrite (and a pending drain's rules)
                    work[u.dpid].extend([new_ret, ORDER, new_fwd])
                    if dp is not None and pending is not None:
                        self._cancel_drains(lambda d, k=key: (d.service, d.ue) == k)
                        olds = pending.old | ({old} if old_known else set())
                        work[u.dpid].append(ORDER)
                        work[u.dpid].extend(self._drain_cleanup_items(dp, u, svc, olds, rep.name))
                    elif dp is not None and old_known:
                        oc = plan.steer_cookie(st, FlowKind.STEER_RET, u, svc, st.host(old))
                        work[u.dpid].append(
                            self._delete_by_cookie(dp, oc, cookies.EXACT_MASK, plan.T_FWD))
                changed.append({"ue": u.name, "from": old, "to": rep.name,
                                "drain_s": drain_s if syn is not None else 0.0})
            group = self._commit(work, t0)
            self._prepare([u for u in ues if before[u.name] != rep.name], t0)
            self._save()
        silent = self._confirmed(group)
        if silent:
            names = ", ".join(self.state.switch_name(d) for d in silent)
            undone = self._roll_back_primary(service, ue, rep.name, prev, changed)
            self._event("reroute_failed", service=service, ue=ue, replica=rep.name,
                        silent=[self.state.switch_name(d) for d in silent], rolled_back=undone)
            raise RequestError(
                f"switch {names} did not confirm the re-steer within {BARRIER_TIMEOUT_S:g} s; "
                + ("it was rolled back: the steering is as before the request" if undone else
                   "a later request changed the steering meanwhile, which stands")
                + f" (switch {names} re-syncs when it reconnects)", 504)
        result = {
            "service": service, "replica": rep.name, "ue": ue, "changed": changed,
            "reroute_ms": group.elapsed_ms, "switches_touched": len(group.touched),
            "flow_mods": group.flow_mods, "drain_s": drain_s,
        }
        self._event("reroute", **result)
        return result

    def _roll_back_primary(self, service: str, ue: str | None, replica: str,
                           prev: tuple[str | None, dict[tuple[str, str], str]],
                           changed: list[dict[str, Any]]) -> bool:
        """Undo a re-steer that switches did not confirm: state, then flows.

        Only when the steering is still what the failed request set (a later request
        wins). The state gets back the previous primary and overrides; connected APs
        of the changed UEs get the previous steering's final flows (a drain under way
        for these UEs ends with it); silent switches are re-synced on reconnect.
        """
        primary, overrides = prev
        with self.lock:
            st = self.state
            svc = st.services.get(service)
            if svc is None:
                return False
            if ue is not None:
                key = (service, ue)
                if st.overrides.get(key) != replica:
                    return False
                if key in overrides:
                    st.overrides[key] = overrides[key]
                else:
                    del st.overrides[key]
            else:
                if svc.primary != replica or any(k[0] == service for k in st.overrides):
                    return False
                svc.primary = primary
                st.overrides.update(overrides)
            work: dict[int, list[Any]] = defaultdict(list)
            for row in changed:
                key = (service, row["ue"])
                drains = self._cancel_drains(lambda d, k=key: (d.service, d.ue) == k)
                u = st.host_by_name(row["ue"])
                dp = self.datapaths.get(u.dpid) if u is not None else None
                if dp is None:
                    continue  # gone, or its AP is the silent switch: re-synced on connect
                pair = plan.steer_flows(st, u, svc)
                items: list[Any] = [pair[1], ORDER, pair[0], ORDER] if pair else []
                olds = {replica}.union(*(d.old for d in drains))
                items += self._drain_cleanup_items(dp, u, svc, olds,
                                                   st.replica_for(service, u.name))
                work[u.dpid].extend(items)
            group = self._commit(work, time.perf_counter())
            self._prepare([u for u in (st.host_by_name(r["ue"]) for r in changed) if u],
                          time.perf_counter())
            self._save()
        LOG.warning("re-steer of %s%s to %s rolled back", service, f"/{ue}" if ue else "", replica)
        self._confirmed(group)
        return True

    # ================================================================ drains
    def _cancel_drains(self, pred: Callable[[Drain], bool]) -> list[Drain]:
        """Forget the drains ``pred`` selects (lock held); their timers will not act."""
        gone = [k for k, d in self._drains.items() if pred(d)]
        out = []
        for k in gone:
            d = self._drains.pop(k)
            if d.timer is not None:
                d.timer.cancel()
            out.append(d)
        return out

    def _drain_cleanup_items(self, dp: Any, ue: Host, svc: Service, old: set[str],
                             keep: str | None) -> list[Any]:
        """Delete (ue, svc)'s SYN rule, learned pins and the return rewrites of ``old`` - keep."""
        st = self.state
        hid, sid = st.host_id(ue.name), st.service_id(svc.name)
        items = [self._delete_by_cookie(dp, cookies.encode(k, hid, sid),
                                        cookies.ANY_REPLICA_MASK, plan.T_FWD)
                 for k in (FlowKind.STEER_SYN, FlowKind.STEER_PIN)]
        names = {h.name for h in st.hosts}
        for name in sorted(old - {keep}):
            if name in names:
                oc = plan.steer_cookie(st, FlowKind.STEER_RET, ue, svc, st.host(name))
                items.append(self._delete_by_cookie(dp, oc, cookies.EXACT_MASK, plan.T_FWD))
        return items

    def _schedule_drain(self, d: Drain, delay: float) -> None:
        timer = threading.Timer(delay, self._end_drain, args=((d.service, d.ue), d.token))
        timer.daemon = True
        d.timer = timer
        timer.start()

    def _end_drain(self, key: tuple[str, str], token: int) -> None:
        """Timer: base rewrite to the current replica, then drop SYN rule, pins, old returns."""
        t0 = time.perf_counter()
        with self.lock:
            d = self._drains.get(key)
            if d is None or d.token != token:
                return  # superseded, cancelled or re-synced meanwhile
            del self._drains[key]
            st = self.state
            try:
                ue, svc = st.ue_host(d.ue), st.service(d.service)
            except RequestError:
                return
            dp = self.datapaths.get(d.dpid)
            if dp is None or ue.dpid != d.dpid:
                return  # the switch gets the final flows when it reconnects
            current = st.replica_for(svc.name, ue.name)
            pair = plan.steer_flows(st, ue, svc)
            items: list[Any] = [pair[0], ORDER] if pair else []
            items += self._drain_cleanup_items(dp, ue, svc, d.old, current)
            ev = self._event("drain_end", service=d.service, ue=d.ue, replica=current,
                             released=sorted(d.old - {current}), install_ms=None)

            def done(group: BarrierGroup) -> None:
                with self.lock:
                    ev["install_ms"] = group.elapsed_ms

            self._commit({d.dpid: items}, t0, done)
        LOG.info("drain end: %s/%s now all on %s", d.service, d.ue, current)

    def drains(self) -> list[dict[str, Any]]:
        """Drains under way: (service, UE), the old replicas, when they end."""
        with self.lock:
            return [{"service": d.service, "ue": d.ue, "switch": self.state.switch_name(d.dpid),
                     "old": sorted(d.old), "until": d.until} for d in self._drains.values()]

    def set_policy(self, service: str, sites: dict[str, str]) -> dict[str, Any]:
        with self.lock:
            self.state.service(service)
            resolved = {}
            for site, rep in sites.items():
                resolved[self.state.switch(site).dpid] = self.state.replica_host(rep).name
            self.state.policy[service] = resolved
            self._prepare(self.state.ues(), time.perf_counter())
            self._save()
            return {"service": service,
                    "sites": {self.state.switch_name(d): r for d, r in resolved.items()}}

    def switches(self) -> list[dict[str, Any]]:
        with self.lock:
            known = {s.dpid: s for s in self.state.topology.switches}
            out = []
            for dpid in sorted(set(known) | set(self.datapaths)):
                dp = self.datapaths.get(dpid)
                sw = known.get(dpid)
                out.append({"dpid": dpid, "dpid_str": f"{dpid:016x}",
                            "name": sw.name if sw else f"dpid:{dpid}",
                            "bridge": sw.bridge if sw else None,
                            "connected": dp is not None,
                            "address": list(dp.address)[:2] if dp is not None else None})
            return out

    def locations(self) -> list[dict[str, Any]]:
        with self.lock:
            last: dict[str, float] = {}
            for e in self.event_log:
                if e["type"] == "location":
                    last[e["host"]] = e["ts"]
            return [{"name": h.name, "kind": h.kind, "ip": h.ip, "mac": h.mac, "dpid": h.dpid,
                     "switch": self.state.switch_name(h.dpid), "port": h.port,
                     "since": last.get(h.name)} for h in self.state.hosts]

    def _ask_flow_stats(self, dp: Any, table: int | None = None, cookie: int = 0,
                        mask: int = 0) -> tuple[int, tuple[threading.Event, list[Any]]]:
        """Send a flow stats request (lock held): (xid, waiter the reply messages fill)."""
        ofp, parser = dp.ofproto, dp.ofproto_parser
        req = parser.OFPFlowStatsRequest(dp, 0, ofp.OFPTT_ALL if table is None else table,
                                         ofp.OFPP_ANY, ofp.OFPG_ANY, cookie, mask,
                                         parser.OFPMatch())
        dp.set_xid(req)
        waiter: tuple[threading.Event, list[Any]] = (threading.Event(), [])
        self._stats[(dp.id, req.xid)] = waiter
        dp.send_msg(req)
        return req.xid, waiter

    def _await_flow_stats(self, dpid: int, xid: int, waiter: tuple[threading.Event, list[Any]],
                          timeout: float) -> list[Any]:
        """The reply messages; a silent switch is a 504."""
        if not waiter[0].wait(max(timeout, 0.0)):
            with self.lock:
                self._stats.pop((dpid, xid), None)
            raise RequestError(f"switch {self.state.switch_name(dpid)} (dpid {dpid}) did not "
                               "answer the flow stats request", 504)
        return waiter[1]

    def flow_stats(self, dpid: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Flow table of a switch in the format of Ryu's ofctl_rest /stats/flow/<dpid>."""
        with self.lock:
            dp = self.datapaths.get(dpid)
            if dp is None:
                from controller.model import NotFound

                raise NotFound(f"switch dpid {dpid} is not connected")
            xid, waiter = self._ask_flow_stats(dp)
        ofctl = compat.ofctl_v1_3
        flows = []
        for msg in self._await_flow_stats(dpid, xid, waiter, timeout):
            for s in msg.body:
                flows.append({
                    "priority": s.priority, "cookie": s.cookie, "idle_timeout": s.idle_timeout,
                    "hard_timeout": s.hard_timeout, "byte_count": s.byte_count,
                    "duration_sec": s.duration_sec, "duration_nsec": s.duration_nsec,
                    "packet_count": s.packet_count, "length": s.length, "flags": s.flags,
                    "actions": _actions_str(ofctl, s.instructions),
                    "match": ofctl.match_to_str(s.match),
                    "table_id": s.table_id,
                })
        return flows

    def connections(self, service: str, ue: str | None = None,
                    timeout: float = 5.0) -> list[dict[str, Any]]:
        """The connection ledger of ``service`` (one UE or all) on every connected switch.

        One entry per ledger flow: which replica answered which UE port, when the
        switch learned it and where. Read with flow stats of the ledger table
        only; no flow changes, so steering is not disturbed. Oldest first.
        ``learned_at`` (wall clock) is the request's send time minus the flow's
        age: OVS ages every flow of one dump at once, when the request arrives, so
        this is early by the request's transit only (the reply's arrival would be
        late by the time spent parsing it: up to 0.27 s for 6000 entries).
        """
        with self.lock:
            st = self.state
            sid = st.service_id(st.service(service).name)
            hid = st.host_id(st.ue_host(ue).name) if ue is not None else 0
            mask = cookies.PROJECT_MASK | (0xFF << 40) | (cookies.MAX_ID << 16) \
                | ((cookies.MAX_ID << 28) if hid else 0)
            cookie = cookies.encode(FlowKind.LEDGER, hid, sid)
            names = {i: n for n, i in st.host_ids.items()}
            asked = {dpid: (time.time(), *self._ask_flow_stats(dp, plan.T_LEDGER, cookie, mask))
                     for dpid, dp in self.datapaths.items()}
        deadline = time.monotonic() + timeout
        out = []
        for dpid, (t_asked, xid, waiter) in asked.items():
            for msg in self._await_flow_stats(dpid, xid, waiter, deadline - time.monotonic()):
                for s in msg.body:
                    row = self._ledger_row(s, t_asked, names, service, dpid)
                    if row is not None:
                        out.append(row)
        out.sort(key=lambda r: (r["learned_at"], r["ue_port"]))
        return out

    @staticmethod
    def _ledger_row(s: Any, t_asked: float, names: dict[int, str], service: str,
                    dpid: int) -> dict[str, Any] | None:
        """One ledger flow stat as a connections entry (None: not a ledger entry)."""
        c = cookies.decode(s.cookie)
        proto = {plan.IPPROTO_TCP: "tcp", plan.IPPROTO_UDP: "udp"}.get(s.match.get("ip_proto"))
        if c is None or c.kind != FlowKind.LEDGER or proto is None:
            return None
        return {"ue": names.get(c.host), "replica": names.get(c.replica), "service": service,
                "protocol": proto, "ue_port": s.match.get(f"{proto}_src"),
                "learned_at": round(t_asked - s.duration_sec - s.duration_nsec / 1e9, 6),
                "switch": dpid}

    @set_ev_cls(ofp_event.EventOFPFlowStatsReply, MAIN_DISPATCHER)
    def _flow_stats_reply(self, ev: Any) -> None:
        msg = ev.msg
        key = (msg.datapath.id, msg.xid)
        with self.lock:
            waiter = self._stats.get(key)
            if waiter is None:
                return
            waiter[1].append(msg)
            if msg.flags & msg.datapath.ofproto.OFPMPF_REPLY_MORE:
                return
            del self._stats[key]
        waiter[0].set()

    def health(self) -> dict[str, Any]:
        with self.lock:
            return {"line": compat.LINE, "pid": os.getpid(), "ofp_port": self.config.ofp_port,
                    "switches_connected": sorted(self.datapaths),
                    "state_file": self.config.state_file}

    def close(self) -> None:
        if self.rest is not None:
            self.rest.stop()
