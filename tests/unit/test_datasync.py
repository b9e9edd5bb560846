"""Data sync pieces that need no namespaces: rsync stats, tree comparison, argument checks."""

from pathlib import Path

import pytest

from mec.service.datasync import (DataSync, Replica, SyncRound, SyncTarget, RsyncStats, compare_trees,
                          data_volume, parse_rsync_stats, tree_checksums)

STATS = """
Number of files: 4 (reg: 3, dir: 1)
Number of created files: 0
Number of regular files transferred: 2
Total file size: 1,234,567 bytes
Literal data: 12,345 bytes
Matched data: 0 bytes
Total bytes sent: 12,890
Total bytes received: 1,071

sent 12,890 bytes  received 1,071 bytes  27,922.00 bytes/sec
"""


def test_parse_rsync_stats():
    s = parse_rsync_stats(STATS)
    assert s == RsyncStats(bytes_sent=12890, bytes_received=1071, files_transferred=2,
                           literal_bytes=12345)
    assert s.total_bytes == 13961  # rsync's own count, not the wire's
    with pytest.raises(ValueError, match="bytes_sent"):
        parse_rsync_stats("rsync error: connection refused")


def test_tree_checksums_and_differences(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for root in (a, b):
        (root / "sub").mkdir(parents=True)
        (root / "x.txt").write_text("same")
        (root / "sub" / "y.bin").write_bytes(b"\0" * 10)
    assert compare_trees(tree_checksums(a), tree_checksums(b)) == []
    (b / "sub" / "y.bin").write_bytes(b"\1" * 10)  # same size, other content
    (a / "new").write_text("only on a")
    (b / "stale").write_text("only on b")
    assert compare_trees(tree_checksums(a), tree_checksums(b)) == ["new", "stale", "sub/y.bin"]


def test_round_totals_and_event_fields():
    rnd = SyncRound(3, "c1", 100.0, 100.5, 0.5, [
        SyncTarget("c2", True, 0.2, RsyncStats(100, 20, 1, 90)),
        SyncTarget("c3", False, 0.3, error="rsync exited 10")])
    assert rnd.bytes == 120 and not rnd.ok
    ev = rnd.as_event()
    assert ev["round"] == 3 and ev["bytes"] == 120 and ev["targets"][1]["error"]
    assert rnd.wire_bytes is None and ev["wire_bytes"] is None  # c3 was not counted


def test_round_wire_bytes_beside_rsyncs_count():
    rnd = SyncRound(0, "c1", 100.0, 100.5, 0.5, [
        SyncTarget("c2", True, 0.2, RsyncStats(100, 20, 1, 90), wire_bytes=1500),
        SyncTarget("c3", True, 0.3, RsyncStats(100, 20, 1, 90), wire_bytes=1700)])
    ev = rnd.as_event()
    assert (rnd.bytes, rnd.wire_bytes) == (240, 3200)
    assert (ev["bytes"], ev["wire_bytes"]) == (240, 3200)
    assert [t["wire_bytes"] for t in ev["targets"]] == [1500, 1700]


def test_arguments_are_checked(tmp_path):
    p = Replica("c1", "/proc/1/ns/net", "10.0.0.1", tmp_path)
    with pytest.raises(ValueError, match="period"):
        DataSync("svc", p, [], period_s=0)
    with pytest.raises(ValueError, match="also listed"):
        DataSync("svc", p, [p])
    volumes, env = data_volume("/var/x")
    assert volumes == {"/var/x": {"bind": "/srv/data", "mode": "rw"}}
    assert env == {"MEC_DATA": "/srv/data"}
