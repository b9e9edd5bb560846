"""Flow planning: which flows each switch should hold, as plain data.

Table layout (OpenFlow 1.3):

* table 0 (admission): ARP -> controller (the app answers all ARP, so nothing
  is ever flooded); a known host at its access-point port (in_port + eth_src)
  -> table 1; anything from an inter-switch link port -> table 1 (TCP and UDP
  by rules of their own that read the destination port: see PER_CONNECTION_IN);
  table-miss -> controller (an unknown source at a host port is how a moved UE
  shows up).
* table 1 (steering + forwarding): at a UE's access point, steering rewrites
  (VIP -> replica on the way out, replica -> VIP on the way back); on every
  switch, forwarding by eth_dst along shortest paths; table-miss drops.
  While a re-steer drains (see :func:`steer_syn_flows`), the AP also holds a
  SYN rule (new connections -> new replica) and the per-connection pins it
  learns; the base forward rewrite keeps serving established connections.
  Steering matches the service's protocol (TCP or UDP) and port; drains are
  TCP only: a UDP service has no connections to keep, a re-steer just switches.
* table 2 (connection ledger): nothing jumps here. Each return rewrite carries
  a ``learn`` action that records, when the switch translates the first packet
  of a connection or flow from a replica to the UE (TCP: the replica's SYN-ACK;
  UDP: the reply to each UE source port), an entry (UE ip, UE port, replica ip,
  protocol, service port) whose cookie names (UE, service, replica). Entries
  live ``LEDGER_HARD_S`` and are never deleted by re-steers, moves or
  re-syncs: the data plane's own record of which replica answered which port.
* table 3 (prepared attach): a UE's flows at each access point it may attach to but is
  not at (its *candidate* APs, ``Host.ports``), installed before it gets there, so
  that its first packets after the attach reach a replica at that AP without waiting
  for the Network Manager (see :func:`prepared_flows`). Table 0 sends the UE's packets
  from the candidate port here (the port is down until the attach: nothing else can
  match); a forward rewrite per service whose replica there is local; the rest goes to
  the controller (held and re-injected once the location's flows are in, as before).
  The way back is learned from the UE's own packet (:class:`ReturnSpec`): each
  connection (UDP: each UE source port) that opens there gets, in table 1, a rewrite
  of its replies to the VIP out of the port it came in by, and its ledger entry. A
  replica there that has not talked to the UE yet asks for its MAC first: table 0
  answers that ARP request itself (:func:`arp_reply_flow`), since the Network Manager
  is busy with the very move then (the answer through it took 10-16 ms). The Network
  Manager replaces all of it with the ordinary flows when the port status arrives.

A :class:`FlowSpec` is turned into an OFPFlowMod by the app; keeping it plain
makes the plan testable without a switch.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from controller import cookies
from controller.cookies import FlowKind
from controller.model import Host, Service
from controller.state import NetworkState

T_ADMIT = 0
T_FWD = 1
T_LEDGER = 2
T_PREP = 3
#: The tables the app installs and re-syncs (the ledger only ever grows by learning).
STEERING_TABLES = (T_ADMIT, T_FWD, T_PREP)

P_ARP = 200
#: an ARP request answered by the switch itself (above the rule sending ARP to the controller)
P_ARP_REPLY = 210
P_ADMIT = 100
P_LINK = 90
P_STEER = 300
P_STEER_PIN = 310
P_STEER_SYN = 320
P_FWD = 100
P_MISS = 0
P_LEDGER = 100
#: a return learned at a prepared attach (table 1), below the UE's steering at its AP
P_PREP_RET = 250

ETH_ARP = 0x0806
ETH_IP = 0x0800
IPPROTO_TCP = 6
IPPROTO_UDP = 17
ARP_REQUEST, ARP_REPLY = 1, 2
#: OpenFlow's "the port the packet came in by" (OFPP_IN_PORT)
IN_PORT = 0xFFFFFFF8
IP_PROTO = {"tcp": IPPROTO_TCP, "udp": IPPROTO_UDP}
TCP_SYN = 0x002
TCP_ACK = 0x010
#: A connection opening: SYN set, ACK clear (OpenFlow 1.3 ONF experimenter OXM tcp_flags).
SYN_ONLY = (TCP_SYN, TCP_SYN | TCP_ACK)
#: A replica accepting a connection: SYN and ACK set.
SYN_ACK = (TCP_SYN | TCP_ACK, TCP_SYN | TCP_ACK)
#: Safety net: a learned pin the controller never removed (it died) expires by itself.
PIN_IDLE_S = 10
#: Copy the UE's TCP source port into a scratch register (nothing reads it). OVS caches
#: a translated flow in its datapath with every field an action read: this makes each
#: connection's packets a datapath flow of their own, so a connection opened after a
#: re-steer misses the cache and is translated against the switch's current tables.
#: Without it one cached flow (TCP source port wildcarded) serves every connection
#: opening, and OVS rewrites it only when its revalidator runs, some time AFTER it
#: confirmed the re-steer's Barrier: a SYN in that window went to the previous replica.
PER_CONNECTION = ("move", "tcp_src", "reg1", 16)
#: The same for a UDP service: each UE source port (each request of a probe) is its own flow.
PER_FLOW_UDP = ("move", "udp_src", "reg1", 16)
#: Copy the destination port of every TCP and UDP packet a switch admits (table 0) into a
#: scratch register (nothing reads it): each connection is then a datapath flow of its own
#: in the direction towards its client (the UE's port) on every switch. Without it one
#: cached flow (port wildcarded) per switch carried everything towards a host, and after a
#: move OVS kept sending a new connection's replies along the UE's old path until its
#: revalidator ran, some ms AFTER it had confirmed the move's Barrier: the replica's
#: SYN-ACK went to the access point the UE had left and the connection waited 1 s.
PER_CONNECTION_IN = {IPPROTO_TCP: ("move", "tcp_dst", "reg2", 16),
                     IPPROTO_UDP: ("move", "udp_dst", "reg2", 16)}
#: How long a ledger entry lives (hard timeout, s; OVS may restart it when the entry is
#: learned again).
LEDGER_HARD_S = 600


@dataclass
class FlowSpec:
    """One flow: match fields are OFPMatch keyword arguments.

    ``actions``: ("output", port) | ("controller",) | ("set_field", name, value) |
    ("move", src field, dst field, n_bits) | ("pin", PinSpec) | ("ledger", LedgerSpec);
    ``goto``: next table id or None.
    """

    dpid: int
    table: int
    priority: int
    match: dict[str, Any]
    actions: list[tuple[Any, ...]] = field(default_factory=list)
    goto: int | None = None
    cookie: int = 0


@dataclass(frozen=True)
class PinSpec:
    """A learn action on a replica's SYN-ACK: pin that TCP connection to the replica.

    The learned flow (table ``table``, ``priority``, ``cookie``) matches the
    UE's packets of the connection (UE ip:port -> ``vip``:``svc_port``),
    rewrites them to the replica's MAC/IP and outputs on ``port`` (the app
    passes it through reg0).
    """

    table: int
    priority: int
    cookie: int
    vip: str
    svc_port: int
    replica_mac: str
    replica_ip: str
    port: int
    idle_timeout: int = PIN_IDLE_S


@dataclass(frozen=True)
class LedgerSpec:
    """A learn action on a replica's reply: record (UE, UE port, replica) in the ledger.

    The learned flow (table ``table``, ``priority``, ``cookie`` of kind LEDGER
    naming UE, service and replica, ``hard_timeout``) matches ip_proto
    ``protocol``, source ``ue_ip`` and the reply's destination port (the UE's
    port, taken from the packet), destination ``replica_ip``:``svc_port``. It
    has no actions and nothing jumps to its table: only its existence and age
    (flow stats ``duration``) are read. OVS keeps the first learning's age when
    the same entry is learned again.
    """

    table: int
    priority: int
    cookie: int
    protocol: str
    ue_ip: str
    replica_ip: str
    svc_port: int
    hard_timeout: int = LEDGER_HARD_S
    #: learned from the UE's request (its port is the source port), at a prepared attach,
    #: where the data plane itself sends the connection to the replica; else from a reply
    from_request: bool = False


@dataclass(frozen=True)
class ReturnSpec:
    """A learn action on a UE's packet at a candidate AP (table 3): the way back of its
    connection (TCP; UDP: of its source port).

    The learned flow (table ``table``, ``priority``, ``cookie``, ``idle_timeout``)
    matches the replica's replies to that UE port (``replica_ip``:``svc_port`` -> UE
    ip:port, ``protocol``), rewrites their source to ``vmac``/``vip`` and outputs them on
    the port the UE's packet came in by.
    """

    table: int
    priority: int
    cookie: int
    protocol: str
    replica_ip: str
    svc_port: int
    vip: str
    vmac: str
    idle_timeout: int = PIN_IDLE_S


def ledger_spec(st: NetworkState, ue: Host, svc: Service, replica: Host) -> LedgerSpec:
    """The ledger learn of (UE, service, replica) at the UE's AP."""
    return LedgerSpec(T_LEDGER, P_LEDGER, steer_cookie(st, FlowKind.LEDGER, ue, svc, replica),
                      svc.protocol, ue.ip, replica.ip, svc.port)


