"""The Network Manager: an OpenFlow 1.3 app (os-ken or ryu, via controller.compat).

It forwards along shortest paths of the pushed switch graph, answers all ARP
itself (so nothing is flooded and looped topologies are safe), steers each
UE's traffic for a service VIP to a replica with rewrites at the UE's access
point, tracks UE locations (an unknown source at a host port = location
event), re-steers make-before-break with Barrier timing, and re-installs its
state on every switch (re)connect. The REST API (controller.rest) calls the
public methods below from its own threads; all state changes hold ``lock``.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Any, Callable

from controller import compat
from controller import cookies, plan
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
from controller.plan import FlowSpec
from controller.state import NetworkState

LOG = logging.getLogger("controller.app")

#: Marker in a message list: "send a Barrier here" (ordering, not waited on).
ORDER = object()
BARRIER_TIMEOUT_S = 5.0
MAX_EVENTS = 20000
SAVE_DEBOUNCE_S = 0.05
#: The running app (for the runner's exit handler).
INSTANCE: "NetworkManager | None" = None


@dataclass
class AppConfig:
    """Set by controller.run before the framework instantiates the app."""

    rest_host: str = "127.0.0.1"
    rest_port: int = 8190
    ofp_port: int = 6653
    state_file: str | None = None
    topology_file: str | None = None


CONFIG = AppConfig()


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
        self.state = NetworkState()
        if self.config.state_file and os.path.exists(self.config.state_file):
            self.state = NetworkState.load(self.config.state_file)
            LOG.info("state loaded from %s", self.config.state_file)
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
        acts = []
        for a in spec.actions:
            if a[0] == "output":
                acts.append(parser.OFPActionOutput(a[1]))
            elif a[0] == "controller":
                acts.append(parser.OFPActionOutput(ofp.OFPP_CONTROLLER, ofp.OFPCML_NO_BUFFER))
            elif a[0] == "set_field":
                acts.append(parser.OFPActionSetField(**{a[1]: a[2]}))
            else:
                raise ValueError(f"unknown action {a!r}")
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
            group = self._commit({dp.id: self._sync_items(dp)}, t0)
        self._event("switch_connected", dpid=dp.id, switch=self.state.switch_name(dp.id),
                    flow_mods=group.flow_mods)
        LOG.info("switch %s (dpid %d) connected: %d flow mods", self.state.switch_name(dp.id),
                 dp.id, group.flow_mods)

    def _sync_items(self, dp: Any) -> list[Any]:
        """Delete the project's flows on ``dp`` and re-install them from the state."""
        items: list[Any] = [self._delete_by_cookie(dp, cookies.PROJECT_COOKIE,
                                                   cookies.PROJECT_MASK), ORDER]
        items.extend(plan.switch_flows(self.state, dp.id))
        return items

    @set_ev_cls(ofp_event.EventOFPStateChange, [MAIN_DISPATCHER, DEAD_DISPATCHER])
    def _state_change(self, ev: Any) -> None:
        dp = ev.datapath
        if ev.state != DEAD_DISPATCHER or dp.id is None:
            return
        with self.lock:
            if self.datapaths.get(dp.id) is dp:
                del self.datapaths[dp.id]
                for key in [k for k in self._barriers if k[0] == dp.id]:
                    group = self._barriers.pop(key)
                    group.pending.discard(key)
                    if not group.pending:
                        group.finish()
        self._event("switch_disconnected", dpid=dp.id, switch=self.state.switch_name(dp.id))

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
            # switch touched has confirmed them (Barrier)
            ofp, parser = dp.ofproto, dp.ofproto_parser
            dp.send_msg(parser.OFPPacketOut(
                datapath=dp, buffer_id=ofp.OFP_NO_BUFFER, in_port=in_port,
                actions=[parser.OFPActionOutput(ofp.OFPP_TABLE)], data=msg.data))

        with self.lock:
            if not self.state.is_link_port(dp.id, in_port):
                host = self.state.host_by_mac(eth.src)
                if host is not None and any(s.dpid == dp.id for s in self.state.topology.switches) \
                        and (host.dpid, host.port) != (dp.id, in_port):
                    self._move(host, dp.id, in_port, t_in, ts_in, None if is_arp else reinject)
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
    def _move(self, host: Host, dpid: int, port: int, t_in: float, ts_in: float,
              then: Callable[[], None] | None = None) -> None:
        """Handle a host seen at a new AP port (lock held): event, stale flows, re-install."""
        st = self.state
        old_dpid, old_port = host.dpid, host.port
        hid = st.host_id(host.name)
        old_out = {d: st.out_port(d, host) for d in self.datapaths}
        work: dict[int, list[Any]] = defaultdict(list)
        old_dp = self.datapaths.get(old_dpid)
        if old_dp is not None:
            for kind in (FlowKind.ADMIT, FlowKind.STEER_FWD, FlowKind.STEER_RET):
                c = cookies.encode(kind, hid)
                work[old_dpid].append(self._delete_by_cookie(old_dp, c, 0xFFFFFFFFF0000000))
        host.dpid, host.port = dpid, port
        resteered: dict[str, str] = {}
        if host.kind == "ue":
            for svc_name, sites in st.policy.items():
                rep = sites.get(dpid)
                if rep and svc_name in st.services and st.replica_for(svc_name, host.name) != rep:
                    st.overrides[(svc_name, host.name)] = rep
                    resteered[svc_name] = rep
        work[dpid].extend(plan.host_flows_at_ap(st, host))
        for d in self.datapaths:
            if st.out_port(d, host) != old_out.get(d):
                f = plan.fwd_flow(st, d, host)
                if f:
                    work[d].append(f)
        ev = self._event(
            "location", host=host.name, kind=host.kind,
            old={"dpid": old_dpid, "port": old_port, "switch": st.switch_name(old_dpid)},
            new={"dpid": dpid, "port": port, "switch": st.switch_name(dpid)},
            ts_packet_in=ts_in, resteered=resteered, install_ms=None, switches_touched=None)

        def done(group: BarrierGroup) -> None:
            with self.lock:
                ev["install_ms"] = group.elapsed_ms
                ev["switches_touched"] = len(group.touched)
                ev["ts_installed"] = ts_in + (group.t_last - t_in)
            if then is not None:
                then()

        self._commit(work, t_in, done)
        LOG.info("location: %s %s:%d -> %s:%d%s", host.name, st.switch_name(old_dpid), old_port,
                 st.switch_name(dpid), port, f" resteer {resteered}" if resteered else "")
        self._save()

    # ================================================================ public API (REST)
    def set_topology(self, topo: Topology) -> dict[str, Any]:
        t0 = time.perf_counter()
        with self.lock:
            self.state.set_topology(topo)
            work = {d: self._sync_items(dp) for d, dp in self.datapaths.items()}
            group = self._commit(work, t0)
            self._save()
        group.done.wait(BARRIER_TIMEOUT_S)
        self._event("topology", switches=len(topo.switches), links=len(topo.links),
                    hosts=len(topo.hosts), install_ms=group.elapsed_ms)
        return {"switches": len(topo.switches), "links": len(topo.links),
                "hosts": len(topo.hosts), "install_ms": group.elapsed_ms,
                "switches_touched": len(group.touched)}

    def _steer_delete_items(self, dp: Any, svc_name: str) -> list[Any]:
        sid = self.state.service_id(svc_name)
        mask = cookies.PROJECT_MASK | (0xFF << 40) | (cookies.MAX_ID << 16)
        return [self._delete_by_cookie(dp, cookies.encode(k, 0, sid), mask, plan.T_FWD)
                for k in (FlowKind.STEER_FWD, FlowKind.STEER_RET)]

    def add_service(self, svc: Service) -> dict[str, Any]:
        t0 = time.perf_counter()
        with self.lock:
            existed = svc.name in self.state.services
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
            self._save()
        group.done.wait(BARRIER_TIMEOUT_S)
        self._event("service", service=svc.name, vip=svc.vip, port=svc.port, primary=svc.primary)
        return self.service_json(svc)

    def remove_service(self, name: str) -> dict[str, Any]:
        t0 = time.perf_counter()
        with self.lock:
            self.state.service(name)
            work = {d: self._steer_delete_items(dp, name) for d, dp in self.datapaths.items()}
            svc = self.state.remove_service(name)
            group = self._commit(work, t0)
            self._save()
        group.done.wait(BARRIER_TIMEOUT_S)
        return {"removed": svc.name}

    def service_json(self, svc: Service) -> dict[str, Any]:
        d = asdict(svc)
        d["id"] = self.state.service_id(svc.name)
        d["policy"] = {self.state.switch_name(k): v
                       for k, v in self.state.policy.get(svc.name, {}).items()}
        return d

    def set_primary(self, service: str, replica: str, ue: str | None = None,
                    t0: float | None = None) -> dict[str, Any]:
        """Steer one UE (or the whole service) to ``replica``, make-before-break.

        Returns timing: ``reroute_ms`` = request (``t0``) to the last Barrier reply.
        """
        t0 = time.perf_counter() if t0 is None else t0
        with self.lock:
            st = self.state
            svc = st.service(service)
            rep = st.replica_host(replica)
            ues = [st.ue_host(ue)] if ue is not None else st.ues()
            before = {u.name: st.replica_for(service, u.name) for u in ues}
            for u in ues:
                if before[u.name] != rep.name and st.out_port(u.dpid, rep) is None:
                    raise RequestError(f"no path from {u.name}'s AP to replica {rep.name}", 409)
            if ue is not None:
                st.overrides[(service, ues[0].name)] = rep.name
            else:
                svc.primary = rep.name
                st.overrides = {k: v for k, v in st.overrides.items() if k[0] != service}
            work: dict[int, list[Any]] = defaultdict(list)
            changed = []
            for u in ues:
                old = before[u.name]
                if old == rep.name:
                    continue
                pair = plan.steer_flows(st, u, svc, rep.name)
                assert pair is not None
                new_fwd, new_ret = pair
                # make-before-break: new return rewrite, then the forward rewrite switch,
                # then remove the old return rewrite
                work[u.dpid].extend([new_ret, ORDER, new_fwd])
                if old is not None and old in {h.name for h in st.hosts}:
                    oc = plan.steer_cookie(st, FlowKind.STEER_RET, u, svc, st.host(old))
                    dp = self.datapaths.get(u.dpid)
                    if dp is not None:
                        work[u.dpid].append(
                            self._delete_by_cookie(dp, oc, cookies.EXACT_MASK, plan.T_FWD))
                changed.append({"ue": u.name, "from": old, "to": rep.name})
            group = self._commit(work, t0)
            self._save()
        if not group.done.wait(BARRIER_TIMEOUT_S):
            raise RequestError("switches did not answer the Barrier in time", 504)
        result = {
            "service": service, "replica": rep.name, "ue": ue, "changed": changed,
            "reroute_ms": group.elapsed_ms, "switches_touched": len(group.touched),
            "flow_mods": group.flow_mods,
        }
        self._event("reroute", **result)
        return result

    def set_policy(self, service: str, sites: dict[str, str]) -> dict[str, Any]:
        with self.lock:
            self.state.service(service)
            resolved = {}
            for site, rep in sites.items():
                resolved[self.state.switch(site).dpid] = self.state.replica_host(rep).name
            self.state.policy[service] = resolved
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

    def flow_stats(self, dpid: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Flow table of a switch in the format of Ryu's ofctl_rest /stats/flow/<dpid>."""
        with self.lock:
            dp = self.datapaths.get(dpid)
            if dp is None:
                from controller.model import NotFound

                raise NotFound(f"switch dpid {dpid} is not connected")
            ofp, parser = dp.ofproto, dp.ofproto_parser
            req = parser.OFPFlowStatsRequest(dp, 0, ofp.OFPTT_ALL, ofp.OFPP_ANY, ofp.OFPG_ANY,
                                             0, 0, parser.OFPMatch())
            dp.set_xid(req)
            waiter: tuple[threading.Event, list[Any]] = (threading.Event(), [])
            self._stats[(dpid, req.xid)] = waiter
            dp.send_msg(req)
        if not waiter[0].wait(timeout):
            with self.lock:
                self._stats.pop((dpid, req.xid), None)
            raise RequestError(f"switch dpid {dpid} did not answer the flow stats request", 504)
        ofctl = compat.ofctl_v1_3
        flows = []
        for msg in waiter[1]:
            for s in msg.body:
                flows.append({
                    "priority": s.priority, "cookie": s.cookie, "idle_timeout": s.idle_timeout,
                    "hard_timeout": s.hard_timeout, "byte_count": s.byte_count,
                    "duration_sec": s.duration_sec, "duration_nsec": s.duration_nsec,
                    "packet_count": s.packet_count, "length": s.length, "flags": s.flags,
                    "actions": ofctl.actions_to_str(s.instructions),
                    "match": ofctl.match_to_str(s.match),
                    "table_id": s.table_id,
                })
        return flows

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
