"""`mec net check FILE`: exit 0 with a summary for good files, exit 2 with every error for bad ones."""

from __future__ import annotations

import argparse
from pathlib import Path


from mec.cli import net as cli
from mec.core import config

REPO = Path(__file__).resolve().parents[2]


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="mec")
    cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_check_good_file(capsys):
    path = str(REPO / "topologies" / "paper.yaml")
    assert run(["net", "check", path]) == 0
    out, err = capsys.readouterr()
    assert out == (f"{path}: OK: 3 sites, 3 cloudlets, 1 UE, 2 links, cloud 'cloud' at s1, 2 scheduled moves "
                   "(delay mechanism is decided at run time)\n")
    assert err == ""


def test_check_list(capsys):
    assert run(["net", "check", "--list", str(REPO / "topologies" / "line2.yaml")]) == 0
    out = capsys.readouterr().out
    assert "  link s1 - s2: mec, 25 Mbit/s, 50 ms RTT\n" in out
    assert f"    cloudlet c2 [{config.PREFIX}-c2] 10.0.1.2 (cpus unlimited, memory unlimited; link 1000 Mbit/s, 0 ms RTT)\n" in out
    assert "  move at 5 s: u1 -> s2\n" in out


def test_check_bad_file_prints_every_error_and_exits_2(capsys):
    path = str(REPO / "tests" / "data" / "bad" / "self_and_duplicate_links.yaml")
    assert run(["net", "check", path]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        f"{path}: links[1]: self-link: both ends are 's2' (a link joins two different sites)",
        f"{path}: links[2]: duplicate link between s2 and s1 (same as links[0]; at most one link per pair of sites)",
        f"{path}: 2 errors",
    ]


def test_check_missing_file(capsys, tmp_path):
    assert run(["net", "check", str(tmp_path / "none.yaml")]) == 2
    assert "none.yaml: cannot read topology file: No such file or directory" in capsys.readouterr().err


def test_net_without_subcommand_prints_help(capsys):
    assert run(["net"]) == 2
    assert "check" in capsys.readouterr().out


def test_a_subcommand_is_one_function(capsys):
    parser = argparse.ArgumentParser(prog="mec")
    cli.register(parser.add_subparsers(dest="command"))

    def cmd_hello(args):
        print(f"hello {args.file}")
        return 0

    cli.net_subparsers().add_parser("hello").add_argument("file")
    cli.net_subparsers().choices["hello"].set_defaults(func=cmd_hello)
    args = parser.parse_args(["net", "hello", "x.yaml"])
    assert args.func(args) == 0 and capsys.readouterr().out == "hello x.yaml\n"


def test_shipped_files_all_pass(capsys):
    for path in sorted((REPO / "topologies").glob("*.yaml")):
        assert run(["net", "check", str(path)]) == 0, capsys.readouterr().err


def test_check_list_shows_real_names_and_their_machine_names(tmp_path, capsys):
    f = tmp_path / "names.yaml"
    f.write_text("""name: real names
sites:
  - {name: New York, cloudlets: [{name: Edge Manhattan}]}
  - {name: São Paulo}
ues: [{name: Ana's phone, site: New York}]
links: [{a: New York, b: São Paulo}]
mobility: {"Ana's phone": {moves: [[2, São Paulo]]}}
""")
    assert run(["net", "check", "--list", str(f)]) == 0
    out = capsys.readouterr().out
    p = config.PREFIX
    assert f"  site New York: switch {p}-0newyo"[: len(f"  site New York: switch {p}-") + 9 - len(p) - 1] in out
    assert "  link New York - São Paulo: mec" in out
    assert f"    UE Ana's phone [{p}-3" in out
    assert "  move at 2 s: Ana's phone -> São Paulo" in out