def base_flows(dpid: int) -> list[FlowSpec]:
    """Flows every switch gets, even one that is not in the topology."""
    c = cookies.encode(FlowKind.BASE)
    return [
        FlowSpec(dpid, T_ADMIT, P_ARP, {"eth_type": ETH_ARP}, [("controller",)], cookie=c),
        FlowSpec(dpid, T_ADMIT, P_MISS, {}, [("controller",)], cookie=c),
        FlowSpec(dpid, T_FWD, P_MISS, {}, [], cookie=c),
        FlowSpec(dpid, T_PREP, P_MISS, {}, [("controller",)], cookie=c),
    ]


def admitted(dpid: int, priority: int, match: dict[str, Any], cookie: int,
             goto: int = T_FWD) -> list[FlowSpec]:
    """Table 0's rules sending MATCH on to table GOTO: one per transport protocol reading
    its destination port (PER_CONNECTION_IN), just above one for everything else."""
    flows = [FlowSpec(dpid, T_ADMIT, priority + 1, {**match, "eth_type": ETH_IP, "ip_proto": proto},
                      [move], goto=goto, cookie=cookie)
             for proto, move in PER_CONNECTION_IN.items()]
    return flows + [FlowSpec(dpid, T_ADMIT, priority, match, goto=goto, cookie=cookie)]


