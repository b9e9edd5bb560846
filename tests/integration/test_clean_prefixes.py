"""Two prefixes at once: `mec clean` of one leaves the other running (issue 11, item 7).

Prefix A is this run's MEC_PREFIX, prefix B is A + "b", so A is a string prefix of
B (``mxb`` and ``mxbb``). Each runs tests/integration/prefix_net.py in its own
process (the prefix is read at import): line2.yaml with delay hops, registry, one
engine per cloudlet, a service container on an engine and one on the build engine.
"""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mec.core import config
from mec.core.proc import cmdline, read_record, run
from mec.host.clean import mininet_shell_name

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
A = config.PREFIX
B = A + "b"
RUN_BASE = config.RUN_DIR.parent


def _env(prefix: str) -> dict:
    return dict(os.environ, MEC_PREFIX=prefix, PYTHONPATH=str(REPO))


def mec_clean(prefix: str, *args: str) -> str:
    proc = run([sys.executable, "-m", "mec.cli", "clean", *args], check=False, timeout=300,
               env=_env(prefix))
    return proc.stdout + proc.stderr


def read_json_line(proc: subprocess.Popen, timeout: float, what: str) -> dict:
    """The next JSON line of PROC's stdout, within TIMEOUT seconds."""
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not sel.select(timeout=left):
                raise TimeoutError(f"{what}: no answer within {timeout:.0f} s")
            line = proc.stdout.readline()
            if not line:
                raise RuntimeError(f"{what}: process exited ({proc.poll()})")
            if line.startswith("{"):
                return json.loads(line)
    finally:
        sel.close()


def owned(prefix: str) -> dict[str, set]:
    """Everything on the machine that belongs to PREFIX, found without PREFIX's own code."""
    own = lambda name: (config.split_name(name) or ("",))[0] == prefix  # noqa: E731
    links = [l.split(": ")[1].split("@")[0] for l in run(["ip", "-o", "link"]).stdout.splitlines()]
    netns = [n.split()[0] for n in run(["ip", "netns", "list"]).stdout.splitlines() if n.split()]
    run_dir = RUN_BASE / prefix
    procs, shells = set(), set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            args = cmdline(int(entry.name)).split()
            if args and own(mininet_shell_name(args) or ""):
                shells.add(int(entry.name))
            elif any(str(run_dir) + "/" in a for a in args):
                procs.add(int(entry.name))
    records = [read_record(p) for p in run_dir.glob("*.pid")] if run_dir.is_dir() else []
    procs |= {r.pid for r in records if r and r.is_ours()}
    engines, containers = set(), set()
    for sock in (run_dir / "engines").glob("*/docker.sock"):
        engines.add(sock.parent.name)
        ps = run(["docker", "-H", f"unix://{sock}", "ps", "--format", "{{.Names}}"], check=False, timeout=30)
        containers |= {f"{sock.parent.name}:{n}" for n in ps.stdout.split()}
    build = run(["docker", "ps", "--format", "{{.Names}}"], timeout=30).stdout.split()
    return {
        "bridges": {b for b in run(["ovs-vsctl", "--timeout=5", "list-br"]).stdout.split() if own(b)},
        "interfaces": {l for l in links if own(l)},
        "netns": {n for n in netns if own(n)},
        "shells": shells,
        "processes": procs,
        "engines": engines,
        "containers": containers | {f"build:{n}" for n in build if own(n)},
    }


def _start(prefix: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(REPO / "tests" / "integration" / "prefix_net.py")],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, env=_env(prefix))


def _end(proc: subprocess.Popen, timeout: float = 60) -> None:
    try:
        proc.stdin.close()
        proc.wait(timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        proc.kill()
        proc.wait(timeout=10)


@pytest.fixture
def two_prefixes():
    if len(B) > 5:
        pytest.skip(f"MEC_PREFIX={A!r} leaves no room for a longer prefix")
    for p in (A, B):
        mec_clean(p)
    procs = {}
    try:
        for p in (B, A):
            procs[p] = _start(p)
            up = read_json_line(procs[p], 240, f"network of prefix {p}")
            assert up["check"]["ping_replies"] == 3, (p, up)
        yield procs
    finally:
        for proc in procs.values():
            _end(proc)
        for p in (A, B):
            mec_clean(p)


def test_clean_of_one_prefix_leaves_the_longer_prefix_running(two_prefixes):
    before = {p: owned(p) for p in (A, B)}
    for p in (A, B):
        empty = [k for k, v in before[p].items() if not v]
        assert not empty, f"prefix {p} has no {empty}: the network is not what the test needs"

    dry = mec_clean(A, "--dry-run")
    assert f"OVS bridge {A}-s1" in dry
    assert f"{B}-" not in dry and f"/{B}/" not in dry, dry

    mec_clean(A)
    _end(two_prefixes[A], timeout=5)  # its network is gone under it
    after = {p: owned(p) for p in (A, B)}
    assert {k: v for k, v in after[A].items() if v} == {}, "prefix A was not cleaned"
    for kind, things in before[B].items():
        assert after[B][kind] == things, f"cleaning {A} changed {B}'s {kind}"
    proc_b = two_prefixes[B]
    proc_b.stdin.write("check\n")
    proc_b.stdin.flush()
    state = read_json_line(proc_b, 60, f"check of prefix {B}")
    assert state.get("ping_replies") == 3 and state.get("container") == "running", state
    assert f"{B}-hold" in state["http"], state

    mec_clean(B)
    left = {k: v for k, v in owned(B).items() if v}
    assert left == {}, f"prefix {B} left {left}"
