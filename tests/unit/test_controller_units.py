"""Unit tests (no root) for cookies, path computation, flow plan and request validation."""

from __future__ import annotations

import pytest

from controller import cookies

from controller import plan
from controller.cookies import FlowKind
from controller.model import (
    RequestError,
    parse_dpid,
    parse_policy,
    parse_primary,
    parse_service,
    parse_topology,
    vmac_for,
)
from controller.state import NetworkState


def ring(n: int = 6) -> dict:
    sw = [{"name": f"s{i}", "dpid": i} for i in range(1, n + 1)]
    links = [{"a_dpid": i, "a_port": 1, "b_dpid": i % n + 1, "b_port": 2} for i in range(1, n + 1)]
    hosts = [
        {"name": "ue1", "ip": "10.0.0.1", "mac": "02:00:00:00:00:01", "dpid": 1, "port": 3},
        {"name": "ra", "ip": "10.0.1.1", "mac": "02:00:00:00:01:01", "dpid": 4, "port": 3,
         "kind": "cloudlet"},
        {"name": "rb", "ip": "10.0.1.2", "mac": "02:00:00:00:01:02", "dpid": 2, "port": 3,
         "kind": "cloudlet"},
    ]
    return {"switches": sw, "links": links, "hosts": hosts}


def test_topology_takes_site_and_host_names_as_written():
    topo = parse_topology({"switches": [{"name": "São Paulo", "dpid": 1, "bridge": "mec-0sao"}],
                           "hosts": [{"name": "Ana's phone", "ip": "10.0.2.1",
                                      "mac": "02:00:0a:00:02:01", "dpid": 1, "port": 1}]})
    assert topo.switches[0].name == "São Paulo" and topo.hosts[0].name == "Ana's phone"


def state() -> NetworkState:
    st = NetworkState()
    st.set_topology(parse_topology(ring()))
    st.add_service(parse_service({"name": "web", "vip": "10.0.200.1", "port": 8080,
                                  "primary": "ra"}))
    return st


def test_cookie_roundtrip_and_mask():
    c = cookies.encode(FlowKind.STEER_RET, 7, 3, 4095)
    assert cookies.decode(c) == cookies.Cookie(FlowKind.STEER_RET, 7, 3, 4095)
    assert c & cookies.PROJECT_MASK == cookies.PROJECT_COOKIE
    assert cookies.decode(0x1234) is None
    with pytest.raises(ValueError):
        cookies.encode(FlowKind.FWD, 4096)


def test_shortest_paths_on_ring():
    st = state()
    assert st.path(1, 4) in ([1, 2, 3, 4], [1, 6, 5, 4])
    assert st.path(1, 2) == [1, 2]
    assert st.path(1, 6) == [1, 6]
    rb = st.host("rb")
    assert st.out_port(1, rb) == 1  # s1 port 1 goes to s2
    assert st.out_port(2, rb) == 3  # the host port itself
    assert st.out_port(3, rb) == 2


def test_plan_steering_rewrites_at_ue_ap():
    st = state()
    flows = plan.switch_flows(st, 1)
    steer = [f for f in flows if cookies.decode(f.cookie).kind == FlowKind.STEER_FWD]
    ret = [f for f in flows if cookies.decode(f.cookie).kind == FlowKind.STEER_RET]
    assert len(steer) == 1 and len(ret) == 1
    assert ("set_field", "ipv4_dst", "10.0.1.1") in steer[0].actions
    assert ret[0].match["ipv4_src"] == "10.0.1.1"
    assert ("set_field", "ipv4_src", "10.0.200.1") in ret[0].actions
    assert ("output", 3) in ret[0].actions
    # no steering on switches without UEs; no flooding action anywhere
    assert not [f for f in plan.switch_flows(st, 3)
                if cookies.decode(f.cookie).kind == FlowKind.STEER_FWD]
    for d in range(1, 7):
        for f in plan.switch_flows(st, d):
            assert ("output", 0xFFFFFFFB) not in f.actions  # OFPP_FLOOD


def test_ue_to_vip_rules_make_one_datapath_flow_per_connection():
    """The UE's rules towards the VIP (base rewrite and drain SYN rule) read the TCP
    source port, first, so OVS never serves two connections with one cached flow."""
    st = state()
    ue = st.host("ue1")
    svc = st.service("web")
    fwd, ret = plan.steer_flows(st, ue, svc)
    syn, synack = plan.steer_syn_flows(st, ue, svc, "rb")
    for f in (fwd, syn):
        assert f.actions[0] == plan.PER_CONNECTION == ("move", "tcp_src", "reg1", 16)
        assert f.match["ip_proto"] == plan.IPPROTO_TCP  # move's prerequisite
    assert plan.PER_CONNECTION not in ret.actions + synack.actions