def admit_flows(st: NetworkState, host: Host) -> list[FlowSpec]:
    """A known host at its access-point port (in_port + eth_src) goes on to table 1."""
    return admitted(host.dpid, P_ADMIT, {"in_port": host.port, "eth_src": host.mac},
                    cookies.encode(FlowKind.ADMIT, st.host_id(host.name)))


def fwd_flow(st: NetworkState, dpid: int, host: Host) -> FlowSpec | None:
    port = st.out_port(dpid, host)
    if port is None:
        return None
    return FlowSpec(dpid, T_FWD, P_FWD, {"eth_dst": host.mac}, [("output", port)],
                    cookie=cookies.encode(FlowKind.FWD, st.host_id(host.name)))


def steer_match_fwd(ue: Host, svc: Service) -> dict[str, Any]:
    return {"eth_type": ETH_IP, "ipv4_src": ue.ip, "ipv4_dst": svc.vip,
            "ip_proto": IP_PROTO[svc.protocol], f"{svc.protocol}_dst": svc.port}


def steer_match_ret(ue: Host, svc: Service, replica: Host) -> dict[str, Any]:
    return {"eth_type": ETH_IP, "ipv4_src": replica.ip, "ipv4_dst": ue.ip,
            "ip_proto": IP_PROTO[svc.protocol], f"{svc.protocol}_src": svc.port}


def per_connection(svc: Service) -> tuple[str, str, str, int]:
    """The forward rewrite's first action: read the UE's source port (see PER_CONNECTION)."""
    return PER_FLOW_UDP if svc.protocol == "udp" else PER_CONNECTION


def steer_cookie(st: NetworkState, kind: FlowKind, ue: Host, svc: Service, replica: Host) -> int:
    return cookies.encode(kind, st.host_id(ue.name), st.service_id(svc.name),
                          st.host_id(replica.name))


