"""A short run of ``mec bench reroute`` on both controller lines (root)."""

from __future__ import annotations

import os

import pytest

from mec.bench import reroute as bench

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("line", ["os-ken", pytest.param("ryu", marks=pytest.mark.ryu)])
def test_bench_reroute_short(line):
    if os.geteuid() != 0:
        pytest.skip("needs root")
    r = bench.run(line, n=21, ues=20, moves=2, drains=2, ofp_port=6668, rest_port=8198)
    assert r["controller"] == line
    # the data plane: every re-steer (21 back to back, 2 drained twice, the concurrent and
    # the whole-service one) and the initial steering answered by its target replica
    assert r["dataplane"] == {"n": 1 + 21 + 2 * 2 + 2, "right": 28, "wrong": 0, "none": 0}
    assert r["switches_touched"] == 1
    assert r["reroute_ms"]["median"] < 20  # target 5 ms; loose for a shared CI machine
    d = r["drain"]
    assert d["drain_s"] == 1.0 and d["drain_end_missing"] == 0 and d["drain_end_ms"]["n"] == 2
    # established connections move when the drain ends: after drain_s, confirmed soon after
    assert 1000 <= d["drain_end_ms"]["median"] < 1500
    assert d["new_connections_ms"]["median"] < 20
    assert r["events_per_s"] > 0 and r["location_event_ms"]["n"] == 2
