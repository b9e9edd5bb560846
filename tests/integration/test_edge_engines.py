"""Edge Managers on real per-cloudlet engines: cache state, deploy, admission, image transfer."""

import time

import pytest

from mec.core import config
from mec.edge.manager import CapacityError, EdgeManager, transfer_image
from mec.edge.images import registry_ref

from edge_net import SUBNET, edge_net

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def env():
    with edge_net(n_cloudlets=2) as e:
        yield e


def managers(env, cpus=None, memory_mb=None):
    a = EdgeManager.for_engine(env.engines["c0"], f"{SUBNET}.10", cpus=cpus, memory_mb=memory_mb)
    b = EdgeManager.for_engine(env.engines["c1"], f"{SUBNET}.11")
    return a, b


def ue_get(env, url: str) -> str:
    proc = env.ue.popen(["curl", "-sf", "-m", "3", url])
    out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0, f"UE could not fetch {url}"
    return out.decode()


def test_pull_caches_the_image_only_on_the_pulling_cloudlet(env):
    a, b = managers(env)
    ref = registry_ref("busybox", env.registry_addr)
    a.remove_image(ref)
    b.remove_image(ref)
    assert not a.has_image(ref) and not b.has_image(ref)
    res = a.pull(ref)
    assert a.has_image(ref) and ref in a.status().images
    assert not b.has_image(ref) and ref not in b.status().images
    # compressed layer bytes: more than nothing, less than the unpacked image
    assert 0.2e6 < res.bytes < res.image_size and res.layers_downloaded >= 1
    assert a.pull(ref).bytes == 0  # cached now: nothing crosses the network
    assert a.remove_image(ref) and not a.has_image(ref)


def test_deploy_answers_another_host_with_its_instance_name(env):
    a, _ = managers(env)
    ref = registry_ref("busybox", env.registry_addr)
    a.pull(ref)
    try:
        inst = a.deploy("web1", ref, cpus=0.5, memory_mb=64, service="web")
        ready = a.wait_ready("web1", timeout=15)
        assert ready.answer == "web1" and inst.launch_s < 10
        assert ue_get(env, inst.url).splitlines()[0] == "web1"
        st = a.status()
        assert [(i.name, i.role, i.cpus, i.memory_mb) for i in st.running] == \
            [("web1", "primary", 0.5, 64)]
        a.stop("web1")
        assert a.get("web1").state == "exited"
    finally:
        a.remove("web1")
    assert a.get("web1") is None


def test_admission_control_refuses_what_does_not_fit(env):
    a, _ = managers(env, cpus=1.0, memory_mb=256)
    ref = registry_ref("busybox", env.registry_addr)
    a.pull(ref)
    try:
        a.deploy("big", ref, cpus=0.75, memory_mb=128)
        with pytest.raises(CapacityError, match=r"0.5 CPUs requested, 0.25 of 1 free"):
            a.deploy("more", ref, cpus=0.5, memory_mb=64)
        with pytest.raises(CapacityError, match=r"200 MB memory requested, 128 of 256 MB free"):
            a.deploy("more", ref, cpus=0.1, memory_mb=200)
        assert a.get("more") is None  # nothing was created for a refused request
        st = a.status()
        assert st.cpus_free == pytest.approx(0.25) and st.memory_free_mb == 128
        a.remove("big")
        a.deploy("more", ref, cpus=0.5, memory_mb=64)  # fits once the first one is gone
    finally:
        a.remove("big")
        a.remove("more")


def test_transfer_image_between_edges_then_run_it(env, tmp_path):
    a, b = managers(env)
    ref = registry_ref("busybox", env.registry_addr)
    a.pull(ref)
    b.remove_image(ref)
    try:
        tr = transfer_image(ref, a, b, tmp_path)
        assert tr.wire_bytes == tr.archive_bytes > 0.2e6
        assert b.has_image(ref)
        t0 = time.perf_counter()
        inst = b.deploy("moved", ref)
        ready = b.wait_ready("moved", timeout=15)
        launch = time.perf_counter() - t0
        assert ue_get(env, inst.url).splitlines()[0] == "moved"
        print(f"\nbusybox transfer phases: export {tr.export_s:.3f} s, transfer "
              f"{tr.transfer_s:.3f} s ({tr.wire_bytes} B), load {tr.load_s:.3f} s, "
              f"launch {launch:.3f} s (ready {ready.seconds:.3f} s)")
    finally:
        b.remove("moved")
    assert not list(tmp_path.rglob("*.tar.gz"))  # archives removed afterwards
    assert not list(config.run_dir().glob("fileserver-*.pid"))  # server stopped
