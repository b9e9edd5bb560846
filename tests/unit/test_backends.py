"""Backend choice (Mininet / Containernet) and the OVS datapath detection."""

import pytest

from mec.edge import images
from topologies import backends
from topologies import datapath


def test_mininet_backend_uses_plain_hosts():
    from mininet.net import Mininet

    b = backends.get_backend("mininet")
    assert b.name == "mininet" and b.net_cls is Mininet
    assert not b.docker_ues
    assert b.host("ue") == {} and b.host("cloudlet") == {}


def test_unknown_backend_is_a_clear_error():
    with pytest.raises(ValueError, match="use one of mininet, containernet, auto"):
        backends.get_backend("mininet-wifi")


def test_auto_falls_back_to_mininet_without_containernet(monkeypatch):
    monkeypatch.setattr(backends, "containernet_available", lambda: False)
    assert backends.get_backend("auto").name == "mininet"
    with pytest.raises(RuntimeError, match="docs/containernet.md"):
        backends.get_backend("containernet")


@pytest.mark.skipif(not backends.containernet_available(), reason="Containernet not importable")
def test_containernet_backend_makes_docker_ues():
    from mininet.net import Containernet
    from mininet.node import Docker

    b = backends.get_backend("containernet")
    assert b.net_cls is Containernet and b.host_classes == {"ue": Docker}
    assert b.host("cloudlet") == {} and b.ue_python == "python3"


def test_ue_image_is_separate_from_the_service_images():
    r = images.UE_RECIPE
    assert r.name == "ue" and r.name not in images.RECIPES and not r.service
    assert {"iproute2", "net-tools", "iputils-ping", "curl", "python3"} <= set(r.include)
    assert all(s.service for s in images.RECIPES.values())


def test_datapath_follows_the_kernel(monkeypatch):
    monkeypatch.delenv(datapath.ENV_FORCE, raising=False)
    monkeypatch.setattr(datapath, "kernel_datapath_available", lambda: True)
    assert datapath.ovs_datapath() == "kernel"
    monkeypatch.setattr(datapath, "kernel_datapath_available", lambda: False)
    assert datapath.ovs_datapath() == "user"


def test_datapath_can_be_forced_but_not_to_a_missing_kernel_module(monkeypatch):
    monkeypatch.setattr(datapath, "kernel_datapath_available", lambda: False)
    monkeypatch.setenv(datapath.ENV_FORCE, "user")
    assert datapath.ovs_datapath() == "user"
    monkeypatch.setenv(datapath.ENV_FORCE, "kernel")
    with pytest.raises(RuntimeError, match="no OVS datapath"):
        datapath.ovs_datapath()
    monkeypatch.setenv(datapath.ENV_FORCE, "system")
    with pytest.raises(ValueError, match="use one of"):
        datapath.ovs_datapath()


def test_kernel_datapath_probe_answers_a_bool():
    assert datapath.kernel_datapath_available() in (True, False)


def test_containernet_refuses_an_engine_with_the_systemd_cgroup_driver(monkeypatch):
    monkeypatch.setattr(backends, "containernet_available", lambda: True)
    monkeypatch.setattr(backends, "engine_cgroup_driver", lambda: "systemd")
    with pytest.raises(RuntimeError, match="native.cgroupdriver=cgroupfs"):
        backends.get_backend("containernet")
