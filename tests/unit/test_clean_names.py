"""`mec clean` matches names of exactly its own prefix (issue 11, item 7).

Prefix ``mxb`` is a string prefix of ``mxbb``: cleaning ``mxb`` must not take
anything of a ``mxbb`` run, whatever its topology names.
"""

import subprocess
from pathlib import Path

import pytest

from mec.core import config
from mec.host import clean
from topologies.loader import from_dict

A, B = "mxb", "mxbb"


@pytest.fixture
def prefix_a(monkeypatch):
    monkeypatch.setattr(config, "PREFIX", A)


def test_name_is_prefix_dash_rest(prefix_a):
    assert config.name("s1") == "mxb-s1" and config.name() == "mxb-"


@pytest.mark.parametrize("name,ours", [
    ("mxb-s1", True), ("mxb-s1-eth1", True), ("mxb-x3br", True), ("mxb-0", True),
    ("mxbb-s1", False), ("mxbb-bs1", False), ("mxbs1", False), ("mxbbs1", False),
    ("mxb-", False), ("mxb", False), ("", False), ("xmxb-s1", False), ("mn.mxb-u1", False),
])
def test_is_ours_is_exact(prefix_a, name, ours):
    assert config.is_ours(name) is ours


def test_split_name_reads_the_prefix_back():
    assert config.split_name("mxbb-s1-eth2") == ("mxbb", "s1-eth2")
    assert config.split_name("mxb-bs1") == ("mxb", "bs1")
    assert config.split_name("mxbbs1") is None  # no separator: not one of ours
    assert config.split_name("Mx-s1") is None and config.split_name("toolongx-s1") is None


def _topology():
    # a node named "bs1" under prefix mxb and "s1" under mxbb: PREFIX+name would collide
    return from_dict({"name": "t", "sites": [{"name": "s1", "cloudlets": [{"name": "c1"}]},
                                             {"name": "bs1", "cloudlets": [{"name": "bc1"}]}],
                      "links": [{"a": "s1", "b": "bs1"}], "ues": [{"name": "u1", "site": "bs1"}]})


def _machine_names(topo):
    return ([topo.switch_name(s) for s in topo.site_names]
            + [topo.host_name(n.name) for n in topo.hosts()])


def test_every_machine_name_of_one_prefix_is_foreign_to_the_other(monkeypatch):
    names = {}
    for p in (A, B):
        monkeypatch.setattr(config, "PREFIX", p)
        names[p] = _machine_names(_topology())
        assert all(config.is_ours(n) and len(n + "-eth99") <= 15 for n in names[p])
    assert not set(names[A]) & set(names[B])
    for p, other in ((A, B), (B, A)):
        monkeypatch.setattr(config, "PREFIX", p)
        assert not [n for n in names[other] if config.is_ours(n)]
        assert not [n for n in names[other] if config.is_ours(n + "-eth1")]


def test_names_path_is_exact_by_component():
    root = Path("/run/mec/mxb/engines/mxb-c1")
    assert clean.names_path(["dockerd", f"--exec-root={root}"], root)
    assert clean.names_path(["containerd", "--config", f"{root}/containerd/c.toml"], root)
    assert not clean.names_path(["dockerd", "--exec-root=/run/mec/mxb/engines/mxb-c10"], root)
    assert not clean.names_path(["dockerd", "--exec-root=/run/mec/mxbb/engines/mxbb-c1"], root)


def test_mininet_shell_name():
    assert clean.mininet_shell_name(["bash", "--norc", "--noediting", "-is", "mininet:mxb-s1"]) == "mxb-s1"
    assert clean.mininet_shell_name(["python3", "x.py"]) is None


LISTINGS = {
    ("ip", "netns", "list"): "mxb-c1 (id: 3)\nmxbb-c1 (id: 4)\nmxbb-bc1\nmxbc1\nother\n",
    ("ovs-vsctl", "--timeout=5", "list-br"): "mxb-s1\nmxbb-s1\nmxbb-bs1\nbr0\n",
    ("ip", "-o", "link", "show"): ("1: lo: <LOOPBACK>\n7: mxb-s1-eth1@if6: <UP>\n"
                                  "8: mxbb-s1-eth1@if9: <UP>\n9: mxbb-bs1-eth2: <UP>\n"),
    ("docker", "ps", "-a", "--format", "{{.Names}}"): "mxb-web\nmxbb-web\nmxbb-bweb\n",
}


def test_dry_clean_lists_only_this_prefix(prefix_a, monkeypatch):
    """The listing steps of `mec clean --dry-run` for mxb, while mxbb's things exist."""
    def fake_run(argv, check=True, timeout=None, **kw):
        key = next(k for k in LISTINGS if tuple(argv[:len(k)]) == k)
        return subprocess.CompletedProcess(argv, 0, LISTINGS[key], "")
    monkeypatch.setattr(clean, "run", fake_run)
    report = clean.CleanReport()
    for step in (clean.clean_netns, clean.clean_bridges, clean.clean_links, clean.clean_build_containers):
        step(report, dry=True)
    assert report.removed == ["network namespace mxb-c1", "OVS bridge mxb-s1", "interface mxb-s1-eth1",
                              "container mxb-web on the build engine"]
