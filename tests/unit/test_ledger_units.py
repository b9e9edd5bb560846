"""Unit tests (no root): TCP and UDP steering flows, the connection ledger's flows and
cookies, and the attribution of probe requests to replicas from ledger entries."""

from __future__ import annotations

import pytest

from controller import cookies, plan
from controller.client import NetworkManagerClient
from controller.cookies import FlowKind
from controller.ledger import attribute
from controller.model import RequestError, parse_service, parse_topology
from controller.state import NetworkState

#: (name, ip, switch, kind): a UE at s1, replicas at s2 and s3 of a 3-switch line.
HOSTS = [{"name": n, "ip": ip, "mac": f"02:00:00:00:00:{i:02x}", "dpid": d, "port": 3, "kind": k}
         for i, (n, ip, d, k) in enumerate([("ue1", "10.0.0.1", 1, "ue"),
                                            ("ra", "10.0.1.1", 2, "cloudlet"),
                                            ("rb", "10.0.1.2", 3, "cloudlet")], 1)]


def state(protocol: str | None) -> NetworkState:
    st = NetworkState()
    st.set_topology(parse_topology({
        "switches": [{"name": f"s{i}", "dpid": i} for i in (1, 2, 3)],
        "links": [{"a_dpid": 1, "a_port": 1, "b_dpid": 2, "b_port": 1},
                  {"a_dpid": 2, "a_port": 2, "b_dpid": 3, "b_port": 1}],
        "hosts": HOSTS}))
    doc = {"name": "svc", "vip": "10.0.200.1", "port": 7000, "primary": "ra"}
    if protocol is not None:
        doc["protocol"] = protocol
    st.add_service(parse_service(doc))
    return st


def test_service_protocol_defaults_to_tcp_and_is_validated():
    assert parse_service({"name": "s", "vip": "10.0.9.9", "port": 1}).protocol == "tcp"
    assert parse_service({"name": "s", "vip": "10.0.9.9", "port": 1,
                          "protocol": "udp"}).protocol == "udp"
    for bad in ("UDP", "sctp", 17, None):
        with pytest.raises(RequestError, match="protocol"):
            parse_service({"name": "s", "vip": "10.0.9.9", "port": 1, "protocol": bad})


@pytest.mark.parametrize("protocol,proto_num", [(None, 6), ("tcp", 6), ("udp", 17)])
def test_steering_matches_the_service_protocol(protocol, proto_num):
    st = state(protocol)
    name = protocol or "tcp"
    fwd, ret = plan.steer_flows(st, st.host("ue1"), st.service("svc"))
    assert fwd.match["ip_proto"] == ret.match["ip_proto"] == proto_num
    assert fwd.match[f"{name}_dst"] == 7000 and ret.match[f"{name}_src"] == 7000
    other = "udp" if name == "tcp" else "tcp"
    assert not any(k.startswith(other) for k in list(fwd.match) + list(ret.match))
    # each UE source port is its own cached datapath flow, for the right protocol
    assert fwd.actions[0] == ("move", f"{name}_src", "reg1", 16)


def test_return_rewrite_records_in_the_ledger_first():
    for protocol in ("tcp", "udp"):
        st = state(protocol)
        ue, svc, ra = st.host("ue1"), st.service("svc"), st.host("ra")
        _, ret = plan.steer_flows(st, ue, svc)
        kind, led = ret.actions[0]
        assert kind == "ledger"
        assert (led.table, led.protocol, led.ue_ip, led.replica_ip, led.svc_port) == \
            (plan.T_LEDGER, protocol, ue.ip, ra.ip, 7000)
        assert led.hard_timeout >= 600
        c = cookies.decode(led.cookie)
        assert c == cookies.Cookie(FlowKind.LEDGER, st.host_id("ue1"), st.service_id("svc"),
                                   st.host_id("ra"))
        assert ret.actions[-1] == ("output", ue.port)


def test_ledger_table_is_apart_from_steering_and_never_installed_directly():
    st = state("tcp")
    assert plan.T_LEDGER not in plan.STEERING_TABLES
    for d in (1, 2, 3):
        flows = plan.switch_flows(st, d)
        assert all(f.table in plan.STEERING_TABLES for f in flows)
        assert all(cookies.decode(f.cookie).kind != FlowKind.LEDGER for f in flows)
        for f in flows:  # nothing jumps to the ledger
            assert f.goto != plan.T_LEDGER


