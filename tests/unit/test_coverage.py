"""Position-based mobility: sources (SUMO FCD, CSV, random waypoint, Gauss-Markov, association
logs) and attachment by coverage with hysteresis; `mec net check --list` shows the schedule."""

from __future__ import annotations

import argparse
import math

import pytest

from mec.cli import net as cli
from topologies import positions as pos
from topologies.coverage import attachments, read_associations, schedule
from topologies.loader import from_dict, load
from topologies.mobility import DETACH, Move
from topologies.model import Attachment, TopologyError
from topologies.net import MobilityPlayer

# Three access points on a road: A covers [-200, 200], B [100, 500], C [700, 1100]:
# a gap without coverage between 500 and 700 m.
ROAD = {"name": "road", "sites": [
    {"name": "AP A", "position": [0, 0], "coverage_m": 200, "cloudlets": [{"name": "c1"}]},
    {"name": "AP B", "position": [300, 0], "coverage_m": 200},
    {"name": "AP C", "position": [900, 0], "coverage_m": 200}],
    "ues": [{"name": "car", "site": "AP A"}],
    "links": [{"a": "AP A", "b": "AP B"}, {"a": "AP B", "b": "AP C"}]}


def drive(speed=10.0, until=100, step=1.0, ue="car"):
    return [pos.Sample(k * step, ue, speed * k * step, 0.0) for k in range(int(until / step) + 1)]


def test_nearest_with_margin_handovers_and_detach_in_the_gap():
    topo = from_dict(dict(ROAD, attachment={"policy": "nearest", "margin": 50}))
    sched = attachments(topo, drive(), "car")
    # B nearer than A by more than 50 m from x > 175 (t=18); out of B's range past 500 m
    # (t=51); C's range from 700 m (t=70)
    assert sched.moves == [Move(18.0, "car", "AP B"), Move(51.0, "car", DETACH), Move(70.0, "car", "AP C")]
    s = sched.summary["car"]
    assert (s.handovers, s.detaches, s.reattaches) == (1, 1, 1)
    assert s.out_of_coverage_s == pytest.approx(19.0) and s.duration_s == 100
    assert [(p["from"], p["to"]) for p in sched.points] == [("AP A", "AP B"), ("AP B", None), (None, "AP C")]


def test_margin_and_minimum_dwell_stop_ping_pong():
    wobble = [pos.Sample(float(t), "car", 140.0 if t % 2 == 0 else 160.0, 0.0) for t in range(20)]
    plain = attachments(from_dict(ROAD), wobble, "car")
    assert plain.summary["car"].handovers == 19  # every sample crosses the midpoint
    margin = attachments(from_dict(dict(ROAD, attachment={"margin": 30})), wobble, "car")
    assert margin.summary["car"].handovers == 0
    dwell = attachments(from_dict(dict(ROAD, attachment={"min_dwell_s": 5})), wobble, "car")
    times = [m.at_s for m in dwell.moves]
    assert len(times) == 4 and all(b - a >= 5 for a, b in zip(times, times[1:]))


def test_strongest_by_log_distance_path_loss():
    data = dict(ROAD, attachment={"policy": "strongest", "margin": 3, "path_loss_exponent": 3})
    data["sites"] = [dict(s) for s in ROAD["sites"]]
    data["sites"][1]["tx_power_dbm"] = 30  # B 10 dB louder than A's default 20 dBm
    sched = attachments(from_dict(data), [pos.Sample(1.0, "car", 100.0, 0.0)], "car")
    # at 100 m from A and 200 m from B: A -40-60 = -80+20 = -80 dBm... B: 30-40-30*log10(200) = -79.0
    assert sched.moves == []  # B is better by 1 dB only: under the 3 dB margin
    sched = attachments(from_dict(data), [pos.Sample(1.0, "car", 120.0, 0.0)], "car")
    assert sched.moves == [Move(1.0, "car", "AP B")]


def test_a_ue_starting_outside_every_coverage_is_detached_at_once():
    sched = attachments(from_dict(ROAD), [pos.Sample(0.0, "car", 600.0, 0.0), pos.Sample(5.0, "car", 600.0, 0.0)], "car")
    assert sched.moves == [Move(0.0, "car", DETACH)]
    assert sched.summary["car"].out_of_coverage_s == 5.0


