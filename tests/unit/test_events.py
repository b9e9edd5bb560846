"""Unit tests of mec.core.events: ordering, file format, spans, subscriptions, threads."""

from __future__ import annotations

import json
import threading
import time

import pytest

from mec.core import events as ev


def test_emit_writes_json_lines_that_read_back(tmp_path):
    path = tmp_path / "run" / "events.jsonl"
    with ev.EventLog(path) as log:
        before = time.monotonic()
        e1 = log.emit("move.attached", ue="u1", site="s2")
        e2 = log.emit("replica.promoted", service="svc", cloudlet="c2")
        after = time.monotonic()
    assert (e1.seq, e2.seq) == (1, 2)
    assert before <= e1.t <= e2.t <= after
    lines = path.read_text().splitlines()
    assert json.loads(lines[0]) == {"seq": 1, "t": e1.t, "wall": e1.wall, "kind": "move.attached",
                                    "ue": "u1", "site": "s2"}
    loaded = ev.read(path)
    assert loaded == [e1, e2]
    assert loaded[0]["site"] == "s2" and loaded[1].get("nope", 7) == 7


def test_reserved_field_names_are_refused():
    log = ev.EventLog()
    with pytest.raises(ValueError, match="seq"):
        log.emit("x", seq=3)


def test_span_measures_duration_and_records_errors():
    log = ev.EventLog()
    with log.span("migration.transfer", service="svc") as extra:
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < 0.02:
            pass
        extra["bytes"] = 123
    start, end = log.events()
    assert start.kind == "migration.transfer.start" and start["service"] == "svc"
    assert end.kind == "migration.transfer.end" and end["bytes"] == 123
    assert 0.02 <= end["duration_s"] < 0.5
    assert "error" not in end.fields

    with pytest.raises(RuntimeError, match="boom"):
        with log.span("migration.load"):
            raise RuntimeError("boom")
    failed = log.last("migration.load.end")
    assert failed is not None and failed["error"] == "RuntimeError: boom"
    assert failed["duration_s"] >= 0


def test_subscribe_filters_kinds_and_can_unsubscribe():
    log = ev.EventLog()
    seen, moves = [], []
    log.subscribe(seen.append)
    cancel = log.subscribe(moves.append, kinds=["move.*"])
    log.emit("move.attached")
    log.emit("replica.promoted")
    cancel()
    log.emit("move.detached")
    assert [e.kind for e in seen] == ["move.attached", "replica.promoted", "move.detached"]
    assert [e.kind for e in moves] == ["move.attached"]
    assert [e.kind for e in log.events("move.*")] == ["move.attached", "move.detached"]


def test_subscriber_may_emit_and_a_failing_one_does_not_break_emit():
    log = ev.EventLog()

    def react(event):
        if event.kind == "move.attached":
            log.emit("sched.decided", after=event.seq)

    def broken(event):
        raise ValueError("observer bug")

    log.subscribe(react)
    log.subscribe(broken)
    log.emit("move.attached")
    assert [e.kind for e in log.events()] == ["move.attached", "sched.decided"]


def test_concurrent_emits_get_unique_ordered_sequence_numbers(tmp_path):
    path = tmp_path / "events.jsonl"
    log = ev.EventLog(path)

    def worker(n):
        for i in range(200):
            log.emit("tick", worker=n, i=i)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log.close()
    loaded = ev.read(path)
    assert [e.seq for e in loaded] == list(range(1, 801))
    assert all(a.t <= b.t for a, b in zip(loaded, loaded[1:]))


def test_read_skips_truncated_last_line_but_not_corruption_inside(tmp_path):
    path = tmp_path / "events.jsonl"
    log = ev.EventLog(path)
    log.emit("a")
    log.close()
    with open(path, "a") as fh:
        fh.write('{"seq": 2, "t": 1.0, "wa')
    assert [e.kind for e in ev.read(path)] == ["a"]
    path.write_text('garbage\n' + path.read_text())
    with pytest.raises(ValueError, match=":1:"):
        ev.read(path)
