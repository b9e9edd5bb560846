"""The `mec` command's surface: help, version, subcommands, exit codes."""

import subprocess
import sys

import pytest

from mec import __version__
from mec.cli.main import build_parser, main


def test_version_flag(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"mec {__version__}"


def test_help_lists_every_subcommand():
    text = build_parser().format_help()
    for command in ("doctor", "clean", "setup", "smoke", "demo", "net", "run", "bench", "flows"):
        assert command in text


def test_no_subcommand_prints_help_and_fails(capsys):
    assert main([]) == 2
    assert "usage: mec" in capsys.readouterr().out


def test_unknown_subcommand_is_an_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["frobnicate"])
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_console_entry_point_runs():
    proc = subprocess.run([sys.executable, "-m", "mec.cli", "--help"], capture_output=True,
                          text=True, check=True)
    assert "MEC service replication" in proc.stdout
