"""Test servers on this machine: the project's sshd on 127.0.0.2 and 127.0.0.3, reached as
root with the project's key, reported by `mec doctor`, removed by `mec clean`."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from mec.core.proc import alive
from mec.host import servers
from user_cli import mec

pytestmark = pytest.mark.integration


def _mec(*args: str):
    return mec(*args, timeout=300)


def test_servers_answer_over_ssh_and_clean_removes_them():
    home_ssh = Path.home() / ".ssh"
    before = sorted(p.name for p in home_ssh.iterdir()) if home_ssh.is_dir() else None
    out = _mec("setup", "--servers")
    assert out.returncode == 0, out.stdout + out.stderr
    pid = servers.sshd_pid()
    assert pid is not None
    for address in servers.DEFAULT_ADDRESSES:
        proc = subprocess.run(servers.ssh_command(address) + ["id -u; echo $SSH_CONNECTION"],
                              capture_output=True, text=True, timeout=30,
                              stdin=subprocess.DEVNULL)
        assert proc.returncode == 0, proc.stderr
        uid, connection = proc.stdout.split("\n")[:2]
        assert uid == "0" and connection.split()[2] == address  # served on that address
    assert not servers.reachable("127.0.0.4", timeout=5)  # nothing else listens
    assert servers.underlay_ready()  # the namespaces their VXLAN tunnels leave from
    doctor = _mec("doctor")
    line = next(l for l in doctor.stdout.splitlines() if "test servers" in l)
    assert f"sshd pid {pid}" in line and "127.0.0.3" in line, line
    after = sorted(p.name for p in home_ssh.iterdir()) if home_ssh.is_dir() else None
    assert after == before, "~/.ssh was touched"

    out = _mec("clean")
    assert out.returncode == 0, out.stdout + out.stderr
    assert not alive(pid)
    assert not servers.files().root.exists()
    assert not servers.reachable("127.0.0.2", timeout=5)
    assert not servers.underlay_ready()
