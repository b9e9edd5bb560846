"""Placement on servers: the `servers:` / `server:` keys and the automatic partition."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import yaml

from topologies.loader import TopologyError, from_dict, load
from topologies.placement import partition, placement_of

REPO = Path(__file__).resolve().parents[2]
A, B, C = "127.0.0.2", "127.0.0.3", "127.0.0.4"


def line3(**extra):
    sites = [{"name": f"s{i}", "cloudlets": [{"name": f"c{i}"}]} for i in (1, 2, 3)]
    for site, server in extra.pop("site_servers", {}).items():
        sites[int(site[1]) - 1]["server"] = server
    return {"name": "t", "sites": sites, "cloud": {"name": "cloud", "site": "s1"},
            "links": [{"a": "s1", "b": "s2"}, {"a": "s2", "b": "s3"}], **extra}


def test_topology_places_each_site_on_a_listed_server():
    topo = from_dict(line3(servers=[A, B], site_servers={"s1": A, "s2": A, "s3": B}))
    assert topo.servers == (A, B)
    assert [s.server for s in topo.sites] == [A, A, B]
    placement = placement_of(topo)
    assert placement.site_server == {"s1": A, "s2": A, "s3": B}
    assert placement.cut == (("s2", "s3"),)


def test_without_servers_everything_stays_on_this_machine():
    topo = load(REPO / "topologies" / "paper.yaml")
    assert topo.servers == () and placement_of(topo) is None


@pytest.mark.parametrize("data, message", [
    (line3(site_servers={"s1": A}), "sites name a server but the topology has no servers: list"),
    (line3(servers=[A, B], site_servers={"s1": A, "s2": C, "s3": B}),
     "sites[1].server: '127.0.0.4' is not one of servers: 127.0.0.2, 127.0.0.3"),
    (line3(servers=[A, B], site_servers={"s1": A, "s2": B}),
     "sites[2].server: missing: when one site names its server, all do"),
    (line3(servers=[A, A]), "servers: lists 127.0.0.2 more than once"),
    (line3(servers=[]), "servers: must be a non-empty list of server names"),
    (line3(servers=["a b"]), "servers[0]: must be a server's address or host name"),
    (line3(servers=[A], site_servers={"s1": 7}), "sites[0].server: must be a server's address"),
])
def test_bad_placements_are_rejected_by_name(data, message):
    with pytest.raises(TopologyError) as err:
        from_dict(data, "t.yaml")
    assert message in str(err.value)


def _min_balanced_cut(graph) -> int:
    nodes = sorted(graph.nodes)
    return min(sum((a in part) != (b in part) for a, b in graph.edges)
               for part in map(set, itertools.combinations(nodes, len(nodes) // 2)))


@pytest.mark.parametrize("name", ["paper.yaml", "ring6.yaml"])
def test_two_servers_cut_as_few_links_as_any_balanced_split(name):
    topo = load(REPO / "topologies" / name)
    placement = partition(topo, [A, B])
    sizes = sorted(len(placement.sites_on(s)) for s in (A, B))
    assert sizes == [len(topo.sites) // 2, len(topo.sites) - len(topo.sites) // 2]
    assert len(placement.cut) == _min_balanced_cut(topo.graph())
    assert all(placement.crosses(a, b) for a, b in placement.cut)


def test_every_server_gets_a_site_and_the_partition_is_repeatable():
    topo = load(REPO / "topologies" / "ring6.yaml")
    first = partition(topo, [A, B, C])
    assert {len(first.sites_on(s)) for s in (A, B, C)} == {2}
    assert partition(topo, [A, B, C]) == first


def test_servers_override_the_topologys_own_placement():
    topo = from_dict(line3(servers=[A, B], site_servers={"s1": A, "s2": B, "s3": A}))
    assert len(placement_of(topo).cut) == 2
    assert len(placement_of(topo, [A, B]).cut) == 1


def test_more_servers_than_sites_is_refused():
    with pytest.raises(ValueError, match="4 servers for 3 sites"):
        partition(load(REPO / "topologies" / "paper.yaml"), [A, B, C, "127.0.0.5"])


def _placed_paper(placement: dict[str, str]):
    data = yaml.safe_load((REPO / "topologies" / "paper.yaml").read_text())
    data["servers"] = sorted(set(placement.values()))
    for site in data["sites"]:
        site["server"] = placement[site["name"]]
    return from_dict(data, "placed.yaml")


def _split(topo, remote: set[str]):
    """The topology's own placement; REMOTE: the sites whose server is reached by SSH."""
    from topologies.cluster import Split, Server

    remote_servers = {s.server for s in topo.sites if s.name in remote}
    servers = {name: Server(name, name if name in remote_servers else None, f"10.254.0.{i + 1}")
               for i, name in enumerate(topo.servers)}
    return Split(servers, {s.name: s.server for s in topo.sites}, ("ssh",))


