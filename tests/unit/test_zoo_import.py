"""`mec net import`: Topology Zoo GraphML and topohub networks become checked topology files."""

from __future__ import annotations

import argparse
from pathlib import Path

import networkx as nx
import pytest

from mec.cli import net as cli
from topologies.loader import load
from topologies.zoo import fibre_rtt_ms, great_circle_m

# Real coordinates (Topology Zoo style), distances from the haversine formula.
CITIES = {"0": ("Milano", 9.19, 45.46), "1": ("Zürich", 8.54, 47.37), "2": ("München", 11.58, 48.14),
          "3": ("Wien", 16.37, 48.21)}


def zoo_graphml(path: Path, nodes=CITIES, edges=(("0", "1"), ("1", "2"), ("2", "3"), ("0", "2")),
                speeds=None) -> Path:
    """A GraphML file as the Internet Topology Zoo writes them (label, Latitude, Longitude)."""
    g = nx.MultiGraph(label="Tiny Alps")
    for node, (label, lon, lat) in nodes.items():
        attrs = {"label": label}
        if lon is not None:
            attrs.update(Longitude=lon, Latitude=lat)
        g.add_node(node, **attrs)
    for i, (a, b) in enumerate(edges):
        g.add_edge(a, b, **({"LinkSpeedRaw": speeds[i]} if speeds else {}))
    nx.write_graphml(g, path)
    return path


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="mec")
    cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_great_circle_and_fibre_round_trip():
    # Milano - Wien: about 625 km along the great circle
    d = great_circle_m((9.19, 45.46), (16.37, 48.21))
    assert 620e3 < d < 630e3
    assert fibre_rtt_ms(d) == pytest.approx(2 * d / 2e8 * 1000)


def test_graphml_import_keeps_real_names_and_fibre_delays(tmp_path, capsys):
    src = zoo_graphml(tmp_path / "alps.graphml", edges=(("0", "1"), ("1", "2"), ("2", "3"), ("0", "2"), ("0", "1")))
    out = tmp_path / "alps.yaml"
    assert run(["net", "import", str(src), "-o", str(out), "--per-hop-ms", "0.5", "--bw", "100"]) == 0
    topo = load(out)
    assert topo.site_names == ["Milano", "Zürich", "München", "Wien"]
    assert len(topo.links) == 4  # the parallel Milano - Zürich edge merged
    link = topo.link_between("München", "Wien")
    expect = 2 * great_circle_m((11.58, 48.14), (16.37, 48.21)) / 2e8 * 1000 + 0.5
    assert link.params.delay_ms == pytest.approx(expect, abs=1e-3)
    assert link.params.bw_mbps == 100
    assert len(topo.cloudlets) == 4 and topo.cloud.site == "München"  # most central (degree 3)
    assert [u.site for u in topo.ues] == ["München"]
    assert topo.site("Wien").lonlat == (16.37, 48.21)
    assert "4 sites, 4 cloudlets, 1 UE, 4 links" in capsys.readouterr().out


def test_import_options_cloudlets_cloud_ues_and_bandwidth_from_graph(tmp_path):
    src = zoo_graphml(tmp_path / "a.graphml", speeds=[1e9, 1e10, 2.5e9, 1e8])
    out = tmp_path / "a.yaml"
    assert run(["net", "import", str(src), "-o", str(out), "--cloudlets", "2", "--cloud-site", "Wien",
                "--ue-at", "Milano", "--ue-at", "Wien", "--bw-from-graph"]) == 0
    topo = load(out)
    assert sorted(c.site for c in topo.cloudlets) == ["München", "Zürich"]  # least total delay
    assert topo.cloud.site == "Wien"
    assert [u.site for u in topo.ues] == ["Milano", "Wien"]
    assert topo.link_between("Zürich", "München").params.bw_mbps == 10000
    assert topo.link_between("Milano", "München").params.bw_mbps == 100


def test_duplicate_and_missing_labels_get_unique_names(tmp_path):
    nodes = {"0": ("Paris", 2.35, 48.86), "1": ("Paris", 2.30, 48.80), "2": ("", 4.83, 45.76)}
    src = zoo_graphml(tmp_path / "p.graphml", nodes, edges=(("0", "1"), ("1", "2")))
    assert run(["net", "import", str(src), "-o", str(tmp_path / "p.yaml")]) == 0
    assert load(tmp_path / "p.yaml").site_names == ["Paris", "Paris (2)", "node 2"]


def test_missing_coordinates_need_a_default_delay(tmp_path, capsys):
    nodes = dict(CITIES, **{"3": ("Hub", None, None)})
    src = zoo_graphml(tmp_path / "h.graphml", nodes)
    out = tmp_path / "h.yaml"
    assert run(["net", "import", str(src), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "1 node(s) without coordinates: Hub; give a delay for their links (--default-delay-ms MS)" in err
    assert not out.exists()
    assert run(["net", "import", str(src), "-o", str(out), "--default-delay-ms", "7"]) == 0
    assert load(out).link_between("München", "Hub").params.delay_ms == 7


def test_disconnected_graph_names_its_components_and_writes_nothing(tmp_path, capsys):
    src = zoo_graphml(tmp_path / "d.graphml", edges=(("0", "1"), ("2", "3")))
    out = tmp_path / "d.yaml"
    assert run(["net", "import", str(src), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "the graph is not connected: 2 components {Milano, Zürich} | {München, Wien}" in err
    assert not out.exists()


def test_bad_sources(tmp_path, capsys):
    (tmp_path / "junk.graphml").write_text("<graphml><oops")
    assert run(["net", "import", str(tmp_path / "junk.graphml"), "-o", str(tmp_path / "x.yaml")]) == 2
    assert run(["net", "import", "topohub:topozoo/NoSuchNet", "-o", str(tmp_path / "x.yaml")]) == 2
    assert run(["net", "import", str(tmp_path / "missing.graphml"), "-o", str(tmp_path / "x.yaml")]) == 2
    err = capsys.readouterr().err
    assert "not a readable GraphML file" in err
    assert "topohub:topozoo/NoSuchNet: no such network in topohub's collection" in err
    assert "missing.graphml: no such file" in err
    assert not (tmp_path / "x.yaml").exists()


def test_topohub_zoo_network(tmp_path):
    out = tmp_path / "geant.yaml"
    assert run(["net", "import", "topohub:topozoo/Geant2012", "-o", str(out), "--cloudlets", "4",
                "--ues", "2"]) == 0
    topo = load(out)
    assert len(topo.sites) == 37 and len(topo.cloudlets) == 4 and len(topo.ues) == 2
    names = topo.machine_names()
    assert len(set(names.values())) == len(names)
    assert all(len(n + "-eth99") <= 15 for n in names.values())
    assert all(0 < link.params.delay_ms < 100 for link in topo.links)


def test_too_many_sites_for_one_cloudlet_each(tmp_path, capsys):
    out = tmp_path / "eu.yaml"
    assert run(["net", "import", "topohub:backbone/europe", "-o", str(out)]) == 2
    assert ("topohub:backbone/europe: 852 sites: at most 254 cloudlets and 254 UEs get automatic addresses; "
            "choose fewer with --cloudlets N / --ues N") in capsys.readouterr().err
    assert not out.exists()
