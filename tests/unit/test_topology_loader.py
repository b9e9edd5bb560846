"""Topology files: the shipped ones load; every kind of broken file is rejected with exact messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from topologies.loader import TopologyError, from_dict, load
from topologies.mobility import Move, from_topology

REPO = Path(__file__).resolve().parents[2]
BAD = REPO / "tests" / "data" / "bad"

# Each broken file with EVERY message it must produce, in order. "{f}" stands for the
# file path as passed to load(), "{d}" for the folder of the broken files.
BAD_FILES = {
    'bad_handover.yaml': [
        '{f}: handover.radio_interruption_ms: must be a number of milliseconds, 0 <= radio_interruption_ms <= 10000; got integer -1',
        "{f}: handover.mode: unknown handover mode 'break-before-mak', did you mean 'break-before-make'? (allowed: break-before-make, make-before-break)",
        "{f}: ues[0].handover.radio_interruption_ms: must be a number of milliseconds, 0 <= radio_interruption_ms <= 10000; got string 'fast'",
        '{f}: ues[1].handover.radio_ms: unknown key (allowed keys: radio_interruption_ms, mode)',
        "{f}: ues[1].handover.mode: unknown handover mode 'soft' (allowed: break-before-make, make-before-break)",
        '{f}: ues[2].handover: must be a mapping with keys radio_interruption_ms, mode; got integer 30',
    ],
    'bad_ips.yaml': [
        "{f}: sites[0].cloudlets[0].ip: bad IPv4 address '10.0.1.300' (expected e.g. 10.0.1.9)",
        "{f}: sites[0].cloudlets[1].ip: 192.168.1.5 is outside subnet 10.0.0.0/16 (addresses must lie inside the topology's subnet)",
        '{f}: sites[1].cloudlets[1].ip: 10.0.255.255 is the network or broadcast address of subnet 10.0.0.0/16 (not usable by a node)',
        '{f}: ues[0].ip: duplicate address 10.0.2.1 (already used by sites[1].cloudlets[0])',
        '{f}: ues[1].ip: 10.0.100.7 is in the service virtual-IP range 10.0.100.0/24 (reserved)',
    ],
    'bad_mobility.yaml': [
        "{f}: mobility.u1.moves[1]: time 5 is not after the previous move's time 10 (times must increase)",
        "{f}: mobility.u1.moves[2]: unknown site 's9' (known sites: s1, s2)",
        '{f}: mobility.u2: give exactly one of moves, random_walk, trace, positions, associations; got moves, trace',
        "{f}: mobility.u7: unknown UE 'u7' (known UEs: u1, u2)",
    ],
    'bad_names.yaml': [
        "{f}: sites[0].name: empty name (names: any text of 1-64 characters (spaces, capitals, accents allowed) without control characters or leading/trailing spaces)",
        "{f}: sites[1].name: leading or trailing space in ' Milano' (names: any text of 1-64 characters (spaces, capitals, accents allowed) without control characters or leading/trailing spaces)",
        "{f}: sites[1].cloudlets[0].name: control character in 'edge\\tone' (names: any text of 1-64 characters (spaces, capitals, accents allowed) without control characters or leading/trailing spaces)",
        "{f}: sites[2].name: too long: 76 characters (names: any text of 1-64 characters (spaces, capitals, accents allowed) without control characters or leading/trailing spaces)",
        "{f}: sites[3].name: must be a name (any text of 1-64 characters (spaces, capitals, accents allowed) without control characters or leading/trailing spaces); got integer 12",
    ],
    'bad_subnet.yaml': [
        "{f}: subnet: bad subnet '10.0.0.1/16': 10.0.0.1/16 has host bits set (did you mean 10.0.0.0/16?); expected an IPv4 network like 10.0.0.0/16",
    ],
    'bad_trace.yaml': [
        "{f}: mobility.u1.trace: {d}/bad_trace.csv:3: time_s 'soon' must be a number of seconds >= 0",
        "{f}: mobility.u1.trace: {d}/bad_trace.csv:4: unknown UE 'u9' (known UEs: u1)",
        "{f}: mobility.u1.trace: {d}/bad_trace.csv:5: unknown site 's7' (known sites: s1, s2)",
        '{f}: mobility.u1.trace: {d}/bad_trace.csv:6: UE u1 already has a row at time 1 (line 2)',
    ],
    'bad_values.yaml': [
        '{f}: profiles.slow.bw_mbps: 20000 is out of range (allowed: 0 < bw_mbps <= 10000 Mbit/s)',
        '{f}: profiles.slow.loss_pct: 150 is out of range (allowed: 0 <= loss_pct <= 100 %)',
        '{f}: sites[0].cloudlets[0].cpus: must be a number of CPU cores with 0 < cpus <= 1024 (e.g. 0.5) or null (unlimited); got integer 0',
        '{f}: sites[0].cloudlets[0].memory_mb: must be an integer number of MB >= 16 or null (unlimited); got integer 8',
        '{f}: links[0].bw_mbps: 0 is out of range (allowed: 0 < bw_mbps <= 10000 Mbit/s)',
        '{f}: links[0].delay_ms: -5 is out of range (allowed: 0 <= delay_ms <= 10000 ms)',
        '{f}: links[0].queue_pkts: 0 is out of range (allowed: 1 <= queue_pkts <= 100000 packets)',
        '{f}: links[1].jitter_ms: 20 is larger than delay_ms 10 (jitter must be <= delay)',
        '{f}: links[2].jitter_ms: 8 is larger than delay_ms 4 (jitter must be <= delay) (value from the profile)',
    ],
    'dangling_link.yaml': [
        "{f}: links[1].b: unknown site 's9' (known sites: s1, s2, s3)",
        "{f}: links[2].a: unknown site 's0' (known sites: s1, s2, s3)",
    ],
    'disconnected.yaml': [
        '{f}: links: site graph is not connected: components {s1, s2} | {s3, s4} (every site must be reachable from every other through links)',
    ],
    'duplicate_key.yaml': [
        "{f}:5: YAML syntax error: duplicate key 'links', first at line 4 (column 1)",
    ],
    'duplicate_names.yaml': [
        "{f}: sites[0].cloudlets[1].name: duplicate name 's1' (already used at sites[0].name (site); sites, cloudlets, UEs and the cloud share one namespace)",
        "{f}: sites[1].cloudlets[0].name: duplicate name 'c1' (already used at sites[0].cloudlets[0].name (cloudlet); sites, cloudlets, UEs and the cloud share one namespace)",
        "{f}: cloud.name: duplicate name 'u1' (already used at ues[0].name (ue); sites, cloudlets, UEs and the cloud share one namespace)",
    ],
    'empty.yaml': [
        '{f}: file is empty (expected a mapping with keys name, description, subnet, vip_subnet, profiles, sites, cloud, ues, links, handover, attachment, mobility, servers)',
    ],
    'missing_keys.yaml': [
        "{f}: top level: missing required key 'name'",
        "{f}: sites[0]: missing required key 'name'",
        "{f}: sites[0].cloudlets[0]: missing required key 'name'",
        "{f}: ues[0]: missing required key 'site'",
        "{f}: links[0]: missing required key 'b'",
    ],
    'self_and_duplicate_links.yaml': [
        "{f}: links[1]: self-link: both ends are 's2' (a link joins two different sites)",
        '{f}: links[2]: duplicate link between s2 and s1 (same as links[0]; at most one link per pair of sites)',
    ],
    'small_subnet.yaml': [
        '{f}: subnet: 10.0.0.0/24 has prefix length /24; allowed /8 to /17 (room for the x.x.100.0/24 virtual-IP block)',
    ],
    'unknown_keys.yaml': [
        "{f}: lnks: unknown key, did you mean 'links'? (allowed keys: name, description, subnet, vip_subnet, profiles, sites, cloud, ues, links, handover, attachment, mobility, servers)",
        "{f}: sites[0].cloudlet: unknown key, did you mean 'cloudlets'? (allowed keys: name, cloudlets, position, lonlat, coverage_m, tx_power_dbm, server)",
        "{f}: links[0].dealy_ms: unknown key, did you mean 'delay_ms'? (allowed keys: a, b, profile, bw_mbps, delay_ms, jitter_ms, loss_pct, queue_pkts)",
    ],
    'unknown_profile.yaml': [
        "{f}: sites[0].cloudlets[0].link: unknown profile 'fast' (known profiles: access, dc, lan, mec, wan)",
        "{f}: cloud.link.profile: unknown profile 'wna', did you mean 'wan'? (known profiles: access, dc, lan, mec, wan)",
        "{f}: links[0].profile: unknown profile 'mecc', did you mean 'mec'? (known profiles: access, dc, lan, mec, wan)",
    ],
    'wrong_types.yaml': [
        "{f}: sites[0].cloudlets[0].cpus: must be a number of CPU cores with 0 < cpus <= 1024 (e.g. 0.5) or null (unlimited); got string 'two'",
        '{f}: sites[0].cloudlets[0].memory_mb: must be an integer number of MB >= 16 or null (unlimited); got number 512.5',
        "{f}: sites[1].cloudlets: must be a list of cloudlet mappings; got mapping {'name': 'c2'}",
        "{f}: ues: must be a list of UE mappings; got string 'u1'",
        "{f}: links[0].delay_ms: must be a number; got string '50ms'",
    ],
    'yaml_syntax.yaml': [
        "{f}:5: YAML syntax error: expected ',' or ']', but got '<scalar>' (column 1; while parsing a flow sequence started at line 4, column 16)",
    ],
}


def expected(name: str, path: Path) -> list[str]:
    return [m.replace("{f}", str(path)).replace("{d}", str(path.parent)) for m in BAD_FILES[name]]


def test_table_covers_every_broken_file():
    assert sorted(p.name for p in BAD.glob("*.yaml")) == sorted(BAD_FILES)
    assert len(BAD_FILES) >= 12


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_broken_file_is_rejected_with_exact_messages(name):
    path = BAD / name
    with pytest.raises(TopologyError) as info:
        load(path)
    assert info.value.errors == expected(name, path)
    # str() carries every error, one per line; it is a ValueError for generic callers
    assert str(info.value) == "\n".join(expected(name, path))
    assert isinstance(info.value, ValueError)


def test_relative_path_appears_as_given(monkeypatch):
    monkeypatch.chdir(REPO)
    with pytest.raises(TopologyError) as info:
        load("tests/data/bad/dangling_link.yaml")
    assert info.value.errors[0] == (
        "tests/data/bad/dangling_link.yaml: links[1].b: unknown site 's9' (known sites: s1, s2, s3)")


def test_missing_file():
    with pytest.raises(TopologyError) as info:
        load(BAD / "nope.yaml")
    assert info.value.errors == [f"{BAD / 'nope.yaml'}: cannot read topology file: No such file or directory"]


def test_top_level_must_be_mapping():
    with pytest.raises(TopologyError) as info:
        from_dict(["s1"], "x.yaml")
    assert info.value.errors == [
        "x.yaml: top level: must be a mapping with keys name, description, subnet, vip_subnet, profiles, "
        "sites, cloud, ues, links, handover, attachment, mobility, servers; got list ['s1']"]


def test_handover_defaults_to_lte_and_a_ue_overrides_what_it_names():
    base = {"name": "h", "sites": [{"name": "s1"}, {"name": "s2"}], "links": [{"a": "s1", "b": "s2"}],
            "ues": [{"name": "u1", "site": "s1"},
                    {"name": "u2", "site": "s2", "handover": {"mode": "make-before-break"}}]}
    topo = from_dict(base)
    assert topo.handover_of("u1").to_dict() == {"radio_interruption_ms": 27.5, "mode": "break-before-make"}
    topo = from_dict({**base, "handover": {"radio_interruption_ms": 0}})
    assert topo.handover_of("u1").to_dict() == {"radio_interruption_ms": 0, "mode": "break-before-make"}
    # u2 names only the mode: the topology's radio time stays
    assert topo.handover_of("u2").to_dict() == {"radio_interruption_ms": 0, "mode": "make-before-break"}


@pytest.mark.parametrize("name, sites, cloudlets, ues, links", [
    ("paper", 3, 3, 1, 2), ("ring6", 6, 6, 10, 8), ("line2", 2, 2, 1, 1)])
def test_shipped_topologies_load(name, sites, cloudlets, ues, links):
    topo = load(REPO / "topologies" / f"{name}.yaml")
    assert topo.name == name
    assert (len(topo.sites), len(topo.cloudlets), len(topo.ues), len(topo.links)) == (sites, cloudlets, ues, links)
    assert topo.source == str(REPO / "topologies" / f"{name}.yaml")


def test_paper_topology_is_the_papers_setting():
    topo = load(REPO / "topologies" / "paper.yaml")
    assert topo.site_names == ["s1", "s2", "s3"]
    assert [(l.a, l.b, l.profile, l.params.bw_mbps, l.params.delay_ms) for l in topo.links] == [
        ("s1", "s2", "mec", 25, 50), ("s2", "s3", "mec", 25, 50)]
    assert (topo.cloud.site, topo.cloud.link.bw_mbps, topo.cloud.link.delay_ms) == ("s1", 100, 20)
    assert [(u.name, u.site) for u in topo.ues] == [("u1", "s1")]
    assert [c.site for c in topo.cloudlets] == ["s1", "s2", "s3"]
    assert from_topology(topo) == [Move(10.0, "u1", "s2"), Move(20.0, "u1", "s3")]
    assert topo.path_delay_ms("s1", "s3") == 100


def test_ring6_has_capacity_limits_mixed_links_and_chords():
    topo = load(REPO / "topologies" / "ring6.yaml")
    assert {l.profile for l in topo.links} == {"mec", "dc"}
    assert topo.cloudlet("c4").cpus == 0.5 and topo.cloudlet("c4").memory_mb == 256
    assert topo.cloudlet("c3").cpus is None and topo.cloudlet("c3").memory_mb is None
    assert all(len(topo.neighbours(s)) >= 2 for s in topo.site_names)
    assert topo.ue("u4").link.bw_mbps == 50  # file-defined 'radio' profile
    assert topo.hops("s1", "s4") == 1  # chord


def minimal(**extra):
    data = {"name": "t", "sites": [{"name": "s1", "cloudlets": [{"name": "c1"}]}, {"name": "s2"}],
            "links": [{"a": "s1", "b": "s2"}]}
    data.update(extra)
    return data


def test_defaults_when_optional_keys_are_absent():
    topo = from_dict(minimal())
    assert topo.source == "<python>"
    assert str(topo.subnet) == "10.0.0.0/16" and str(topo.vip_subnet) == "10.0.100.0/24"
    assert (topo.cloud.name, topo.cloud.site, topo.cloud.ip) == ("cloud", "s1", "10.0.3.1")
    assert topo.cloud.link.delay_ms == 20  # wan
    assert topo.links[0].profile == "mec" and topo.links[0].params.delay_ms == 50
    assert topo.cloudlet("c1").link.bw_mbps == 1000  # lan
    assert topo.ues == () and topo.mobility == ()


def test_profile_override_and_entry_override():
    topo = from_dict(minimal(
        profiles={"mec": {"delay_ms": 60}, "slow": {"bw_mbps": 10, "delay_ms": 80, "loss_pct": 1}},
        links=[{"a": "s1", "b": "s2", "profile": "mec", "bw_mbps": 20}],
        ues=[{"name": "u1", "site": "s2", "link": "slow"}, {"name": "u2", "site": "s2", "link": {"delay_ms": 2}}]))
    assert topo.links[0].params.bw_mbps == 20 and topo.links[0].params.delay_ms == 60
    assert topo.ue("u1").link.loss_pct == 1 and topo.ue("u1").link.delay_ms == 80
    assert topo.ue("u2").link.delay_ms == 2 and topo.ue("u2").link.bw_mbps is None  # access + override


def test_explicit_ips_are_kept_and_auto_assignment_skips_them():
    topo = from_dict(minimal(
        sites=[{"name": "s1", "cloudlets": [{"name": "c1"}, {"name": "c2", "ip": "10.0.1.1"}]}, {"name": "s2"}],
        ues=[{"name": "u1", "site": "s1"}]))
    assert topo.cloudlet("c2").ip == "10.0.1.1"
    assert topo.cloudlet("c1").ip == "10.0.1.2"
    assert topo.ue("u1").ip == "10.0.2.1"


def test_other_subnet_moves_every_block():
    topo = from_dict(minimal(subnet="172.20.0.0/16", ues=[{"name": "u1", "site": "s1"}]))
    assert (topo.cloudlet("c1").ip, topo.ue("u1").ip, topo.cloud.ip, topo.vip(0)) == (
        "172.20.1.1", "172.20.2.1", "172.20.3.1", "172.20.100.1")


def test_trace_path_is_relative_to_the_topology_file(tmp_path):
    (tmp_path / "walk.csv").write_text("time_s,ue,site\n2.5,u1,s2\n4,u1,s1\n")
    (tmp_path / "t.yaml").write_text(
        "name: t\nsites: [{name: s1}, {name: s2}]\nues: [{name: u1, site: s1}]\n"
        "links: [{a: s1, b: s2}]\nmobility: {u1: {trace: walk.csv}}\n")
    topo = load(tmp_path / "t.yaml")
    assert from_topology(topo) == [Move(2.5, "u1", "s2"), Move(4.0, "u1", "s1")]


def test_single_site_needs_no_links():
    topo = from_dict({"name": "one", "sites": [{"name": "s1"}]})
    assert topo.links == () and topo.neighbours("s1") == []


def test_junk_anywhere_gives_topology_error_never_a_crash():
    """Replace random entries of ring6 by junk values: the loader must answer with TopologyError only."""
    import copy
    import random

    import yaml

    base = yaml.safe_load((REPO / "topologies" / "ring6.yaml").read_text())
    junk = [None, 0, -1, 1.5, float("nan"), True, "", "s1", "u1", "S!", [], {}, [1, "s2"], {"a": 1}, "10.0.1.1"]

    def paths(o, p=()):
        yield p
        items = o.items() if isinstance(o, dict) else enumerate(o) if isinstance(o, list) else ()
        for k, v in items:
            yield from paths(v, p + (k,))

    all_paths = [p for p in paths(base) if p]
    rng = random.Random(1)
    rejected = 0
    for _ in range(1500):
        data = copy.deepcopy(base)
        for _ in range(rng.randint(1, 3)):
            *parents, last = rng.choice(all_paths)
            target = data
            try:
                for k in parents:
                    target = target[k]
                target[last] = copy.deepcopy(rng.choice(junk))
            except (KeyError, IndexError, TypeError):
                pass  # an earlier replacement removed this path
        try:
            topo = from_dict(data, "fuzz")
            hash(topo)
            from_topology(topo)
        except TopologyError as e:
            rejected += 1
            assert e.errors and all(line.startswith("fuzz: ") for line in e.errors)
    assert rejected > 1000
