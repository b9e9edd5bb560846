"""Scale pieces that need no root: generated topologies, batched hop commands, queue
allocation without a scan of the network's own records, the scale bench's readers."""

import argparse

import pytest

from mec.bench import scale
from topologies import generate, link
from topologies.model import PROFILES


def test_ring_has_one_cloudlet_and_one_ue_per_site_and_closes():
    topo = generate.ring(12)
    assert [s.name for s in topo.sites] == [f"s{i}" for i in range(1, 13)]
    assert [c.name for c in topo.cloudlets] == [f"c{i}" for i in range(1, 13)]
    assert {u.name: u.site for u in topo.ues} == {f"u{i}": f"s{i}" for i in range(1, 13)}
    assert len(topo.links) == 12 and topo.graph().number_of_edges() == 12
    assert topo.hops("s1", "s7") == 6  # the ring's far side
    assert all(l.params == PROFILES["mec"] for l in topo.links)
    assert topo.cloud.site == "s1"


def test_grid_links_right_and_down():
    topo = generate.grid(3, 4)
    assert len(topo.sites) == 12
    assert len(topo.links) == 3 * 3 + 2 * 4
    assert topo.hops("s1", "s12") == 2 + 3


def test_generated_sizes_are_bounded():
    assert len(generate.ring(96).sites) == 96
    with pytest.raises(ValueError):
        generate.ring(0)
    with pytest.raises(ValueError):
        generate.ring(generate.MAX_SITES + 1)


def test_egress_commands_are_the_shaping_of_one_interface():
    assert link.egress_commands("d0", None, None) == []
    cmds = link.egress_commands("d0", 25, 100, ["delay", "25ms"])
    assert cmds == [
        ["qdisc", "replace", "dev", "d0", "root", "handle", "5:", "htb", "default", "1"],
        ["class", "add", "dev", "d0", "parent", "5:", "classid", "5:1", "htb", "rate",
         "25mbit", "burst", "15k"],
        ["qdisc", "add", "dev", "d0", "parent", "5:1", "handle", "10:", "netem", "delay",
         "25ms", "limit", "100"],
    ]
    assert link.egress_commands("d0", None, 50) == [
        ["qdisc", "replace", "dev", "d0", "root", "handle", "10:", "pfifo", "limit", "50"]]
    with pytest.raises(link.ShapedLinkError):
        link.egress_commands("d0", 0, None)


@pytest.fixture
def records(tmp_path, monkeypatch):
    from mec.core import config

    monkeypatch.setattr(config, "RUN_DIR", tmp_path)
    monkeypatch.setattr(link, "_OWN_QUEUES", {}, raising=False)
    return tmp_path / "delayhops"


def test_a_hop_without_delay_line_reads_no_records(records, monkeypatch):
    """Building a network must not read every hop record per hop (quadratic)."""
    def no_scan(*a, **k):
        raise AssertionError("records scanned")

    monkeypatch.setattr(link, "_read_records", no_scan)
    assert link._allocate_queues("mec-h1", 0) == []
    assert (records / "mec-h1.json").exists()


def test_own_hops_are_known_without_reading_their_records(records, monkeypatch):
    first = link._allocate_queues("mec-l1", 2)
    read = []
    real = link._read_records
    monkeypatch.setattr(link, "_read_records", lambda skip=frozenset(): read.append(
        set(skip)) or real(skip))
    second = link._allocate_queues("mec-l2", 2)
    assert not set(first) & set(second)  # still distinct
    assert read == [{"mec-l1", "mec-l2"}]  # our own records were skipped


def test_summary_gives_median_and_range():
    runs = [{"up_s": 3.0, "down_s": 1.0}, {"up_s": 5.0, "down_s": None},
            {"up_s": 4.0, "down_s": 2.0}]
    s = scale.summarize(12, runs)
    assert s["sites"] == 12 and s["runs"] == 3 and s["failed"] == 0
    assert s["up_s"] == 4.0 and s["up_s_range"] == [3.0, 5.0]
    assert s["down_s"] == 1.5 and s["down_s_range"] == [1.0, 2.0]
    assert s["pss_mb"] is None and s["pss_mb_range"] is None  # not measured: missing


def test_proc_readers_see_this_process():
    import os

    assert scale.cpu_seconds(os.getpid()) > 0
    assert scale.pss_kb(os.getpid()) > 0
    busy, total = scale.machine_jiffies()
    assert 0 <= busy <= total
    assert scale.mem_available_mb() > 0
    assert scale.cpu_seconds(2**22 + 7) is None  # no such pid: missing, not 0


def test_quick_and_sizes_options():
    p = argparse.ArgumentParser()
    scale.add_arguments(p)
    assert p.parse_args([]).sizes == "3,12,24,48,96"
    assert p.parse_args(["--quick"]).quick


def test_a_failed_run_is_counted_not_averaged():
    s = scale.summarize(3, [{"up_s": 2.0}, {"sites": 3, "error": "TimeoutError: registry"}])
    assert s["failed"] == 1 and s["up_s"] == 2.0 and s["up_s_range"] == [2.0, 2.0]
