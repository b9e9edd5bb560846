"""The paper topology split over two servers (this machine and the test server 127.0.0.3):
s3, its cloudlet c3 with its engine, on the other server, reached by SSH; s2-s3 and the
UE's radio link to s3 carried by VXLAN between the servers' underlays; and the handover
scenario, whose user crosses the boundary, served there."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from mec.core import config
from mec.core.proc import cmdline, run
from mec.edge.images import registry_ref
from mec.host import servers
from mec.testbed import Testbed
from topologies.loader import from_dict, load
from user_cli import REPO, mec

pytestmark = pytest.mark.integration

SERVERS = ["localhost", "127.0.0.3"]


@pytest.fixture(scope="module", autouse=True)
def test_servers():
    started = servers.sshd_pid() is None or not servers.underlay_ready()
    servers.start()
    yield
    if started:
        servers.stop()


def _ancestors(pid: int) -> list[str]:
    """The command names of PID's parents, nearest first."""
    names = []
    while pid > 1:
        status = Path(f"/proc/{pid}/status").read_text()
        pid = int(next(l.split()[1] for l in status.splitlines() if l.startswith("PPid:")))
        names.append(Path(f"/proc/{pid}/comm").read_text().strip() if pid > 1 else "init")
    return names


def test_paper_split_over_two_servers_runs_each_part_on_its_server():
    topo = load(REPO / "topologies" / "paper.yaml")
    with Testbed(topo, servers=SERVERS) as tb:
        net = tb.network
        assert tb.split.site_server == {"s1": "localhost", "s2": "localhost", "s3": "127.0.0.3"}
        # s3 and c3 were made through SSH to 127.0.0.3; s1 and c1 here, without SSH
        assert net.switches["s3"].cmd("echo $SSH_CONNECTION").split()[2] == "127.0.0.3"
        assert net.hosts["c3"].node.cmd("echo $SSH_CONNECTION").split()[2] == "127.0.0.3"
        assert net.hosts["c1"].node.cmd("echo $SSH_CONNECTION").strip() == ""
        # c3's engine: dockerd started by sshd, driven here through the SSH-forwarded socket
        engine = net.engine("c3")
        assert "sshd" in _ancestors(engine.process.pid)
        assert engine.url.endswith(".ssh.sock") and engine.client().ping()
        # the cut link and the UE's link to s3 are VXLAN devices at s3
        ports = [i.name for i in net.switches["s3"].intfList() if i.name != "lo"]
        vxlan = [p for p in ports if "vxlan" in run(["ip", "-d", "link", "show", p]).stdout]
        assert len(vxlan) == 2, ports
        # c3 pulls from the cloud registry at s1: across the servers, over the shaped links
        image = engine.client().images.pull(registry_ref("busybox", net.registry_addr))
        assert image.id
        # the UE walks to s3 (the other server) and reaches c3 and the cloud from there
        for site in ("s2", "s3"):  # wired in advance, the remote port flipped over SSH
            event = net.move("u1", site)
            assert event.prepared and event.t_attached is not None, event
        ue = net.hosts["u1"].node
        for target in (topo.cloudlet("c3").ip, topo.cloud.ip):
            out = ue.cmd(f"ping -c 3 -W 2 {target}")
            assert " 0% packet loss" in out, out
    # nothing of the run is left at either server
    assert not [b for b in run(["ovs-vsctl", "list-br"]).stdout.split() if b.startswith(
        topo.switch_name("s3"))]
    assert not engine.forward_socket.exists() and not engine.log_file.exists()


def test_the_cloud_and_its_registry_may_run_on_the_other_server():
    data = yaml.safe_load((REPO / "topologies" / "paper.yaml").read_text())
    data["cloud"]["site"] = "s3"  # the registry at s3, on 127.0.0.3
    topo = from_dict(data, "paper-cloud-s3.yaml")
    with Testbed(topo, servers=SERVERS) as tb:
        registry = tb.network.registry
        assert "sshd" in _ancestors(registry.process.pid)
        assert tb.network.hosts["cloud"].node.cmd("echo $SSH_CONNECTION").split()[2] == \
            "127.0.0.3"
        # c1, on this machine, pulls from it across the servers
        image = tb.network.engine("c1").client().images.pull(
            registry_ref("busybox", tb.network.registry_addr))
        assert image.id
    assert registry.process is None


def test_the_handover_scenario_crosses_the_server_boundary(tmp_path):
    out = mec("run", "handover", "--quick", "--strategy", "proactive", "--servers",
              ",".join(SERVERS), "--json", "--out", str(tmp_path), timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    summary = json.loads(next(tmp_path.rglob("summary.json")).read_text())
    assert summary["complete"] and summary["not_ok"] == 0, summary
    with next(tmp_path.rglob("handover.csv")).open() as f:
        rows = list(csv.DictReader(f))
    crossing = [r for r in rows if (r["from_site"], r["to_site"]) == ("s2", "s3")]
    assert crossing, rows
    for row in crossing:  # served at the other server, by the replica promoted there
        assert row["outcome"] == "ok" and "c3" in row["new"], row
        assert float(row["interruption_s"]) < 1.0, row


def test_a_killed_split_run_is_cleaned_on_both_servers():
    """`mec clean` after a split run killed with SIGKILL: nothing of the prefix is left,
    neither here nor on the test server (same machine: its processes are visible here)."""
    env = dict(os.environ, PYTHONPATH=str(REPO), MEC_PREFIX=config.PREFIX)
    proc = subprocess.Popen([sys.executable, "-m", "mec.cli", "net", "up",
                             str(REPO / "topologies" / "paper.yaml"), "--servers",
                             ",".join(SERVERS), "--hold", "120"], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        for line in proc.stdout:
            if line.startswith("holding") or time.monotonic() > deadline:
                break
        assert proc.poll() is None, "the split network did not come up"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    out = mec("clean", timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    ours = [f"mininet:{config.name()}", f"{servers.files().root}/", f"{config.ENGINES_DIR}/",
            f"{config.RUN_DIR}/engines/", f"{config.RUN_DIR}/remote/"]
    time.sleep(1)
    pids = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]
    left = [c for c in map(cmdline, pids) if any(m in c for m in ours)]
    assert left == [], left
    assert not [n for n in run(["ip", "netns", "list"]).stdout.split()
                if n.startswith(config.name())]