FCD = """<?xml version="1.0" encoding="UTF-8"?>
<fcd-export>
{steps}
</fcd-export>
"""


def fcd_file(tmp_path, speed=10.0, until=100):
    steps = "\n".join(
        f'  <timestep time="{t:.2f}">\n'
        f'    <vehicle id="veh0" x="{1000 + speed * t:.2f}" y="{500:.2f}" angle="90.00" type="DEFAULT_VEHTYPE" '
        f'speed="{speed:.2f}" pos="{speed * t:.2f}" lane="e0_0" slope="0.00"/>\n'
        f'    <vehicle id="veh1" x="0.00" y="0.00" angle="0.00" type="DEFAULT_VEHTYPE" speed="0.00" pos="0.00" '
        f'lane="e1_0" slope="0.00"/>\n'
        f'  </timestep>' for t in range(until + 1))
    path = tmp_path / "drive.fcd.xml"
    path.write_text(FCD.format(steps=steps))
    return path


def test_fcd_vehicle_to_ue_with_offset_scale_and_speedup(tmp_path):
    samples = pos.read_fcd(fcd_file(tmp_path), {"veh0": "car"})
    assert len(samples) == 101 and samples[3] == pos.Sample(3.0, "car", 1030.0, 500.0)
    moved = pos.transform(samples, offset=(-1000, -500), scale=0.5, speedup=10)
    assert moved[3] == pos.Sample(0.3, "car", 15.0, 0.0)


def test_fcd_errors(tmp_path):
    with pytest.raises(TopologyError, match=r"no vehicle or person veh9 in the file \(ids in it: veh0, veh1\)"):
        pos.read_fcd(fcd_file(tmp_path, until=2), {"veh9": "car"})
    bad = tmp_path / "bad.xml"
    bad.write_text("<fcd-export><timestep time='1'><vehicle id='v'")
    with pytest.raises(TopologyError, match="not SUMO floating-car data"):
        pos.read_fcd(bad, {"v": "car"})
    with pytest.raises(TopologyError, match="no such file"):
        pos.read_fcd(tmp_path / "none.xml", {"v": "car"})


def test_csv_positions_and_their_errors(tmp_path):
    good = tmp_path / "p.csv"
    good.write_text("time_s,ue,x,y\n1,car,10,0\n0,car,0,0\n")
    assert pos.read_csv(good) == [pos.Sample(0.0, "car", 0.0, 0.0), pos.Sample(1.0, "car", 10.0, 0.0)]
    bad = tmp_path / "b.csv"
    bad.write_text("time_s,ue,x,y\nsoon,car,1,1\n1,car,x,1\n2,car,1\n3,bus,1,1\n1,car,2,2\n")
    with pytest.raises(TopologyError) as e:
        pos.read_csv(bad, ues=["car"])
    assert e.value.errors == [
        f"{bad}:2: time_s 'soon' must be a number of seconds >= 0",
        f"{bad}:3: x and y must be numbers of metres, got 'x', '1'",
        f"{bad}:4: expected 4 fields (time_s,ue,x,y), got 3",
        f"{bad}:5: unknown UE 'bus' (known UEs: car)",
    ]


def test_random_waypoint_stays_in_the_area_within_speed_and_is_reproducible():
    a = pos.random_waypoint("u", area=[500, 300], speed_mps=[1, 5], pause_s=[0, 3], duration_s=300, seed=4)
    assert a == pos.random_waypoint("u", area=[500, 300], speed_mps=[1, 5], pause_s=[0, 3], duration_s=300, seed=4)
    assert len(a) == 301 and all(0 <= s.x <= 500 and 0 <= s.y <= 300 for s in a)
    assert all(math.hypot(q.x - p.x, q.y - p.y) <= 5 + 1e-6 for p, q in zip(a, a[1:]))
    assert max(math.hypot(q.x - p.x, q.y - p.y) for p, q in zip(a, a[1:])) > 1  # it moves
    with pytest.raises(TopologyError, match="v_min"):
        pos.random_waypoint("u", area=[5, 5], speed_mps=[0, 1], pause_s=[0, 0], duration_s=10)


