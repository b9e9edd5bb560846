"""The Containernet backend: line2.yaml with the UE as a Docker host reaching a cloudlet.

Runs only where the ``mininet`` module is Containernet's (a separate venv, see
docs/containernet.md), e.g.::

    sudo PYTHONPATH=$PWD /opt/containernet-venv/bin/python -m pytest tests/integration/test_containernet.py
"""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mec.core import config
from mec.edge.images import UE_RECIPE, ensure_ue_image
from topologies.backends import containernet_available, get_backend, ue_containers
from topologies.loader import load
from topologies.net import MecNetwork

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not containernet_available(),
                       reason="Containernet is not importable in this Python: it lives in its own "
                       "venv (docs/containernet.md), run this test with that venv's python"),
]
TOPO = Path(__file__).resolve().parents[2] / "topologies" / "line2.yaml"


def _docker_inspect(name: str, fmt: str) -> str:
    return subprocess.run(["docker", "inspect", "--format", fmt, name], capture_output=True,
                          text=True, check=True, timeout=30).stdout.strip()


@pytest.fixture(scope="module")
def net():
    network = MecNetwork(load(TOPO), controller=None,
                         backend=get_backend("containernet", ue_image=ensure_ue_image))
    try:
        network.start()
        yield network
    finally:
        network.stop()


def test_ue_is_a_docker_host_of_the_ue_image_with_only_the_emulated_link(net):
    from mininet.node import Docker

    ue = net.hosts["u1"]
    assert net.backend.name == "containernet"
    assert isinstance(ue.node, Docker)
    for kind in ("cloudlet", "cloud"):
        assert all(not isinstance(h.node, Docker) for h in net.hosts.values() if h.kind == kind)
    container = f"mn.{ue.node.name}"
    assert container in ue_containers()
    assert _docker_inspect(container, "{{.Config.Image}}") == UE_RECIPE.tag
    assert _docker_inspect(container, "{{.HostConfig.NetworkMode}}") == "none"
    # Mininet reads a Docker host's shell output: no terminal escapes may get into it.
    assert ue.node.cmd("echo mec-ok") == "mec-ok\r\n"
    links = ue.node.cmd("ip -o link show").splitlines()
    names = sorted(re.match(r"\d+: ([^:@]+)", line).group(1) for line in links if line[:1].isdigit())
    assert names == sorted(["lo", f"{ue.node.name}-eth0"]), links
    assert f"inet {ue.ip}/" in ue.node.cmd(f"ip -o -4 addr show dev {ue.node.name}-eth0")


def test_docker_ue_pings_both_cloudlets(net):
    ue = net.hosts["u1"].node
    for cloudlet in ("c1", "c2"):  # c2 is across the shaped mec link
        out = ue.cmd(f"ping -n -c 3 -i 0.2 -W 2 {net.hosts[cloudlet].ip}")
        assert " 0% packet loss" in out, out


def test_probe_runs_in_the_docker_ue_against_a_cloudlet(net, tmp_path):
    c2 = net.hosts["c2"]
    (tmp_path / "index.html").write_text("c2-web\n")
    server = c2.node.popen([sys.executable, "-m", "http.server", str(config.SERVICE_PORT),
                            "--bind", c2.ip, "--directory", str(tmp_path)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        ue = net.hosts["u1"].node
        url = f"http://{c2.ip}:{config.SERVICE_PORT}/"
        out = ""
        for _ in range(50):  # the server binds within a second
            out = ue.cmd(f"curl -s -m 2 {url}")
            if "c2-web" in out:
                break
        assert "c2-web" in out, out
        # The project's probe, run by the image's python3 from the read-only checkout mount.
        proc = ue.popen([net.backend.ue_python, "-m", "mec.measure.probe", "--url", url, "--rate", "20",
                         "--duration", "1", "--timeout", "2", "--out", "/tmp/probe.csv"],
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        stdout, stderr = proc.communicate(timeout=30)
        done = [line for line in stdout.decode().splitlines() if line.startswith("DONE ")]
        assert done, stdout.decode() + stderr.decode()
        summary = json.loads(done[-1].split(" ", 1)[1])
        assert summary["sent"] == 20 and summary["ok"] == 20, summary
    finally:
        server.terminate()
        server.wait(timeout=5)


def test_stop_removes_the_ue_container(net):  # last test: stops the module's network
    name = net.hosts["u1"].node.name
    assert ue_containers() == [f"mn.{name}"]
    net.stop()
    assert ue_containers() == []
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert name not in netns.split()