def test_ledger_cookie_survives_the_deletes_of_resteers_and_moves():
    """Re-steers delete by exact STEER_RET cookie, moves by kind with the UE's id,
    drains by kind with any replica: none of those masks selects a LEDGER cookie."""
    st = state("tcp")
    hid, sid, rid = st.host_id("ue1"), st.service_id("svc"), st.host_id("ra")
    led = cookies.encode(FlowKind.LEDGER, hid, sid, rid)
    deletes = [(cookies.encode(k, hid, sid, rid), cookies.EXACT_MASK) for k in FlowKind
               if k != FlowKind.LEDGER]
    deletes += [(cookies.encode(k, hid), 0xFFFFFFFFF0000000) for k in FlowKind
                if k != FlowKind.LEDGER]
    deletes += [(cookies.encode(k, hid, sid), cookies.ANY_REPLICA_MASK) for k in FlowKind
                if k != FlowKind.LEDGER]
    for cookie, mask in deletes:
        assert led & mask != cookie & mask


def test_drain_rules_are_tcp_only_and_record_the_new_replica():
    st = state("udp")
    assert plan.steer_syn_flows(st, st.host("ue1"), st.service("svc"), "rb") is None
    st = state("tcp")
    syn, synack = plan.steer_syn_flows(st, st.host("ue1"), st.service("svc"), "rb")
    leds = [a[1] for a in synack.actions if a[0] == "ledger"]
    assert len(leds) == 1 and leds[0].replica_ip == st.host("rb").ip
    assert cookies.decode(leds[0].cookie).replica == st.host_id("rb")


def test_client_add_service_keeps_the_orchestrator_call_and_sends_protocol():
    sent = []

    class Recorder(NetworkManagerClient):
        def _call(self, method, path, body=None, **params):
            sent.append((method, path, body, params))
            return body

    c = Recorder("http://127.0.0.1:1")
    c.add_service("svc", "10.0.200.1", 7000)  # as mec/orchestrator calls it
    c.add_service("svc", "10.0.200.1", 7000, protocol="udp")
    c.connections("svc", ue="ue1")
    c.connections("svc")
    assert sent[0][2]["protocol"] == "tcp" and sent[1][2]["protocol"] == "udp"
    assert sent[2][:2] == ("GET", "/mec/services/svc/connections")
    assert sent[2][3] == {"ue": "ue1"} and sent[3][3] == {}


def _e(port, t, replica, ue="ue1"):
    return {"ue": ue, "replica": replica, "protocol": "tcp", "ue_port": port,
            "learned_at": t, "switch": 1}


def test_attribute_names_the_entry_learned_during_the_request():
    entries = [_e(40000, 100.010, "ra"), _e(40002, 105.012, "rb"), _e(40004, 0.0, "ra", "ue2")]
    reqs = [(40000, 100.0, 100.02), (40002, 105.0, 105.02), (40004, 110.0, 110.02),
            (40006, 111.0, None)]
    assert attribute(entries, reqs, ue="ue1") == ["ra", "rb", None, None]


def test_attribute_handles_port_reuse():
    # port 5000: ra at t=10, then rb at t=50 (a reuse after a re-steer), then used again
    entries = [_e(5000, 10.003, "ra"), _e(5000, 50.004, "rb"), _e(6000, 10.5, "ra")]
    reqs = [(5000, 10.0, 10.01),    # opened ra's entry
            (5000, 30.0, 30.01),    # reused while only ra had answered that port
            (5000, 50.0, 50.01),    # opened rb's entry
            (5000, 70.0, 70.01),    # ra or rb again? OVS keeps first-learn times: unknown
            (5000, 5.0, 5.01),      # before any entry: unknown
            (6000, 90.0, 90.02)]    # same replica reused: ra
    assert attribute(entries, reqs) == ["ra", "ra", "rb", None, None, "ra"]


def test_attribute_tolerates_ledger_time_just_after_the_reply():
    entries = [_e(7000, 20.08, "rb")]
    assert attribute(entries, [(7000, 19.9, 20.0)]) == ["rb"]
    assert attribute(entries, [(7000, 19.9, 20.0)], slack_s=0.05) == [None]
    assert attribute([_e(7000, 20.05, "rb")], [(7000, 19.9, 20.0)]) == ["rb"]


def test_attribute_tells_apart_a_port_reused_within_the_slack():
    """Measured on real OVS: a port answered by rb, then by ra 60 ms later."""
    entries = [_e(41004, 1000.6837, "rb"), _e(41004, 1000.7437, "ra")]
    reqs = [(41004, 1000.6669, 1000.6841), (41004, 1000.7296, 1000.7419)]
    assert attribute(entries, reqs) == ["rb", "ra"]


def test_mec_flows_names_the_ledger_kind():
    from mec.cli.flows import decode_rows

    c = cookies.encode(FlowKind.LEDGER, 1, 2, 3)
    flow = {"cookie": c, "table_id": plan.T_LEDGER, "priority": plan.P_LEDGER,
            "packet_count": 0, "byte_count": 0, "actions": [],
            "match": {"ip_proto": 6, "tcp_src": 41000}}
    row, = decode_rows([flow], {1: "ue1", 3: "ra"}, {2: "svc"})
    assert (row["kind"], row["host"], row["service"], row["replica"]) == \
        ("LEDGER", "ue1", "svc", "ra")
