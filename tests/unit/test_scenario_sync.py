"""The sync scenario's pure parts: stamps, staleness, steady traffic, the writer, the figure."""

import argparse
import time

import pytest

from mec.cli import run as run_cmd
from mec.measure.results import ResultDir
from scenarios import sync
from scenarios.sync import Stamp


def test_stamps_round_trip_and_reject_other_bodies():
    s = Stamp(42, 1234.5)
    assert sync.parse_stamp(s.text()) == s
    assert sync.parse_stamp("<HTML><HEAD><TITLE>404 Not Found</TITLE>") is None
    assert sync.parse_stamp("") is None and sync.parse_stamp("7 x") is None


def test_staleness_in_writes_and_seconds():
    assert sync.staleness(Stamp(30, 12.0), Stamp(18, 10.8)) == (12, pytest.approx(1.2))
    assert sync.staleness(Stamp(5, 3.0), Stamp(5, 3.0)) == (0, 0.0)
    with pytest.raises(ValueError, match="newer"):
        sync.staleness(Stamp(5, 3.0), Stamp(6, 3.1))


def rnd(seq, t, primary="c1", rnd_no=0, nbytes=1000, seconds=0.7, targets=2, started=None):
    return {"seq": seq, "t": t, "primary": primary, "round": rnd_no, "bytes": nbytes,
            "seconds": seconds, "started": t - seconds if started is None else started,
            "ok": True, "targets": [{"cloudlet": f"x{i}"} for i in range(targets)]}


def test_steady_rate_leaves_out_the_catch_up_round():
    rounds = [rnd(5, 9.0, rnd_no=3),                     # before the mark event: ignored
              rnd(11, 10.0, rnd_no=0, nbytes=50_000),    # catch-up: the start mark
              rnd(12, 12.0, rnd_no=1), rnd(13, 14.0, rnd_no=2),
              rnd(14, 14.5, primary="c2", rnd_no=7),     # another primary: ignored
              rnd(15, 16.0, rnd_no=3)]                   # after UNTIL_T: ignored
    r = sync.steady_rate(rounds, "c1", after_seq=10, until_t=15.0)
    assert r["rounds"] == 2 and r["bytes"] == 2000
    assert r["window_s"] == pytest.approx(4.0) and r["bytes_per_s"] == pytest.approx(500.0)
    assert r["round_s"] == pytest.approx(0.7) and r["secondaries"] == 2


def test_steady_rate_restarts_its_window_when_the_sync_restarts():
    rounds = [rnd(1, 1.0, rnd_no=0), rnd(2, 2.0, rnd_no=1),
              rnd(3, 3.0, rnd_no=0, nbytes=9000, targets=1),  # restarted with new roles
              rnd(4, 5.0, rnd_no=1, nbytes=600, targets=1)]
    r = sync.steady_rate(rounds, "c1", 0, 10.0)
    assert (r["rounds"], r["bytes"], r["window_s"], r["secondaries"]) == (1, 600, 2.0, 1)
    empty = sync.steady_rate(rounds[:1], "c1", 0, 10.0)
    assert empty["bytes_per_s"] is None and empty["rounds"] == 0


def test_round_rows_intervals_only_within_one_sync():
    rows = sync.round_rows([rnd(1, 1.0, rnd_no=0, started=0.3), rnd(2, 2.0, rnd_no=1, started=1.3),
                            rnd(3, 3.0, primary="c2", rnd_no=0, started=2.5)], 1.0, rep=1)
    assert [r["interval_s"] for r in rows] == [None, pytest.approx(1.0), None]
    assert rows[0]["period_s"] == 1.0 and rows[2]["primary"] == "c2" and rows[1]["ok"] == 1


def test_walk_bounces_along_the_sites():
    assert sync.walk(["s1", "s2", "s3"], "s1", 5) == [
        ("s1", "s2"), ("s2", "s3"), ("s3", "s2"), ("s2", "s1"), ("s1", "s2")]
    assert sync.walk(["s1", "s2", "s3"], "s3", 2) == [("s3", "s2"), ("s2", "s1")]
    with pytest.raises(ValueError):
        sync.walk(["s1"], "s1", 1)


def test_writer_writes_the_current_primary_and_follows_it(tmp_path):
    w = sync.StateWriter(lambda c: tmp_path / c, "c1", tick_s=0.01, state_bytes=1000)
    first = w.write_once()
    assert first.seq == 1
    assert sync.parse_stamp((tmp_path / "c1" / sync.STAMP_FILE).read_text()) == first
    assert (tmp_path / "c1" / sync.STATE_FILE).stat().st_size == 1000
    state = (tmp_path / "c1" / sync.STATE_FILE).read_bytes()
    w.write_once()
    assert (tmp_path / "c1" / sync.STATE_FILE).read_bytes() != state  # new content each write
    w.start()
    try:
        deadline = time.monotonic() + 5
        while w.writes < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        latest = w.pause()
        assert latest.seq >= 5 and w.latest == latest
        w.resume("c2")
        deadline = time.monotonic() + 5
        while not (tmp_path / "c2" / sync.STAMP_FILE).exists() and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        w.stop()
    moved = sync.parse_stamp((tmp_path / "c2" / sync.STAMP_FILE).read_text())
    assert moved.seq > latest.seq  # the sequence goes on at the new primary
    assert sync.parse_stamp((tmp_path / "c1" / sync.STAMP_FILE).read_text()).seq <= latest.seq
    assert not list(tmp_path.glob("*/.*.tmp"))


def test_make_plots_from_a_run_folder(tmp_path):
    rd = ResultDir("sync", base=tmp_path)
    t = rd.table("sync", sync.COLUMNS)
    rt = rd.table("rounds", sync.ROUND_COLUMNS)
    for period, rate, stale in ((0.5, 2600.0, 1.3), (5.0, 530.0, 3.0)):
        for rep in (1, 2):
            t.append({"rep": rep, "period_s": period, "bytes_per_s": rate + rep * 10,
                      "staleness_s": stale + rep * 0.1, "staleness_seq": 10 * stale})
            rt.append({"period_s": period, "rep": rep, "round": rep, "primary": "c1", "t": 1.0,
                       "seconds": 2.0, "bytes": 2600, "ok": 1,
                       "interval_s": max(period, 2.0)})
    summary = rd.write_summary(list(sync.SPECS), complete=True)
    rd.close()
    groups = {k: s["groups"] for k, s in summary["tables"].items()}
    (path,) = sync.make_plots(rd.path, groups)
    assert path.name == "sync.png" and path.stat().st_size > 10_000


def test_mec_run_sync_options():
    parser = argparse.ArgumentParser(prog="mec")
    run_cmd.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["run", "sync", "--periods", "0.5,1,5", "--write-kbps", "400"])
    assert args.func is sync.run and args.write_kbps == 400 and args.policy == "all"
    assert sync.parse_periods(args.periods) == [0.5, 1.0, 5.0]
    for bad in ("0,1", "1,1", "x"):
        with pytest.raises(SystemExit):
            sync.parse_periods(bad)