def test_state_persistence_roundtrip(tmp_path):
    st = state()
    st.overrides[("web", "ue1")] = "rb"
    st.policy["web"] = {2: "rb"}
    st.save(tmp_path / "s.json")
    st2 = NetworkState.load(tmp_path / "s.json")
    assert st2.replica_for("web", "ue1") == "rb"
    assert st2.policy == {"web": {2: "rb"}}
    assert [f.cookie for f in plan.switch_flows(st2, 1)] == \
        [f.cookie for f in plan.switch_flows(st, 1)]


@pytest.mark.parametrize("doc", [
    "not an object",
    {"switches": [{"name": "s1"}]},
    {"switches": [{"name": "s1", "dpid": True}]},
    {"switches": [{"name": "s1", "dpid": 1}, {"name": "s1", "dpid": 2}]},
    {"switches": [{"name": "s1", "dpid": 1}], "links": [{"a_dpid": 1, "a_port": 1,
                                                        "b_dpid": 2, "b_port": 1}]},
    {"switches": [{"name": "s1", "dpid": 1}], "hosts": [
        {"name": "h", "ip": "1.2.3", "mac": "02:00:00:00:00:01", "dpid": 1, "port": 1}]},
    {"switches": [{"name": "s1", "dpid": 1}], "hosts": [
        {"name": "h", "ip": "1.2.3.4", "mac": "02:00:00:00:00:01", "dpid": 1, "port": 1,
         "kind": "phone"}]},
    {"bogus": []},
    {"switches": [{"name": " New York", "dpid": 1}]},
    {"switches": [{"name": "s1", "dpid": 1}], "hosts": [
        {"name": "a\tb", "ip": "1.2.3.4", "mac": "02:00:00:00:00:01", "dpid": 1, "port": 1}]},
])
def test_topology_validation_rejects(doc):
    with pytest.raises(RequestError) as e:
        parse_topology(doc)
    assert 400 <= e.value.status < 500 and e.value.message


def test_service_primary_policy_validation():
    assert parse_service({"name": "s", "vip": "10.0.0.9", "port": 80}).vmac == vmac_for("10.0.0.9")
    for bad in ({"name": "s", "vip": "10.0.0.9"}, {"name": "s b", "vip": "10.0.0.9", "port": 80},
                {"name": "s", "vip": "10.0.0.9", "port": 0}, [1]):
        with pytest.raises(RequestError):
            parse_service(bad)
    assert parse_primary({"replica": "ra"}) == ("ra", None, None)
    assert parse_primary({"replica": "ra", "ue": "u", "drain_s": 0}) == ("ra", "u", 0.0)
    for bad in (-1, "1", True, 601):
        with pytest.raises(RequestError):
            parse_primary({"replica": "ra", "drain_s": bad})
    with pytest.raises(RequestError):
        parse_primary({"replica": "ra", "extra": 1})
    with pytest.raises(RequestError):
        parse_policy({"sites": {"s1": 3}})
    assert parse_dpid("00000000000000a1") == 0xA1
    with pytest.raises(RequestError):
        parse_dpid(0)


def test_state_rejects_unknown_names_and_bad_roles():
    st = state()
    with pytest.raises(RequestError) as e:
        st.host("ghost")
    assert e.value.status == 404
    with pytest.raises(RequestError):
        st.replica_host("ue1")
    with pytest.raises(RequestError):  # VIP = a host address
        st.add_service(parse_service({"name": "x", "vip": "10.0.0.1", "port": 1}))


def test_flows_cli_decodes_cookies_and_skips_foreign_flows():
    from mec.cli.flows import decode_rows

    c = cookies.encode(FlowKind.STEER_FWD, 1, 2, 3)
    flows = [
        {"cookie": c, "table_id": 1, "priority": 300, "packet_count": 5, "byte_count": 370,
         "match": {"nw_dst": "10.0.200.1"}, "actions": ["OUTPUT:1"]},
        {"cookie": 0, "table_id": 0, "priority": 0, "packet_count": 0, "byte_count": 0,
         "match": {}, "actions": []},
    ]
    rows = decode_rows(flows, {1: "ue1", 3: "ra"}, {2: "web"})
    assert len(rows) == 1
    assert (rows[0]["kind"], rows[0]["host"], rows[0]["service"], rows[0]["replica"]) == \
        ("STEER_FWD", "ue1", "web", "ra")


# ---------------------------------------------------------------- REST server (real loopback socket)
class _App:
    """The two NetworkManager methods the REST tests below reach."""

    def health(self) -> dict:
        return {"line": "unit"}

    def set_topology(self, topo) -> dict:
        return {"switches": len(topo.switches)}


@pytest.fixture
def rest_server(request):
    from controller.rest import RestServer

    workers, backlog, read_timeout_s = getattr(request, "param", (2, 2, 5.0))
    srv = RestServer(_App(), port=0, workers=workers, backlog=backlog,
                     read_timeout_s=read_timeout_s)
    srv.start()
    yield srv
    srv.stop()