def test_a_split_network_needs_its_servers_access():
    """A topology that places its sites is not silently run on this machine alone."""
    from topologies.net import MecNetwork

    topo = _placed_paper({"s1": "localhost", "s2": "localhost", "s3": "127.0.0.3"})
    with pytest.raises(ValueError, match="needs its servers' access"):
        MecNetwork(topo)
    net = MecNetwork(topo, split=_split(topo, {"s3"}))  # accepted: nothing starts yet
    assert net.split.of_site("s3").remote and not net.split.of_site("s1").remote


def test_a_split_network_may_put_the_cloud_on_another_server_not_the_ue():
    from topologies.net import MecNetwork

    topo = _placed_paper({"s1": "localhost", "s2": "localhost", "s3": "127.0.0.3"})
    data = yaml.safe_load((REPO / "topologies" / "paper.yaml").read_text())
    data["servers"] = ["localhost", "127.0.0.3"]
    for site in data["sites"]:
        site["server"] = "127.0.0.3" if site["name"] == "s3" else "localhost"
    data["cloud"]["site"] = "s3"
    topo = from_dict(data, "placed.yaml")
    assert MecNetwork(topo, split=_split(topo, {"s3"})).split.of_site("s3").remote
    topo = _placed_paper({"s1": "127.0.0.3", "s2": "localhost", "s3": "localhost"})
    with pytest.raises(ValueError, match="UE u1 starts at site s1 on server 127.0.0.3"):
        MecNetwork(topo, split=_split(topo, {"s1"}))


def test_a_split_network_refuses_a_ue_starting_on_another_server():
    from topologies.net import MecNetwork

    data = yaml.safe_load((REPO / "topologies" / "paper.yaml").read_text())
    data["servers"] = ["localhost", "127.0.0.3"]
    for site in data["sites"]:
        site["server"] = "127.0.0.3" if site["name"] == "s3" else "localhost"
    data["ues"][0]["site"] = "s3"
    topo = from_dict(data, "placed.yaml")
    with pytest.raises(ValueError, match="UE u1 starts at site s3 on server 127.0.0.3"):
        MecNetwork(topo, split=_split(topo, {"s3"}))


def test_the_switches_reach_the_network_manager_where_their_servers_can():
    """Test servers share this kernel: loopback; real servers: this machine's address
    towards them; a split without this machine has nowhere to run the Network Manager."""
    from topologies.cluster import Server, Split

    here = Server("localhost", None, "192.0.2.1")
    test = Server("127.0.0.3", "127.0.0.3", "10.254.0.3", underlay="p-ul2")
    real = Server("edge-b", "edge-b", "192.0.2.7")
    sites = {"s1": "localhost", "s2": "127.0.0.3"}
    assert Split({"localhost": here, "127.0.0.3": test}, sites).controller_host() == "127.0.0.1"
    sites = {"s1": "localhost", "s2": "edge-b"}
    assert Split({"localhost": here, "edge-b": real}, sites).controller_host() == "192.0.2.1"
    with pytest.raises(ValueError, match="localhost"):
        Split({"edge-b": real}, {"s1": "edge-b"}).controller_host()
