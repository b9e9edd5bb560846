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
    r = bench.run(line, n=20, ues=20, moves=2, ofp_port=6668, rest_port=8198)
    assert r["controller"] == line
    assert r["served_by"] == ["replica ra", "replica ra"]  # even number of re-steers
    assert r["switches_touched"] == 1
    assert r["reroute_ms"]["median"] < 20  # target 5 ms; loose for a shared CI machine
    assert r["events_per_s"] > 0 and r["location_event_ms"]["n"] == 2