def _exchange(port: int, data: bytes, timeout: float = 3.0) -> tuple[bytes, float]:
    """Send ``data`` on a new connection; return what came back until close, and the time."""
    import socket
    import time

    t0 = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    return out, time.perf_counter() - t0


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer else 0


@pytest.mark.parametrize("length,status", [
    ("-1", 400), ("abc", 400), ("1e3", 400), (" ", 400), ("99999999999999999999", 413),
    (str(4 * 1024 * 1024 + 1), 413),
])
def test_rest_answers_bad_content_length_at_once(rest_server, length, status):
    head = f"PUT /mec/topology HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n"
    answer, took = _exchange(rest_server.port, head.encode() + b"{}")
    assert _status(answer) == status, answer
    assert b'"error"' in answer and took < 1.0  # far below the 5 s read timeout


def test_rest_rejects_conflicting_lengths_and_chunked_bodies(rest_server):
    two = (b"PUT /mec/topology HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 5\r\n\r\n{}")
    assert _status(_exchange(rest_server.port, two)[0]) == 400
    chunked = (b"PUT /mec/topology HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n")
    assert _status(_exchange(rest_server.port, chunked)[0]) == 411
    ok = b'PUT /mec/topology HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}'
    answer, _ = _exchange(rest_server.port, ok)
    assert _status(answer) == 200 and b"Connection: close" in answer


@pytest.mark.parametrize("rest_server", [(2, 8, 0.5)], indirect=True)
def test_rest_drops_stalled_clients_after_the_read_timeout(rest_server):
    import socket
    import time

    port = rest_server.port
    stalled = []
    for partial in (b"GET /health HTTP/1.1\r\nHo",  # headers never finished
                    b"PUT /mec/topology HTTP/1.1\r\nContent-Length: 10\r\n\r\n{"):  # body short
        s = socket.create_connection(("127.0.0.1", port), timeout=3)
        s.sendall(partial)
        stalled.append(s)
    # both workers are held; a good request waits in the queue until the timeout frees one
    answer, took = _exchange(port, b"GET /health HTTP/1.1\r\n\r\n")
    assert _status(answer) == 200 and took < 2.0
    t0 = time.perf_counter()
    headers_cut = stalled[0].recv(65536)
    body_cut = stalled[1].recv(65536)
    assert headers_cut == b""  # dropped without an answer: no request line was complete
    assert _status(body_cut) == 408
    assert time.perf_counter() - t0 < 1.0
    for s in stalled:
        s.close()


@pytest.mark.parametrize("rest_server", [(2, 2, 5.0)], indirect=True)
def test_rest_pool_is_bounded_and_refuses_the_excess(rest_server):
    import socket
    import threading
    import time

    threads = threading.active_count()
    conns = []
    for _ in range(10):
        s = socket.create_connection(("127.0.0.1", rest_server.port), timeout=3)
        s.sendall(b"GET /health HTTP/1.1\r\n")  # and then silence
        conns.append(s)
    deadline = time.monotonic() + 3
    while rest_server.httpd.refused < 6 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert threading.active_count() <= threads  # no thread per connection
    refused = 0
    for s in conns:
        s.settimeout(0.05)
        try:
            refused += _status(s.recv(65536)) == 503
        except TimeoutError:  # held by a worker or queued
            pass
        except ConnectionResetError:  # refused before its request bytes had arrived
            refused += 1
    # 2 held by the workers, 2 queued, 503 for the rest (up to 2 more when the accept
    # loop outran the workers' first pick)
    assert 6 <= refused <= 8 and rest_server.httpd.refused == refused
    for s in conns:
        s.close()  # the workers see the end of their connections and drain the queue
    deadline = time.monotonic() + 2
    while _status(_exchange(rest_server.port, b"GET /health HTTP/1.1\r\n\r\n")[0]) != 200:
        assert time.monotonic() < deadline, "the pool never recovered"
        time.sleep(0.05)


