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