def test_gauss_markov_stays_in_the_area_and_is_reproducible():
    a = pos.gauss_markov("u", area=[400, 400], speed_mps=3, duration_s=600, alpha=0.8, seed=2)
    assert a == pos.gauss_markov("u", area=[400, 400], speed_mps=3, duration_s=600, alpha=0.8, seed=2)
    assert all(0 <= s.x <= 400 and 0 <= s.y <= 400 for s in a)
    steps = [math.hypot(q.x - p.x, q.y - p.y) for p, q in zip(a, a[1:])]
    assert 1 < sum(steps) / len(steps) < 5  # about the mean speed per 1 s step
    with pytest.raises(TopologyError, match="alpha"):
        pos.gauss_markov("u", area=[4, 4], speed_mps=3, duration_s=10, alpha=2)


def test_association_log_replay_with_off(tmp_path):
    log = tmp_path / "ap.csv"
    log.write_text("time_s,ue,ap\n0,car,AP A\n10,car,AP B\n20,car,OFF\n35,car,AP C\n50,car,AP C\n")
    sched = read_associations(log, from_dict(ROAD), speedup=2)
    assert sched.moves == [Move(5.0, "car", "AP B"), Move(10.0, "car", DETACH), Move(17.5, "car", "AP C")]
    s = sched.summary["car"]
    assert (s.handovers, s.detaches, s.reattaches, s.out_of_coverage_s) == (1, 1, 1, 7.5)
    bad = tmp_path / "bad.csv"
    bad.write_text("time_s,ue,ap\n1,car,AP Z\n2,bus,OFF\n")
    with pytest.raises(TopologyError) as e:
        read_associations(bad, from_dict(ROAD))
    assert e.value.errors[0] == f"{bad}:2: unknown access point 'AP Z' (sites: AP A, AP B, AP C; OFF: not associated)"
    assert e.value.errors[1] == f"{bad}:3: unknown UE 'bus' (known UEs: car)"


def run(argv):
    parser = argparse.ArgumentParser(prog="mec")
    cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def road_file(tmp_path, mobility: str) -> str:
    fcd_file(tmp_path)
    text = """name: road
attachment: {policy: nearest, margin: 50, min_dwell_s: 2}
sites:
  - {name: AP A, position: [0, 0], coverage_m: 200, cloudlets: [{name: c1}]}
  - {name: AP B, position: [300, 0], coverage_m: 200, cloudlets: [{name: c2}]}
  - {name: AP C, position: [900, 0], coverage_m: 200}
ues: [{name: car, site: AP A}]
links: [{a: AP A, b: AP B}, {a: AP B, b: AP C}]
mobility:
  car: """ + mobility + "\n"
    (tmp_path / "road.yaml").write_text(text)
    return str(tmp_path / "road.yaml")


def test_check_list_prints_the_schedule_of_an_fcd_trace(tmp_path, capsys):
    f = road_file(tmp_path, "{positions: {fcd: drive.fcd.xml, vehicle: veh0, offset: [-1000, -500]}}")
    assert run(["net", "check", "--list", f]) == 0
    out = capsys.readouterr().out
    assert "3 scheduled moves" in out
    assert "  access point AP B: at (300, 0) m, coverage 200 m\n" in out
    assert "  UE car: 1 handover, 1 out of coverage (19.0 s of 100.0 s), 1 re-attach\n" in out
    assert "  move at 51 s: car out of coverage: detached\n" in out
    assert "  move at 70 s: car -> AP C\n" in out


def test_bad_position_entries_are_reported_by_the_loader(tmp_path):
    f = road_file(tmp_path, "{positions: {fcd: drive.fcd.xml, vehicle: nope}}")
    with pytest.raises(TopologyError) as e:
        load(f)
    assert "mobility.car.positions: " in e.value.errors[0] and "no vehicle or person nope" in e.value.errors[0]
    f = road_file(tmp_path, "{positions: {csv: a.csv, fcd: b.xml}}")
    with pytest.raises(TopologyError, match="give exactly one of fcd, csv, random_waypoint, gauss_markov"):
        load(f)
    no_aps = {"name": "t", "sites": [{"name": "a"}], "ues": [{"name": "u", "site": "a"}],
              "mobility": {"u": {"positions": {"random_waypoint": {
                  "area": [10, 10], "speed_mps": [1, 2], "pause_s": [0, 0], "duration_s": 5}}}}}
    with pytest.raises(TopologyError, match="no site has a position"):
        from_dict(no_aps)