def steer_flows(st: NetworkState, ue: Host, svc: Service,
                replica_name: str | None = None) -> tuple[FlowSpec, FlowSpec] | None:
    """(forward rewrite, return rewrite) at the UE's access point, or None.

    ``replica_name`` defaults to the replica the state currently steers to. The
    return rewrite records each connection or flow it carries in the ledger.
    """
    rep_name = replica_name or st.replica_for(svc.name, ue.name)
    if rep_name is None:
        return None
    replica = st.host(rep_name)
    port = st.out_port(ue.dpid, replica)
    if port is None:
        return None
    fwd = FlowSpec(
        ue.dpid, T_FWD, P_STEER, steer_match_fwd(ue, svc),
        [per_connection(svc), ("set_field", "eth_dst", replica.mac),
         ("set_field", "ipv4_dst", replica.ip), ("output", port)],
        cookie=steer_cookie(st, FlowKind.STEER_FWD, ue, svc, replica))
    ret = FlowSpec(
        ue.dpid, T_FWD, P_STEER, steer_match_ret(ue, svc, replica),
        [("ledger", ledger_spec(st, ue, svc, replica)), ("set_field", "eth_src", svc.vmac),
         ("set_field", "ipv4_src", svc.vip), ("output", ue.port)],
        cookie=steer_cookie(st, FlowKind.STEER_RET, ue, svc, replica))
    return fwd, ret


def steer_syn_flows(st: NetworkState, ue: Host, svc: Service,
                    replica_name: str) -> tuple[FlowSpec, FlowSpec] | None:
    """The drain rules at the UE's AP: (SYN rule, SYN-ACK pin rule), or None (also for a
    UDP service: no connections, nothing to drain).

    The SYN rule is the forward steering match plus ``tcp_flags`` SYN without
    ACK, above the base forward rewrite: connection openings go to
    ``replica_name``. The replica's SYN-ACK (return match plus SYN+ACK) learns
    a pin (kind STEER_PIN) so the rest of that connection follows its SYN;
    learning from the new replica's answer (not from the UE's SYN) means a pin
    only ever names a connection that replica accepted, even when OVS
    re-translates old datapath flows; it records the connection in the ledger
    too (it shadows the return rewrite for SYN-ACKs). Established connections
    keep hitting the base rewrite (the old replica) until the drain ends.
    """
    if svc.protocol != "tcp":
        return None
    replica = st.host(replica_name)
    port = st.out_port(ue.dpid, replica)
    if port is None:
        return None
    syn = FlowSpec(
        ue.dpid, T_FWD, P_STEER_SYN, {**steer_match_fwd(ue, svc), "tcp_flags": SYN_ONLY},
        [PER_CONNECTION, ("set_field", "eth_dst", replica.mac),
         ("set_field", "ipv4_dst", replica.ip), ("output", port)],
        cookie=steer_cookie(st, FlowKind.STEER_SYN, ue, svc, replica))
    pin = PinSpec(T_FWD, P_STEER_PIN, steer_cookie(st, FlowKind.STEER_PIN, ue, svc, replica),
                  svc.vip, svc.port, replica.mac, replica.ip, port)
    synack = FlowSpec(
        ue.dpid, T_FWD, P_STEER_SYN,
        {**steer_match_ret(ue, svc, replica), "tcp_flags": SYN_ACK},
        [("pin", pin), ("ledger", ledger_spec(st, ue, svc, replica)),
         ("set_field", "eth_src", svc.vmac), ("set_field", "ipv4_src", svc.vip),
         ("output", ue.port)],
        cookie=steer_cookie(st, FlowKind.STEER_SYN, ue, svc, replica))
    return syn, synack


def host_flows_at_ap(st: NetworkState, host: Host) -> list[FlowSpec]:
    """Flows that exist at a host's access point because the host is there, the admission
    (table 0) last: a switch applies them in order, and a packet admitted before its
    steering exists would be dropped by table 1's miss rule instead of reaching the
    controller."""
    flows: list[FlowSpec] = []
    if host.kind == "ue":
        for svc in st.services.values():
            pair = steer_flows(st, host, svc)
            if pair:
                flows.extend(pair)
    return flows + admit_flows(st, host)


