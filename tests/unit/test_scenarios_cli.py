"""Scenario scripts and the `mec run` / `mec report` commands, without root."""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mec.cli import run as run_cmd
from mec.cli.report import _cmd as report_cmd
from mec.measure.results import ResultDir
from scenarios import _bootstrap, startup, transfer
from topologies.loader import from_dict

REPO = Path(__file__).resolve().parents[2]
VENV_PYTHON = REPO / ".venv" / "bin" / "python"


def _other_interpreters():
    """Interpreters other than the venv: system python3 and this one without site-packages."""
    out = [pytest.param([sys.executable, "-S"], id="no-site-packages")]
    if Path("/usr/bin/python3").exists():
        out.append(pytest.param(["/usr/bin/python3"], id="system-python3"))
    return out


@pytest.mark.parametrize("interpreter", _other_interpreters())
@pytest.mark.parametrize("script", ["startup", "transfer", "failover", "sync"])
def test_script_help_runs_from_another_interpreter(interpreter, script):
    if not VENV_PYTHON.exists():
        pytest.skip(f"{VENV_PYTHON} missing (run `make setup`)")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", _bootstrap.GUARD)}
    proc = subprocess.run(interpreter + [str(REPO / "scenarios" / f"{script}.py"), "--help"],
                          capture_output=True, text=True, timeout=60, env=env, cwd="/")
    assert proc.returncode == 0, proc.stderr
    assert f"usage: scenarios/{script}.py" in proc.stdout and "--reps N" in proc.stdout


def test_script_says_what_is_missing_when_reexec_cannot_help():
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env[_bootstrap.GUARD] = "1"  # as if already re-executed: no loop, a clear error
    proc = subprocess.run([sys.executable, "-S", str(REPO / "scenarios" / "startup.py"),
                           "--help"], capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 2
    assert "Python modules missing" in proc.stderr and "make setup" in proc.stderr


def _parser():
    parser = argparse.ArgumentParser(prog="mec")
    run_cmd.register(parser.add_subparsers(dest="command"))
    return parser


def test_mec_run_lists_every_scenario_and_parses_options():
    parser = _parser()
    for name in run_cmd.SCENARIOS:
        assert run_cmd.scenario_module(name).run
    args = parser.parse_args(["run", "startup", "--quick", "--images", "busybox,httpd",
                              "--controller", "none", "--out", "/tmp/x"])
    assert args.func is startup.run and args.quick and args.out == Path("/tmp/x")
    assert [s.image for s in startup.services_of(args)] == ["busybox", "httpd"]
    args = parser.parse_args(["run", "transfer", "--reps", "4", "--links", "dc,mec"])
    assert args.func is transfer.run and args.reps == 4 and args.compress_level == 1
    with pytest.raises(KeyError, match="known: startup, transfer"):
        run_cmd.scenario_module("nope")


def test_quick_defaults():
    parser = _parser()
    args = parser.parse_args(["run", "startup", "--quick"])
    assert [s.image for s in startup.services_of(args)] == ["busybox"]
    from scenarios._common import reps_of
    assert reps_of(args, startup.DEFAULT_REPS, startup.QUICK_REPS) == startup.QUICK_REPS
    args = parser.parse_args(["run", "startup"])
    assert [s.image for s in startup.services_of(args)] == ["busybox", "debian", "httpd"]
    assert reps_of(args, startup.DEFAULT_REPS, startup.QUICK_REPS) == startup.DEFAULT_REPS
    with pytest.raises(SystemExit, match="unknown"):
        startup.services_of(parser.parse_args(["run", "startup", "--images", "nginx"]))


def test_service_files_replace_the_images_and_bad_ones_exit_2(tmp_path, capsys):
    parser = _parser()
    good = tmp_path / "echo.yaml"
    good.write_text("name: echo\nimage: echo\nport: 7000\nprotocol: tcp\n"
                    "probe: {payload: hi, reply: echo}\n")
    args = parser.parse_args(["run", "startup", "--service", str(good)])
    assert [(s.name, s.image, s.port) for s in startup.services_of(args)] == [("echo", "echo", 7000)]
    with pytest.raises(SystemExit, match="give one"):
        startup.services_of(parser.parse_args(["run", "startup", "--service", str(good),
                                               "--images", "busybox"]))
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: echo\nimage: echo\nport: 7000\nprotocol: quic\n")
    for argv in (["run", "startup", "--service", str(bad)],
                 ["run", "handover", "--service", str(bad)]):
        args = parser.parse_args(argv)
        with pytest.raises(SystemExit) as exit_:
            args.func(args) if argv[1] == "handover" else startup.services_of(args)
        assert exit_.value.code == 2
        assert f"{bad}: protocol: 'quic' is not allowed (allowed: http, tcp, udp)" in \
            capsys.readouterr().err


def test_builtin_topologies_are_valid():
    topo = from_dict(startup.builtin_topology("wan"), "<t>")
    assert [c.name for c in topo.cloudlets] == ["c1"]
    assert topo.cloud.link.bw_mbps == 100 and topo.cloud.link.delay_ms == 20
    topo = from_dict(transfer.builtin_topology(["dc", "mec"]), "<t>")
    assert [(l.a, l.b, l.params.bw_mbps, l.params.delay_ms) for l in topo.links] == [
        ("s1", "s2", 100, 0), ("s1", "s3", 25, 50)]


def test_report_compares_runs_and_redraws_plots(tmp_path, capsys):
    runs = []
    for offset in (0.0, 1.0):
        rd = ResultDir("transfer", base=tmp_path)
        t = rd.table("transfer", transfer.COLUMNS)
        for rep in (1, 2, 3):
            for link, tr in (("dc", 8.0), ("mec", 32.0)):
                phases = {"export_s": 4.0, "transfer_s": tr + offset + rep * 0.1,
                          "load_s": 5.0, "launch_s": 0.3}
                t.append({"rep": rep, "link": link, **phases, "total_s": sum(phases.values()),
                          "archive_bytes": 95_000_000})
        rd.write_summary([transfer.SPEC], complete=True)
        rd.close()
        runs.append(rd.path)
    assert report_cmd(argparse.Namespace(dirs=[tmp_path], no_plots=False, json=False)) == 0
    out = capsys.readouterr().out
    assert "== transfer" in out and "#1" in out and "#2" in out
    line = [l for l in out.splitlines() if l.startswith("mec") and "transfer_s" in l][0]
    # mean of 32.1, 32.2, 32.3 in run 1 and +1 in run 2, each with its CI half-width
    assert "32.200 ±0.248" in line and "33.200 ±0.248" in line
    for run in runs:
        assert (run / "transfer.png").exists()
    assert report_cmd(argparse.Namespace(dirs=[tmp_path / "none"], no_plots=True,
                                         json=False)) == 2
