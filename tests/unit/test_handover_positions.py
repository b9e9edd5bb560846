"""The handover scenario driven by a position schedule: the moves are made at their times,
detaches included (scenarios/handover.py timed_moves / timed_schedule), and the plane plot."""

from __future__ import annotations

import argparse
import time
from types import SimpleNamespace

import pytest

from mec.measure.plane import plane_data, plane_plot
from scenarios import handover
from topologies.loader import from_dict
from topologies.mobility import DETACH, MobilityEvent, Move

ROAD = {"name": "road", "sites": [
    {"name": "AP A", "position": [0, 0], "coverage_m": 200, "cloudlets": [{"name": "c1"}]},
    {"name": "AP B", "position": [300, 0], "coverage_m": 200, "cloudlets": [{"name": "c2"}]}],
    "ues": [{"name": "car", "site": "AP A"}], "links": [{"a": "AP A", "b": "AP B"}],
    "mobility": {"car": {"positions": {"random_waypoint": {
        "area": [600, 10], "speed_mps": [20, 30], "pause_s": [0, 0], "duration_s": 60, "seed": 1}}}}}


class Network:
    def __init__(self):
        self.calls = []

    def move(self, ue, site):
        self.calls.append((time.monotonic(), "move", site))
        now = time.monotonic()
        return MobilityEvent(ue, "x", site, t_request=now, t_detached=now, t_attached=now)

    def detach(self, ue):
        self.calls.append((time.monotonic(), "detach", None))
        return MobilityEvent(ue, "AP B", "", t_request=time.monotonic(), t_detached=time.monotonic())


class Orchestrator:
    def wait_for_site(self, ue, site, timeout):
        time.sleep(0.05)  # the orchestrator's handling delays the next move


class Progress:
    def note(self, text):
        pass


def test_timed_moves_follow_the_schedule_and_detach():
    net = Network()
    dep = SimpleNamespace(replicas=SimpleNamespace(primary=SimpleNamespace(instance="svc-c1")), site="AP B")
    sched = [Move(0.1, "car", "AP B"), Move(0.12, "car", DETACH), Move(0.3, "car", "AP A")]
    args = argparse.Namespace(move_timeout=5, dwell=0)
    t0 = time.monotonic()
    made = handover.timed_moves(SimpleNamespace(network=net), Orchestrator(), dep, "car", sched, args, Progress())
    assert [c[1:] for c in net.calls] == [("move", "AP B"), ("detach", None), ("move", "AP A")]
    assert net.calls[0][0] - t0 >= 0.1 and net.calls[2][0] - t0 >= 0.3
    late = [m[5] for m in made]
    assert late[0] == 0.0 and late[1] > 0.02  # the detach waited for the orchestrator's 50 ms
    assert [m[3] for m in made] == ["ok", "ok", "ok"]


def test_timed_schedule_only_for_position_based_ues():
    topo = from_dict(ROAD)
    sched = handover.timed_schedule(topo, "car")
    assert sched is not None and sched.moves and all(m.ue == "car" for m in sched.moves)
    plain = dict(ROAD, mobility={"car": {"moves": [[5, "AP B"]]}})
    assert handover.timed_schedule(from_dict(plain), "car") is None


def test_plane_plot(tmp_path):
    topo = from_dict(ROAD)
    sched = handover.timed_schedule(topo, "car")
    data = plane_data(topo, sched)
    assert [ap["name"] for ap in data["access_points"]] == ["AP A", "AP B"]
    assert len(data["tracks"]["car"]) == 61 and data["points"]
    path = plane_plot(data, tmp_path / "plane.png")
    assert path.stat().st_size > 10_000


def test_path_takes_real_site_names_even_with_commas():
    topo = from_dict({"name": "t", "sites": [{"name": "Praha"}, {"name": "Breclav,Lednice"}, {"name": "Brno"}],
                      "ues": [{"name": "u 1", "site": "Praha"}],
                      "links": [{"a": "Praha", "b": "Brno"}, {"a": "Brno", "b": "Breclav,Lednice"}]})
    assert handover.split_sites(topo, "Praha, Breclav,Lednice ,Brno") == ["Praha", "Breclav,Lednice", "Brno"]
    assert handover.walk(topo, "u 1", "Brno,Breclav,Lednice") == ["Praha", "Brno", "Breclav,Lednice", "Brno"]
    with pytest.raises(KeyError, match="unknown site 'Wien'"):
        handover.split_sites(topo, "Praha,Wien")