def prepared_replica(st: NetworkState, ue: Host, svc: Service, dpid: int) -> Host | None:
    """The replica UE would be steered to for SVC once attached at DPID, when it is local
    there (the only case prepared: a remote one's replies do not pass DPID); else None.
    It is the one a move there chooses: the service's policy at DPID, else the current."""
    name = st.policy.get(svc.name, {}).get(dpid) or st.replica_for(svc.name, ue.name)
    replica = st.host_by_name(name) if name else None
    return replica if replica is not None and replica.dpid == dpid else None


def candidate_ports(ue: Host) -> list[tuple[int, int]]:
    """(dpid, port) of each access point UE may attach to and is not at now."""
    return [(d, p) for d, p in ue.ports if (d, p) != (ue.dpid, ue.port)]


def arp_reply_flow(dpid: int, host: Host, cookie: int) -> FlowSpec:
    """Switch DPID answers an ARP request for HOST's address itself, out of the port it
    came in by: the request turned into the reply the Network Manager would send."""
    return FlowSpec(
        dpid, T_ADMIT, P_ARP_REPLY,
        {"eth_type": ETH_ARP, "arp_op": ARP_REQUEST, "arp_tpa": host.ip},
        [("move", "eth_src", "eth_dst", 48), ("set_field", "eth_src", host.mac),
         ("set_field", "arp_op", ARP_REPLY), ("move", "arp_sha", "arp_tha", 48),
         ("move", "arp_spa", "arp_tpa", 32), ("set_field", "arp_sha", host.mac),
         ("set_field", "arp_spa", host.ip), ("output", IN_PORT)],
        cookie=cookie)


def prepared_flows(st: NetworkState, ue: Host, only_dpid: int | None = None) -> list[FlowSpec]:
    """UE's prepared attach at its candidate APs (all, or ONLY_DPID's), the admission
    last: each service's forward rewrite to its replica there, which learns the way
    back and the ledger entry of each connection from the UE's packet."""
    flows: list[FlowSpec] = []
    if ue.kind != "ue":
        return flows
    hid = st.host_id(ue.name)
    for dpid, port in candidate_ports(ue):
        if only_dpid is not None and dpid != only_dpid:
            continue
        for svc in st.services.values():
            replica = prepared_replica(st, ue, svc, dpid)
            if replica is None:
                continue
            cookie = cookies.encode(FlowKind.PREP, hid, st.service_id(svc.name),
                                    st.host_id(replica.name))
            back = ReturnSpec(T_FWD, P_PREP_RET, cookie, svc.protocol, replica.ip, svc.port,
                              svc.vip, svc.vmac)
            ledger = replace(ledger_spec(st, ue, svc, replica), from_request=True)
            flows.append(FlowSpec(
                dpid, T_PREP, P_STEER, steer_match_fwd(ue, svc),
                [("return", back), ("ledger", ledger), per_connection(svc),
                 ("set_field", "eth_dst", replica.mac), ("set_field", "ipv4_dst", replica.ip),
                 ("output", replica.port)],
                cookie=cookie))
        flows.append(arp_reply_flow(dpid, ue, cookies.encode(FlowKind.PREP, hid)))
        flows.extend(admitted(dpid, P_ADMIT, {"in_port": port, "eth_src": ue.mac},
                              cookies.encode(FlowKind.PREP, hid), goto=T_PREP))
    return flows


def switch_flows(st: NetworkState, dpid: int) -> list[FlowSpec]:
    """Everything switch ``dpid`` should hold, from the state."""
    flows = base_flows(dpid)
    known = any(s.dpid == dpid for s in st.topology.switches)
    if not known:
        return flows
    c_link = cookies.encode(FlowKind.LINK)
    for lk in st.topology.links:
        for d, p in ((lk.a_dpid, lk.a_port), (lk.b_dpid, lk.b_port)):
            if d == dpid:
                flows.extend(admitted(dpid, P_LINK, {"in_port": p}, c_link))
    for h in st.hosts:
        f = fwd_flow(st, dpid, h)
        if f:
            flows.append(f)
        if h.dpid == dpid:
            flows.extend(host_flows_at_ap(st, h))
        flows.extend(prepared_flows(st, h, dpid))
    return flows
