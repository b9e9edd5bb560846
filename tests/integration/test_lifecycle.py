"""Lifecycle of whole testbeds: tear-down leaves nothing, bad set-ups create nothing."""

from pathlib import Path

import pytest

from mec.host.clean import clean
from mec.testbed import Testbed
from topologies.loader import load

pytestmark = pytest.mark.integration
TOPO_DIR = Path(__file__).resolve().parents[2] / "topologies"


def leftovers() -> list[str]:
    """What `mec clean` would remove, but the logs of finished runs (kept until then)."""
    return [x for x in clean(dry=True).removed if "log, configuration and state" not in x]


def test_teardown_leaves_nothing_behind():
    before = leftovers()
    tb = Testbed(load(TOPO_DIR / "line2.yaml"), controller="os-ken")
    tb.start()
    assert len(leftovers()) > len(before)
    tb.stop()
    assert tb.network is None
    assert leftovers() == before


def test_standalone_mode_refuses_a_looped_topology_and_creates_nothing():
    before = leftovers()
    with pytest.raises(ValueError, match="cycle"):
        Testbed(load(TOPO_DIR / "ring6.yaml"), controller=None).start()
    assert leftovers() == before


def test_cloudlet_capacity_is_enforced_by_the_kernel_on_its_containers():
    from mec.edge.manager import EdgeManager
    from mec.edge.images import registry_ref
    from topologies.loader import from_dict

    topo = from_dict({"name": "cap", "sites": [{"name": "s1", "cloudlets": [
        {"name": "c1", "cpus": 0.5, "memory_mb": 256}]}], "links": []}, "<test>")
    with Testbed(topo, controller=None) as tb:
        engine = tb.network.engine("c1")
        cg = Path("/sys/fs/cgroup")
        if (cg / "cpu").is_dir():
            assert (cg / "cpu" / engine.cgroup_parent / "cpu.cfs_quota_us").read_text().strip() \
                == "50000"
            assert int((cg / "memory" / engine.cgroup_parent / "memory.limit_in_bytes")
                       .read_text()) == 256 * 2**20
        em = EdgeManager.for_cloudlet(topo.cloudlet("c1"), engine)
        em.pull(registry_ref("busybox", tb.network.registry_addr))
        inst = em.deploy("cap", registry_ref("busybox", tb.network.registry_addr))
        pid = engine.client().containers.get(inst.container).attrs["State"]["Pid"]
        cgroups = Path(f"/proc/{pid}/cgroup").read_text()
        assert f"/{engine.cgroup_parent}/" in cgroups  # inside the cloudlet's limits


def test_kill_9_of_a_running_topology_then_clean_then_a_new_run_works():
    import os
    import signal
    import subprocess
    import sys

    from mec.core.proc import read_record
    from mec.core import config

    argv = [sys.executable, "-m", "mec.cli", "net", "up", str(TOPO_DIR / "line2.yaml"),
            "--hold", "300"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            start_new_session=True)
    try:
        for line in proc.stdout:
            if line.startswith("holding"):
                break
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        left = leftovers()
        kinds = " ".join(left)
        for what in ("controller", "docker engine", "registry", "OVS bridge"):
            assert what in kinds, f"a killed run should leave a {what}: {left}"
        records = [read_record(p) for p in config.RUN_DIR.glob("*.pid")]
        live = [r for r in records if r and r.is_ours()]
        assert live, "the killed run's processes should still be recorded"
        report = clean()
        assert not report.errors, report.errors
        assert leftovers() == []
        assert not any(r.is_ours() for r in live)
        tb = Testbed(load(TOPO_DIR / "line2.yaml"), controller="os-ken")
        try:
            tb.start()
            assert len(tb.nm.switches()) == 2
        finally:
            tb.stop()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        clean()
