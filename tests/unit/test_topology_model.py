"""The topology model: link semantics, profiles, addresses, names, graph queries, lookups."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import networkx as nx
import pytest

from mec.core import config
from topologies.loader import from_dict, load
from topologies.model import (
    MAX_MACHINE_NAME, PROFILES, Cloud, Link, LinkParams, Site, Topology, UnknownName, mac_for, vip,
)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def ring6() -> Topology:
    return load(REPO / "topologies" / "ring6.yaml")


@pytest.fixture(scope="module")
def paper() -> Topology:
    return load(REPO / "topologies" / "paper.yaml")


def test_builtin_profiles_match_the_paper():
    assert (PROFILES["mec"].bw_mbps, PROFILES["mec"].delay_ms) == (25, 50)
    assert (PROFILES["dc"].bw_mbps, PROFILES["dc"].delay_ms) == (100, 0)
    assert (PROFILES["wan"].bw_mbps, PROFILES["wan"].delay_ms) == (100, 20)
    assert (PROFILES["lan"].bw_mbps, PROFILES["lan"].delay_ms) == (1000, 0)
    assert PROFILES["access"].bw_mbps is None and not PROFILES["access"].shaped


def test_delay_is_round_trip_split_over_both_directions():
    mec = PROFILES["mec"]
    assert mec.one_way_delay_ms == 25
    assert mec.describe() == "25 Mbit/s, 50 ms RTT"


@pytest.mark.parametrize("kwargs, message", [
    ({"bw_mbps": 0}, "bw_mbps: 0 is out of range (allowed: 0 < bw_mbps <= 10000 Mbit/s)"),
    ({"delay_ms": 10, "jitter_ms": 11}, "jitter_ms: 11 is larger than delay_ms 10 (jitter must be <= delay)"),
    ({"loss_pct": 101}, "loss_pct: 101 is out of range (allowed: 0 <= loss_pct <= 100 %)"),
    ({"queue_pkts": 2.5}, "queue_pkts: must be an integer or null (default); got number 2.5"),
])
def test_link_params_reject_bad_values(kwargs, message):
    with pytest.raises(ValueError) as info:
        LinkParams(**kwargs)
    assert str(info.value) == message


def test_link_params_are_frozen():
    with pytest.raises(Exception):
        PROFILES["mec"].delay_ms = 1  # type: ignore[misc]


def test_addresses_are_deterministic_and_in_blocks(ring6):
    assert [c.ip for c in ring6.cloudlets] == [f"10.0.1.{i}" for i in range(1, 7)]
    assert [u.ip for u in ring6.ues] == [f"10.0.2.{i}" for i in range(1, 11)]
    assert ring6.cloud.ip == "10.0.3.1"
    ips = [n.ip for n in ring6.hosts()]
    assert len(set(ips)) == len(ips)
    assert all(ipaddress.IPv4Address(ip) in ring6.subnet for ip in ips)
    assert load(REPO / "topologies" / "ring6.yaml") == ring6  # same file, same everything


def test_virtual_ips():
    assert vip(0) == "10.0.100.1" and vip(253) == "10.0.100.254"
    with pytest.raises(ValueError):
        vip(254)
    assert vip(2, "192.168.0.0/16") == "192.168.100.3"


def test_mac_is_derived_from_ip(paper):
    assert mac_for("10.0.1.2") == "02:00:0a:00:01:02"
    assert paper.mac("c2") == "02:00:0a:00:01:02"
    macs = {paper.mac(n.name) for n in paper.hosts()}
    assert len(macs) == 5


def test_dpids_are_index_based_16_hex_digits(ring6):
    assert ring6.dpid("s1") == "0000000000000001"
    assert ring6.dpid("s6") == "0000000000000006"
    assert ring6.site_of_dpid(6) == "s6" and ring6.site_of_dpid("0000000000000002") == "s2"
    with pytest.raises(UnknownName):
        ring6.site_of_dpid(7)


def test_machine_names_fit_interface_limit(ring6):
    names = [ring6.switch_name(s) for s in ring6.site_names] + [ring6.host_name(n.name) for n in ring6.hosts()]
    assert len(set(names)) == len(names)
    assert all(config.is_ours(n) and len(n + "-eth99") <= 15 for n in names)
    assert ring6.switch_name("s1") == config.PREFIX + "-s1"


def test_long_prefix_falls_back_to_index_names(monkeypatch):
    monkeypatch.setattr(config, "PREFIX", "abcde")
    topo = from_dict({"name": "t", "sites": [{"name": "site12"}, {"name": "s2"}], "links": [{"a": "site12", "b": "s2"}],
                      "ues": [{"name": "phone1", "site": "s2"}]})
    assert topo.switch_name("site12") == "abcde-0si"  # abcde-site12 would be 12 > 9 characters
    assert topo.switch_name("s2") == "abcde-s2"
    assert topo.host_name("phone1") == "abcde-2ph"
    assert all(len(n) <= MAX_MACHINE_NAME for n in (topo.switch_name("site12"), topo.host_name("phone1")))


REAL = {"name": "real names", "sites": [
    {"name": "New York", "cloudlets": [{"name": "Edge New York"}]},
    {"name": "New York 2"}, {"name": "São Paulo"}, {"name": "東京"}, {"name": "s1"}, {"name": "0"}],
    "ues": [{"name": "Ana's phone", "site": "São Paulo"}],
    "links": [{"a": "New York", "b": "New York 2"}, {"a": "New York 2", "b": "São Paulo"},
              {"a": "São Paulo", "b": "東京"}, {"a": "東京", "b": "s1"}, {"a": "s1", "b": "0"}]}


@pytest.mark.parametrize("prefix", ["mec", "mxl", "abcde"])
def test_real_names_get_short_unique_machine_names(monkeypatch, prefix):
    monkeypatch.setattr(config, "PREFIX", prefix)
    topo = from_dict(REAL)
    names = topo.machine_names()
    assert list(names) == topo.node_names()
    assert len(set(names.values())) == len(names)
    assert all(config.is_ours(n) and len(n + "-eth99") <= 15 for n in names.values())
    assert names["s1"] == f"{prefix}-s1"  # short names stay as they are
    rest = {k: config.split_name(v)[1] for k, v in names.items()}
    assert rest["New York"] == "0newyork"[: 9 - len(prefix) - 1]
    assert rest["São Paulo"].startswith("2s" if len(prefix) < 5 else "2")
    assert rest["東京"] == "3"  # no ASCII letters: the index alone
    assert rest["0"] == "5"  # a name that is a number never takes another node's index


def test_real_names_through_lookups_and_paths():
    topo = from_dict(REAL)
    assert topo.path("New York", "東京") == ["New York", "New York 2", "São Paulo", "東京"]
    assert topo.cloudlet("Edge New York").site == "New York"
    assert topo.ue("Ana's phone").site == "São Paulo"


def test_docker_safe_container_names():
    assert config.docker_safe("c1") == "c1"
    a, b = config.docker_safe("Edge New York"), config.docker_safe("Edge New-York")
    assert a.startswith("Edge_New_York-") and a != b
    assert config.docker_safe("東京").startswith("x-")


def test_graph_and_path_delays(ring6):
    g = ring6.graph()
    assert isinstance(g, nx.Graph) and g.number_of_nodes() == 6 and g.number_of_edges() == 8
    assert g.edges["s1", "s4"]["delay_ms"] == 80 and g.edges["s1", "s2"]["bw_mbps"] == 25
    # s3 -> s6: via s2 (dc 0) - s5 (dc chord 10) - s6 (dc 0) = 10 ms beats 50+ ms mec routes
    assert ring6.path("s3", "s6") == ["s3", "s2", "s5", "s6"]
    assert ring6.path_delay_ms("s3", "s6") == 10
    assert ring6.hops("s3", "s6") == 3
    # s1 -> s4: the 80 ms chord beats s1-s2-s3-s4 (50+0+50 = 100 ms)
    assert ring6.path_delay_ms("s1", "s4") == 80
    assert ring6.path_delay_ms("s2", "s2") == 0 and ring6.hops("s2", "s2") == 0
    assert ring6.delay_to_cloudlet_ms("s1", "c3") == 50


def test_path_delay_in_the_paper_line(paper):
    assert paper.path_delay_ms("s1", "s2") == 50
    assert paper.path_delay_ms("s1", "s3") == 100
    assert paper.hops("s3", "s1") == 2
    assert paper.neighbours("s2") == ["s1", "s3"]


def test_lookups(ring6):
    assert [c.name for c in ring6.cloudlets_at("s2")] == ["c2"]
    assert ring6.site_of_cloudlet("c5") == "s5"
    assert ring6.ue("u10").site == "s6"
    assert ring6.node("cloud") is ring6.cloud
    assert ring6.link_between("s4", "s1").profile == "mec"


@pytest.mark.parametrize("call, message", [
    (lambda t: t.site("s9"), "unknown site 's9' (known sites: s1, s2, s3)"),
    (lambda t: t.cloudlet("c9"), "unknown cloudlet 'c9' (known cloudlets: c1, c2, c3)"),
    (lambda t: t.ue("u2"), "unknown UE 'u2' (known UEs: u1)"),
    (lambda t: t.site_of_cloudlet("x"), "unknown cloudlet 'x' (known cloudlets: c1, c2, c3)"),
    (lambda t: t.path_delay_ms("s1", "s7"), "unknown site 's7' (known sites: s1, s2, s3)"),
    (lambda t: t.link_between("s1", "s3"), "no link between sites 's1' and 's3' (neighbours of s1: s2)"),
])
def test_lookup_errors_are_key_errors_with_clear_messages(paper, call, message):
    with pytest.raises(KeyError) as info:
        call(paper)
    assert str(info.value) == message


def test_topology_from_python():
    s1, s2 = Site("s1"), Site("s2")
    topo = Topology(name="py", source="<python>", subnet=ipaddress.IPv4Network("10.0.0.0/16"), sites=(s1, s2),
                    ues=(), cloud=Cloud("cloud", "s1", "10.0.3.1"), links=(Link("s1", "s2", PROFILES["dc"], "dc"),))
    assert topo.path_delay_ms("s1", "s2") == 0 and str(topo.vip_subnet) == "10.0.100.0/24"
    with pytest.raises(KeyError):
        Topology(name="py", source="<python>", subnet=topo.subnet, sites=(s1,), ues=(),
                 cloud=topo.cloud, links=(Link("s1", "s9", PROFILES["dc"]),))