def test_models_through_the_topology_file(tmp_path):
    f = road_file(tmp_path, "{positions: {random_waypoint: {area: [1100, 50], speed_mps: [5, 15], "
                            "pause_s: [0, 2], duration_s: 200, seed: 3}}}")
    sched = schedule(load(f))
    assert sched.moves and sched.summary["car"].duration_s == 200
    assert all(m.ue == "car" for m in sched.moves)


class FakeNetwork:
    def __init__(self):
        self.calls = []

    def move(self, ue, site):
        self.calls.append(("move", ue, site))
        return site

    def detach(self, ue):
        self.calls.append(("detach", ue))
        return None


def test_the_player_detaches_and_reattaches():
    net = FakeNetwork()
    MobilityPlayer(net, [Move(0.0, "car", DETACH), Move(0.01, "car", "AP C")]).start().wait(5)
    assert net.calls == [("detach", "car"), ("move", "car", "AP C")]


def errors_of(data) -> list[str]:
    with pytest.raises(TopologyError) as e:
        from_dict(data, "t.yaml")
    return e.value.errors


def test_site_position_keys_and_attachment_are_validated():
    errs = errors_of({"name": "t", "sites": [
        {"name": "a", "lonlat": [200, 10]},
        {"name": "b", "position": [0, 0], "lonlat": [1, 1]},
        {"name": "c", "coverage_m": 100},
        {"name": "d", "position": [1, 2], "coverage_m": -5, "tx_power_dbm": "loud"}],
        "attachment": {"policy": "loudest", "margin": -1},
        "links": [{"a": "a", "b": "b"}, {"a": "b", "b": "c"}, {"a": "c", "b": "d"}]})
    assert errs == [
        "t.yaml: attachment.policy: unknown policy 'loudest' (allowed: nearest, strongest)",
        "t.yaml: attachment.margin: must be a number, 0 <= margin <= 1e+06; got integer -1",
        "t.yaml: sites[0].lonlat: must be [longitude, latitude] in degrees (-180..180, -90..90); got list [200, 10]",
        "t.yaml: sites[1]: give position (metres) or lonlat (degrees), not both",
        "t.yaml: sites[2].coverage_m: an access point with coverage needs a position or lonlat",
        "t.yaml: sites[3].coverage_m: must be a number of metres, 0 < x <= 1e+07; got integer -5",
        "t.yaml: sites[3].tx_power_dbm: must be a number of dBm, -100 < x <= 100; got string 'loud'",
        "t.yaml: sites: some sites give position (metres), others lonlat (degrees): use one kind for all",
    ]


def test_lonlat_is_projected_to_metres():
    topo = from_dict({"name": "t", "sites": [{"name": "Milano", "lonlat": [9.19, 45.46], "coverage_m": 5000},
                                             {"name": "Wien", "lonlat": [16.37, 48.21]}],
                      "links": [{"a": "Milano", "b": "Wien"}]})
    (x1, y1), (x2, y2) = topo.site("Milano").position, topo.site("Wien").position
    assert x1 == -x2 and y1 == -y2  # about their mean point
    assert math.hypot(x2 - x1, y2 - y1) == pytest.approx(625.6e3, rel=0.01)  # the great circle's 625.6 km
    assert [s.name for s in topo.access_points()] == ["Milano"]


def test_check_reports_a_bad_association_log_and_exits_2(tmp_path, capsys):
    (tmp_path / "ap.csv").write_text("time_s,ue,ap\n3,car,AP Z\n")
    f = road_file(tmp_path, "{associations: ap.csv}")
    assert run(["net", "check", f]) == 2
    assert (f"{f}: mobility: {tmp_path}/ap.csv:2: unknown access point 'AP Z' (sites: AP A, AP B, AP C; "
            "OFF: not associated)") in capsys.readouterr().err
    (tmp_path / "ap.csv").write_text("time_s,ue,ap\n3,car,OFF\n9,car,AP B\n")
    assert run(["net", "check", "--list", f]) == 0
    assert "  UE car: 0 handovers, 1 out of coverage (6.0 s of 9.0 s), 1 re-attach\n" in capsys.readouterr().out
