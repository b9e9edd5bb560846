"""The live view without a network: layout, replay of a run folder, the probe tail, the
server's stream (pushed within 200 ms), bad input (exit 2)."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest
import requests

from mec.cli.main import main
from mec.core.events import EventLog
from mec.measure.probelog import ProbeRecord, StreamingWriter
from mec.view.errors import ViewError
from mec.view.feed import Feed
from mec.view.layout import site_positions
from mec.view.probetail import ProbeTail
from mec.view.replay import load_run
from mec.view.scene import topology_doc
from mec.view.server import ViewServer
from topologies.loader import from_dict, load

REPO = Path(__file__).resolve().parents[2]
PAPER = REPO / "topologies" / "paper.yaml"


def test_file_positions_are_used_and_scaled():
    doc = topology_doc(load(PAPER))
    assert doc["layout"] == "file"
    assert [(s["name"], s["x"], s["y"]) for s in doc["sites"]] == [
        ("s1", 0.0, 0.5), ("s2", 0.5, 0.5), ("s3", 1.0, 0.5)]
    assert [l["label"] for l in doc["links"]] == ["mec: 25 Mbit/s, 50 ms"] * 2


def test_computed_layout_is_stable_and_inside_the_page():
    topo = load(REPO / "topologies" / "ring6.yaml")
    first = topology_doc(topo)
    assert first["layout"] == "computed"
    assert first == topology_doc(load(REPO / "topologies" / "ring6.yaml"))
    points = [(s["x"], s["y"]) for s in first["sites"]]
    assert all(0 <= x <= 1 and 0 <= y <= 1 for x, y in points)
    assert len(set(points)) == len(points)
    partial = site_positions(["a", "b"], [("a", "b")], {"a": (0, 0)})  # not every site: computed
    assert partial == site_positions(["a", "b"], [("a", "b")])


def _run_folder(tmp_path: Path) -> Path:
    run = tmp_path / "handover" / "20260101-000000"
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({
        "scenario": "handover", "args": {"sla_ms": 30.0},
        "topology": {"path": str(PAPER), "content": PAPER.read_text()}}))
    with EventLog(run / "events-proactive.jsonl") as log:
        log.emit("roles", service="svc", roles={"c1": "primary", "c2": "backup"})
        log.emit("move.attached", ue="u1", from_site="s1", to_site="s2", handover_s=0.02)
        log.emit("roles", service="svc", roles={"c1": "backup", "c2": "primary"})
    t = time.monotonic()
    writer = StreamingWriter(run / "probe-proactive.csv")
    records = [ProbeRecord(i, t + i * 0.005, t + i * 0.005 + 0.002, "200", 2.0, "svc-c1")
               for i in range(450)] + [ProbeRecord(450, t + 3, None, "timeout")]
    writer.finish(records)
    return run


def test_replay_folds_a_run_folder(tmp_path):
    feed, meta = load_run(_run_folder(tmp_path))
    assert meta["mode"] == "replay" and meta["title"] == "handover 20260101-000000"
    items = feed.since(0)
    kinds = [(i["type"], i.get("kind")) for i in items if i["type"] != "probe"]
    assert kinds[:2] == [("testbed", None), ("ues", None)]
    assert [k for _, k in kinds if k] == ["roles", "move.attached", "roles"]
    ues = [i["sites"] for i in items if i["type"] == "ues"]
    assert ues == [{"u1": "s1"}, {"u1": "s2"}]
    rows = [r for i in items if i["type"] == "probe" for r in i["rows"]]
    assert len(rows) == 451 and rows[-1][1:] == [None, "timeout", None]
    assert {i["sla_ms"] for i in items if i["type"] == "probe"} == {30.0}
    assert [i["t"] for i in items] == sorted(i["t"] for i in items)


@pytest.mark.parametrize("make, message", [
    (lambda p: p / "nothing-here", "no such results folder"),
    (lambda p: p, "has no config.json"),
])
def test_unknown_results_folder_exits_2(tmp_path, capsys, make, message):
    with pytest.raises(ViewError, match=message):
        load_run(make(tmp_path))
    assert main(["view", str(make(tmp_path))]) == 2
    assert message in capsys.readouterr().err


def test_port_in_use_exits_2(tmp_path, capsys):
    run = _run_folder(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        assert main(["view", str(run), "--port", str(port)]) == 2
    assert f"port {port} on 127.0.0.1 is in use" in capsys.readouterr().err


def test_probe_tail_reads_complete_rows_and_ends_at_the_rewrite(tmp_path):
    path = tmp_path / "probe-x.csv"
    writer = StreamingWriter(path)
    tail = ProbeTail(path)
    assert tail.label == "x" and tail.read() == []
    writer.write(ProbeRecord(1, 10.0, 10.002, "200", 2.0, "svc-c1"))
    writer.flush()
    with open(path, "a") as fh:
        fh.write("0,9.5")  # a row the writer has not finished
    assert tail.read() == [[10.0, 2.0, "200", "svc-c1"]]
    with open(path, "a") as fh:
        fh.write(",,timeout,,\n")
    assert tail.read() == [[9.5, None, "timeout", None]]
    writer.finish([ProbeRecord(1, 10.0, 10.002, "200", 2.0, "svc-c1")])
    assert tail.read() == [] and tail.ended


def _messages(resp):
    for line in resp.iter_lines(decode_unicode=True):
        if line.startswith("data: "):
            yield json.loads(line[len("data: "):])


def test_live_stream_pushes_an_item_within_200_ms():
    feed = Feed()
    feed.add("testbed", label="x", topology=topology_doc(from_dict({
        "name": "t", "sites": [{"name": "s1"}], "ues": [{"name": "u1", "site": "s1"}]})))
    server = ViewServer(feed, {"mode": "live", "title": "t"})
    server.start()
    try:
        page = requests.get(server.url, timeout=5)
        assert page.status_code == 200 and "/static/view.js" in page.text
        assert "EventSource" in requests.get(server.url + "static/view.js", timeout=5).text
        with requests.get(server.url + "api/stream", stream=True, timeout=5) as resp:
            assert resp.headers["Content-Type"].startswith("text/event-stream")
            messages = _messages(resp)
            assert next(messages) == {"meta": {"mode": "live", "title": "t"}}
            assert [i["type"] for i in next(messages)["items"]] == ["testbed"]
            lags = []
            for n in range(5):
                added = time.perf_counter()
                feed.add("ues", sites={"u1": f"s{n}"})
                message = next(m for m in messages if "items" in m)
                lags.append(time.perf_counter() - added)
                assert message["items"][-1]["sites"] == {"u1": f"s{n}"}
        assert max(lags) < 0.2, lags
    finally:
        server.stop()


def test_feed_keeps_events_when_probe_batches_overflow():
    feed = Feed(max_items=10, max_probe_items=3)
    feed.add("testbed", label="x", topology={})
    feed.add("event", kind="roles", fields={})
    for n in range(20):
        feed.add("probe", probe="p", rows=[[n, 1.0, "200", None]])
    items = feed.since(0)
    assert [i["type"] for i in items] == ["testbed", "event", "probe", "probe", "probe"]
    assert feed.since(items[-2]["seq"]) == [items[-1]]


def test_scenarios_take_view_options():
    from mec.cli.main import build_parser

    args = build_parser().parse_args(["run", "handover", "--view", "--view-port", "8123"])
    assert args.view and args.view_port == 8123
    args = build_parser().parse_args(["net", "up", "topologies/paper.yaml", "--view"])
    assert args.view and args.view_port == 0


def test_site_position_in_the_topology_file():
    from topologies.loader import TopologyError

    topo = from_dict({"name": "t", "sites": [{"name": "a", "position": [3, -1]}, {"name": "b"}],
                     "links": [{"a": "a", "b": "b"}]})
    assert [s.position for s in topo.sites] == [(3.0, -1.0), None]
    assert topology_doc(topo)["layout"] == "computed"  # not every site has one
    with pytest.raises(TopologyError) as err:
        from_dict({"name": "t", "sites": [{"name": "a", "position": [1]}]})
    assert err.value.errors == ["<python>: sites[0].position: must be a list of two numbers "
                                "[x, y]; got list [1]"]
