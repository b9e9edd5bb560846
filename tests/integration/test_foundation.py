"""The foundation on a real machine: OVS userspace TCP, engines, images, smoke, clean, doctor."""

import os
import signal
import subprocess
import sys
import time

import pytest

from mec.core import config
from mec.host.clean import clean
from mec.core.proc import run

pytestmark = pytest.mark.integration
P = config.name()


def _ours_left() -> dict:
    """Every prefixed resource still on the machine."""
    bridges = [b for b in run(["ovs-vsctl", "list-br"]).stdout.split() if config.is_ours(b)]
    links = [l.split(": ")[1].split("@")[0] for l in run(["ip", "-o", "link"]).stdout.splitlines()]
    netns = [n.split()[0] for n in run(["ip", "netns", "list"]).stdout.splitlines() if n.split()]
    engines = list((config.RUN_DIR / "engines").glob("*")) if (config.RUN_DIR / "engines").exists() else []
    shells = run(["pgrep", "-f", f"mininet:{P}"], check=False).stdout.split()
    return {
        "bridges": bridges,
        "links": [l for l in links if config.is_ours(l)],
        "netns": [n for n in netns if config.is_ours(n)],
        "engines": engines,
        "shells": shells,
    }


@pytest.fixture
def two_hosts_on_ovs():
    """Two named namespaces joined by a userspace OVS bridge (standalone mode)."""
    br, a, b = f"{P}tbr0", f"{P}tha", f"{P}thb"
    try:
        run(["ovs-vsctl", "add-br", br, "--", "set", "bridge", br, "datapath_type=netdev",
             "fail-mode=standalone"])
        for i, ns in enumerate((a, b), start=1):
            run(["ip", "netns", "add", ns])
            run(["ip", "link", "add", f"{ns}o", "type", "veth", "peer", "name", f"{ns}i"])
            run(["ip", "link", "set", f"{ns}i", "netns", ns])
            run(["ip", "-n", ns, "addr", "add", f"10.77.0.{i}/24", "dev", f"{ns}i"])
            run(["ip", "-n", ns, "link", "set", f"{ns}i", "up"])
            run(["ip", "-n", ns, "link", "set", "lo", "up"])
            run(["ip", "link", "set", f"{ns}o", "up"])
            run(["ovs-vsctl", "add-port", br, f"{ns}o"])
        yield a, b
    finally:
        run(["ovs-vsctl", "--if-exists", "del-br", br], check=False)
        for ns in (a, b):
            run(["ip", "link", "del", f"{ns}o"], check=False)
            run(["ip", "netns", "del", ns], check=False)


def test_tcp_crosses_a_userspace_ovs_bridge(two_hosts_on_ovs):
    """Catches the OVS checksum trap: ping works without TSO, TCP does not."""
    a, b = two_hosts_on_ovs
    server = subprocess.Popen(["ip", "netns", "exec", b, "iperf3", "-s", "-1", "-p", "5201"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.3)  # iperf3 has no readiness signal; the client retries below anyway
        for _ in range(20):
            proc = run(["ip", "netns", "exec", a, "iperf3", "-c", "10.77.0.2", "-p", "5201",
                        "-t", "1", "-J"], check=False, timeout=20)
            if proc.returncode == 0:
                break
            time.sleep(0.2)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        import json
        bps = json.loads(proc.stdout)["end"]["sum_received"]["bits_per_second"]
        assert bps > 100e6, f"TCP through OVS only reached {bps / 1e6:.1f} Mbit/s"
    finally:
        server.kill()
        server.wait()


def test_smoke_pulls_runs_and_answers_then_leaves_nothing():
    from mec.host.smoke import run_smoke

    result = run_smoke("busybox")
    assert result["answer"] == f"{P}c0/smoke"
    assert result["image"].endswith("/mec/busybox:latest")
    left = _ours_left()
    assert not any(left.values()), (left, run(["ps", "-o", "pid,ppid,stat,args", "-p", ",".join(left["shells"] or ["1"])], check=False).stdout)


def test_clean_after_kill_minus_9_then_next_run_works():
    env = dict(os.environ)
    proc = subprocess.Popen([sys.executable, "-m", "mec.cli", "smoke", "--hold", "120"],
                            stdout=subprocess.PIPE, text=True, env=env, start_new_session=True)
    try:
        for line in proc.stdout:
            if "holding" in line:
                break
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        left = _ours_left()
        assert left["bridges"] and left["engines"], f"the killed run left nothing? {left}"
        report = clean()
        assert not report.errors, report.errors
        assert any("docker engine" in item for item in report.removed)
        assert not any(_ours_left().values()), _ours_left()
        from mec.host.smoke import run_smoke
        assert run_smoke("busybox")["answer"] == f"{P}c0/smoke"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        clean()


def test_doctor_is_green():
    proc = subprocess.run([sys.executable, "-m", "mec.cli", "doctor"], capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stdout
    assert "all required checks passed" in proc.stdout