def test_every_admission_makes_connections_towards_a_host_datapath_flows_of_their_own():
    """Table 0 admits TCP and UDP (from a host at its port and from a link port) by rules
    that read the destination port, above the rule for the rest: after a move, a new
    connection's replies never ride a cached flow of the UE's old path."""
    st = state()
    ue = st.host("ue1")
    for d in range(1, 7):
        admits = [f for f in plan.switch_flows(st, d) if f.table == plan.T_ADMIT and f.goto]
        by_match = {tuple(sorted((k, v) for k, v in f.match.items()
                                 if k not in ("eth_type", "ip_proto"))) for f in admits}
        for m in by_match:
            rules = sorted((f for f in admits if tuple(sorted(
                (k, v) for k, v in f.match.items() if k not in ("eth_type", "ip_proto"))) == m),
                key=lambda f: -f.priority)
            assert [(f.match.get("ip_proto"), f.actions) for f in rules] == [
                (plan.IPPROTO_TCP, [("move", "tcp_dst", "reg2", 16)]),
                (plan.IPPROTO_UDP, [("move", "udp_dst", "reg2", 16)]),
                (None, [])], rules
            assert rules[0].priority == rules[1].priority == rules[2].priority + 1
    # at the UE's AP its admission comes last: a switch applies flows in order, and a
    # packet admitted before its steering would be dropped by table 1's miss rule
    at_ap = plan.host_flows_at_ap(st, ue)
    kinds = [cookies.decode(f.cookie).kind for f in at_ap]
    assert kinds[-3:] == [FlowKind.ADMIT] * 3 and FlowKind.ADMIT not in kinds[:-3]


def wired_state() -> NetworkState:
    """ring(6) with ue1 at s1 wired also to s2 and s4 (replica rb is at s2, ra at s4)."""
    topo = ring()
    topo["hosts"][0]["ports"] = [{"dpid": d, "port": p} for d, p in ((1, 3), (2, 4), (4, 4))]
    st = NetworkState()
    st.set_topology(parse_topology(topo))
    st.add_service(parse_service({"name": "web", "vip": "10.0.200.1", "port": 8080,
                                  "primary": "ra"}))
    return st


def test_an_attach_is_prepared_at_each_candidate_ap_with_its_local_replica():
    """ue1 at s1 may attach at s2 (policy: rb, local) and s4 (primary ra, local): both get
    the admission from the candidate port to table 3 and there the forward rewrite, which
    learns each connection's way back (out of that port) and its ledger entry."""
    st = wired_state()
    st.policy["web"] = {2: "rb"}
    ue, svc = st.host("ue1"), st.services["web"]
    flows = plan.prepared_flows(st, ue)
    assert {f.dpid for f in flows} == {2, 4}  # not where it is
    at2 = [f for f in flows if f.dpid == 2]
    fwd = next(f for f in at2 if f.table == plan.T_PREP)
    assert fwd.match == plan.steer_match_fwd(ue, svc)
    assert ("set_field", "ipv4_dst", "10.0.1.2") in fwd.actions and fwd.actions[-1] == ("output", 3)
    (k1, back), (k2, ledger) = fwd.actions[:2]
    assert (k1, k2) == ("return", "ledger")
    assert (back.table, back.replica_ip, back.vip, back.svc_port) == (
        plan.T_FWD, "10.0.1.2", svc.vip, 8080)
    assert back.priority < plan.P_STEER  # the UE's steering at its AP comes first
    assert ledger.from_request and ledger.cookie == plan.ledger_spec(
        st, ue, svc, st.host("rb")).cookie
    admits = [f for f in at2 if f.table == plan.T_ADMIT and f.goto is not None]
    assert at2[-3:] == admits  # the admission last
    arp = next(f for f in at2 if f.match.get("eth_type") == plan.ETH_ARP)
    assert arp.match["arp_tpa"] == ue.ip and arp.priority > plan.P_ARP  # rb asks: the switch answers
    assert ("set_field", "arp_sha", ue.mac) in arp.actions and arp.actions[-1] == ("output", plan.IN_PORT)
    assert {f.goto for f in admits} == {plan.T_PREP}
    assert all(f.match["in_port"] == 4 and f.match["eth_src"] == ue.mac for f in admits)
    assert all(cookies.decode(f.cookie).kind == FlowKind.PREP for f in flows)


def test_no_prepared_steering_towards_a_remote_replica_and_none_for_a_ue_without_ports():
    st = wired_state()  # at s2 the replica would be ra (at s4): its replies never pass s2
    ue = st.host("ue1")
    assert {f.table for f in plan.prepared_flows(st, ue, only_dpid=2)} == {plan.T_ADMIT}
    assert plan.prepared_flows(state(), state().host("ue1")) == []


def test_a_switch_holds_the_prepared_attaches_of_the_ues_that_may_come():
    st = wired_state()
    prepared = [f for f in plan.switch_flows(st, 4) if cookies.decode(f.cookie).kind == FlowKind.PREP]
    assert prepared and all(f.table in plan.STEERING_TABLES for f in prepared)
    assert not [f for f in plan.switch_flows(st, 1) if cookies.decode(f.cookie).kind == FlowKind.PREP]
    # once the UE is at s4 the prepared flows move to its new candidates
    ue = st.host("ue1")
    ue.dpid, ue.port = 4, 4
    assert not [f for f in plan.switch_flows(st, 4) if cookies.decode(f.cookie).kind == FlowKind.PREP]
    assert {f.dpid for f in plan.prepared_flows(st, ue)} == {1, 2}
