"""Edge Managers on real per-cloudlet engines: cache state, deploy, admission, image transfer.

Every host's link is shaped (40 Mbit/s): pulls and transfers cross rate-limited
links, and their bytes on the wire are counted on the cloudlets' interfaces.
"""

import time

import pytest

from mec.core import config
from mec.edge.manager import CapacityError, EdgeManager, transfer_image
from mec.edge.images import registry_ref
from topologies.model import LinkParams

from edge_net import SUBNET, edge_net

pytestmark = pytest.mark.integration

#: Wire bytes over payload bytes a TCP transfer may cost: Ethernet, IP and TCP headers
#: (~5% at 1448-byte segments), ACKs back (~2%), retransmissions, the HTTP exchange.
WIRE_OVERHEAD_MAX = 1.25


@pytest.fixture(scope="module")
def env():
    with edge_net(n_cloudlets=2, link=LinkParams(bw_mbps=40)) as e:
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
    # declared: the compressed layer sizes, more than nothing, less than the unpacked image
    assert 0.2e6 < res.declared_bytes < res.image_size and res.layers_downloaded >= 1
    assert res.bytes == res.declared_bytes  # the old field keeps its meaning
    # on the wire (counted on the cloudlet's link): the layers plus the protocols' cost
    assert res.wire_bytes is not None
    assert res.declared_bytes < res.wire_bytes <= WIRE_OVERHEAD_MAX * res.declared_bytes, \
        (res.declared_bytes, res.wire_bytes)
    again = a.pull(ref)
    # cached now: no layer declared, and only the manifest exchange on the wire
    assert again.declared_bytes == 0 and 0 < again.wire_bytes < 30_000, again
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
        assert tr.archive_bytes > 0.2e6 and tr.wire_bytes is not None
        # counted on the destination's link: the archive plus the protocols' cost
        # (strictly more: every frame carries headers, and the HTTP exchange its own)
        assert tr.archive_bytes < tr.wire_bytes <= WIRE_OVERHEAD_MAX * tr.archive_bytes, \
            (tr.archive_bytes, tr.wire_bytes)
        assert b.has_image(ref)
        t0 = time.perf_counter()
        inst = b.deploy("moved", ref)
        ready = b.wait_ready("moved", timeout=15)
        launch = time.perf_counter() - t0
        assert ue_get(env, inst.url).splitlines()[0] == "moved"
        print(f"\nbusybox transfer phases: export {tr.export_s:.3f} s, transfer "
              f"{tr.transfer_s:.3f} s ({tr.archive_bytes} B archive, {tr.wire_bytes} B on the "
              f"wire), load {tr.load_s:.3f} s, "
              f"launch {launch:.3f} s (ready {ready.seconds:.3f} s)")
    finally:
        b.remove("moved")
    assert not list(tmp_path.rglob("*.tar.gz"))  # archives removed afterwards
    assert not list(config.run_dir().glob("fileserver-*.pid"))  # server stopped
