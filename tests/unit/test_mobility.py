"""Mobility schedules: scripted moves, CSV traces, seeded random walks, the file's section, events."""

from __future__ import annotations

from pathlib import Path

import pytest

from topologies.loader import load
from topologies.mobility import Move, MobilityEvent, from_topology, from_trace, merge, random_walk, scripted
from topologies.model import TopologyError

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def ring6():
    return load(REPO / "topologies" / "ring6.yaml")


@pytest.fixture(scope="module")
def paper():
    return load(REPO / "topologies" / "paper.yaml")


def test_scripted(paper):
    assert scripted("u1", [(5, "s2"), (7.5, "s3")], paper) == [Move(5.0, "u1", "s2"), Move(7.5, "u1", "s3")]


def test_scripted_reports_every_problem(paper):
    with pytest.raises(TopologyError) as info:
        scripted("u1", [(5, "s1"), (3, "s2"), (-1, "s9"), "s3"], paper)
    assert info.value.errors == [
        "scripted moves of u1[0]: UE u1 is already at s1 (each move must change site)",
        "scripted moves of u1[1]: time 3 is not after the previous move's time 5 (times must increase)",
        "scripted moves of u1[2]: time -1 must be a number of seconds >= 0",
        "scripted moves of u1[2]: unknown site 's9' (known sites: s1, s2, s3)",
        "scripted moves of u1[3]: must be a pair [time_s, site], got 's3'",
    ]


def test_scripted_unknown_ue(paper):
    with pytest.raises(TopologyError, match=r"scripted moves: unknown UE 'u5' \(known UEs: u1\)"):
        scripted("u5", [(1, "s2")], paper)


def test_random_walk_moves_only_to_neighbours_and_is_reproducible(ring6):
    walk = random_walk(ring6, "u1", interval_s=2.5, count=50, seed=42)
    assert [m.at_s for m in walk] == [2.5 * k for k in range(1, 51)]
    here = "s1"
    for m in walk:
        assert m.to_site in ring6.neighbours(here), (here, m)
        here = m.to_site
    assert random_walk(ring6, "u1", interval_s=2.5, count=50, seed=42) == walk
    assert random_walk(ring6, "u1", interval_s=2.5, count=50, seed=43) != walk
    assert len({m.to_site for m in walk}) > 2  # actually wanders


def test_random_walk_start_site_and_errors(ring6):
    assert random_walk(ring6, "u1", start_site="s3", interval_s=1, count=1, seed=0)[0].to_site in ("s2", "s4")
    with pytest.raises(TopologyError) as info:
        random_walk(ring6, "u1", interval_s=0, count=-1, seed=0)
    assert info.value.errors == ["random walk of u1: interval_s 0 must be a number of seconds > 0",
                                 "random walk of u1: count -1 must be an integer >= 0"]


def test_trace(tmp_path, paper):
    p = tmp_path / "t.csv"
    p.write_text("time_s,ue,site\n# comment\n20,u1,s3\n10,u1,s2\n\n15,u1,s2\n30,u1,s1\n")
    # sorted by time; the 15 s row keeps u1 at s2, so it is not a move
    assert from_trace(p, paper) == [Move(10.0, "u1", "s2"), Move(20.0, "u1", "s3"), Move(30.0, "u1", "s1")]
    # without a topology nothing is known about start sites: every change is kept, names unchecked
    p.write_text("time_s,ue,site\n1,u1,s1\n2,ux,s9\n")
    assert from_trace(p) == [Move(1.0, "u1", "s1"), Move(2.0, "ux", "s9")]


def test_trace_errors_name_file_and_line(tmp_path, paper):
    p = tmp_path / "bad.csv"
    p.write_text("time_s,ue,site\n1,u1\nx,u1,s2\n3,u2,s2\n4,u1,s4\n")
    with pytest.raises(TopologyError) as info:
        from_trace(p, paper)
    assert info.value.errors == [
        f"{p}:2: expected 3 fields (time_s,ue,site), got 2",
        f"{p}:3: time_s 'x' must be a number of seconds >= 0",
        f"{p}:4: unknown UE 'u2' (known UEs: u1)",
        f"{p}:5: unknown site 's4' (known sites: s1, s2, s3)",
    ]
    p.write_text("t,ue,site\n")
    with pytest.raises(TopologyError, match=r"bad.csv:1: header must be time_s,ue,site, got t,ue,site"):
        from_trace(p)


def test_from_topology_expands_random_walk_deterministically(ring6):
    moves = from_topology(ring6)
    assert moves == sorted(moves)
    assert [m for m in moves if m.ue == "u1"] == [Move(10.0, "u1", "s2"), Move(20.0, "u1", "s3"), Move(30.0, "u1", "s4")]
    walk = [m for m in moves if m.ue == "u5"]
    assert walk == random_walk(ring6, "u5", "s3", 15, 4, 7)
    assert [m.at_s for m in walk] == [15.0, 30.0, 45.0, 60.0]
    assert from_topology(ring6) == moves


def test_merge_sorts_by_time():
    a = [Move(5, "u1", "s2")]
    b = [Move(1, "u2", "s3"), Move(9, "u2", "s1")]
    assert [m.at_s for m in merge(a, b)] == [1, 5, 9]


def test_mobility_event_to_dict():
    ev = MobilityEvent("u1", "s1", "s2", t_request=100.0)
    assert ev.to_dict() == {"ue": "u1", "from_site": "s1", "to_site": "s2", "t_request": 100.0,
                            "t_detached": None, "t_attached": None, "radio_ms": None,
                            "emulator_ms": None, "mode": None, "prepared": None,
                            "handover_s": None}
    ev.t_detached, ev.t_attached = 100.25, 100.5
    assert ev.to_dict()["handover_s"] == pytest.approx(0.25)
    ev.t_detached = 100.75  # make-before-break: attached before detached, no time without link
    assert ev.to_dict()["handover_s"] == 0
