"""Periodic data sync primary -> secondary over the emulated network, served by the replica."""

import time

import pytest

from mec.core import config
from mec.service.datasync import DataSync, Replica, data_volume
from mec.edge.manager import EdgeManager
from mec.edge.images import registry_ref

from edge_net import SUBNET, edge_net

pytestmark = pytest.mark.integration


class Events:
    def __init__(self):
        self.items = []

    def emit(self, kind, **fields):
        self.items.append((kind, fields))


def test_sync_counts_bytes_becomes_coherent_and_propagates_within_a_period(tmp_path):
    period = 1.0
    with edge_net(n_cloudlets=2) as env:
        prim_dir, sec_dir = tmp_path / "c0", tmp_path / "c1"
        prim_dir.mkdir()
        (prim_dir / "a.txt").write_text("alpha\n")
        (prim_dir / "b.bin").write_bytes(bytes(range(256)) * 400)  # 102400 bytes
        (prim_dir / "sub").mkdir()
        (prim_dir / "sub" / "c.txt").write_text("gamma\n")
        primary = Replica("c0", env.netns(env.cloudlets["c0"]), f"{SUBNET}.10", prim_dir)
        secondary = Replica("c1", env.netns(env.cloudlets["c1"]), f"{SUBNET}.11", sec_dir)
        events = Events()
        sync = DataSync("store", primary, [secondary], period_s=period, events=events)
        b = EdgeManager.for_engine(env.engines["c1"], f"{SUBNET}.11")
        ref = registry_ref("busybox", env.registry_addr)
        try:
            sync.start()
            first = sync.wait_rounds(1, timeout=10)[0]
            assert first.ok, first.targets
            assert first.bytes > 102400 and first.targets[0].stats.files_transferred == 3
            # counted on the secondary's link beside rsync's own count: rsync's stream
            # plus TCP/IP headers, ACKs and the connection's set-up, nothing else ran there
            assert first.bytes < first.wire_bytes <= 1.25 * first.bytes + 10_000, \
                (first.bytes, first.wire_bytes)
            assert sync.check_coherent().coherent
            # the secondary replica serves the synced data to a user
            b.pull(ref)
            volumes, env_vars = data_volume(sec_dir)
            inst = b.deploy("store1", ref, env=env_vars, volumes=volumes, role="secondary")
            b.wait_ready("store1", timeout=15)
            proc = env.ue.popen(["curl", "-sf", "-m", "3", inst.url + "data/sub/c.txt"])
            assert proc.communicate(timeout=10)[0].decode() == "gamma\n"
            # an idle round moves only the file list, far less than the data
            idle = sync.wait_rounds(len(sync.rounds) + 1, timeout=5)[-1]
            assert idle.ok and idle.targets[0].stats.files_transferred == 0
            assert idle.bytes < 5000
            # a change (same size, new content) reaches the secondary within one period
            n = len(sync.rounds)
            t0 = time.monotonic()
            (prim_dir / "a.txt").write_text("ALPHA\n")
            (prim_dir / "new.txt").write_text("x" * 5000)
            coh = None
            while time.monotonic() - t0 < 3 * period:
                coh = sync.check_coherent()
                if coh.coherent:
                    break
                time.sleep(0.02)
            elapsed = time.monotonic() - t0
            assert coh.coherent, coh.differences
            longest = max(r.seconds for r in sync.rounds)
            assert elapsed <= period + longest + 0.2, f"change took {elapsed:.2f} s"
            changed = [r for r in sync.rounds[n:] if r.targets[0].stats.files_transferred][0]
            assert changed.targets[0].stats.files_transferred == 2
            assert 5000 < changed.bytes < 20000
            assert changed.bytes < changed.wire_bytes <= 1.25 * changed.bytes + 10_000, \
                (changed.bytes, changed.wire_bytes)
            assert (sec_dir / "a.txt").read_text() == "ALPHA\n"
        finally:
            sync.stop()
            b.remove("store1")
        assert not sync.running
        assert not list(config.run_dir().glob("rsyncd-*.pid"))
        kinds = [k for k, _ in events.items]
        assert kinds[0] == "sync_start" and kinds[-1] == "sync_stop"
        rounds = [f for k, f in events.items if k == "sync_round"]
        assert len(rounds) == len(sync.rounds) >= 3
        assert all(f["ended"] >= f["started"] and f["bytes"] > 0 for f in rounds)
        assert all(f["wire_bytes"] >= f["bytes"] and f["targets"][0]["wire_bytes"] ==
                   f["wire_bytes"] for f in rounds)
        gaps = [b["started"] - a["started"] for a, b in zip(rounds, rounds[1:])]
        assert all(0.8 * period <= g <= 2 * period for g in gaps), gaps
