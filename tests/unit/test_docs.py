"""Every command shown in the README and docs/ still parses, so the docs cannot rot.

Shell lines of fenced code blocks that run `mec`, a scenario script or `make` are
parsed with the real argument parsers (nothing is executed); files they name must
exist. What the commands do is covered by the integration tests (e.g. the demo).
"""

import argparse
import importlib
import re
import shlex
from pathlib import Path

import pytest

from mec.cli.main import build_parser

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELL_FENCES = ("", "sh", "bash", "console")
COMMAND = re.compile(r"^(sudo\s+)?([A-Z_]+=\S*\s+)*(mec|python3|make)\s")


def shell_lines():
    """Command lines of the shell (or unmarked) fenced blocks of every doc."""
    for doc in DOCS:
        fence = None
        for line in doc.read_text().splitlines():
            if line.startswith("```"):
                fence = line[3:].strip() if fence is None else None
                continue
            if fence not in SHELL_FENCES:
                continue
            line = line.split("  #")[0].split(" # ")[0].strip()
            line = line[2:] if line.startswith("$ ") else line
            if COMMAND.match(line + " "):
                yield pytest.param(line, id=f"{doc.name}: {line[:60]}")


def _words(line: str) -> list[str]:
    words = shlex.split(line)
    while words and (words[0] == "sudo" or re.fullmatch(r"[A-Z_]+=\S*", words[0])):
        words.pop(0)
    return words


def _check_paths(words: list[str]) -> None:
    for w in words:
        if re.fullmatch(r"(topologies|scenarios|tests|docs)/[\w./-]+\.(yaml|py|md|csv)", w):
            assert (ROOT / w).exists(), f"{w} does not exist"


class _NoExit(argparse.ArgumentParser):
    pass


@pytest.mark.parametrize("line", list(shell_lines()))
def test_documented_command_parses(line):
    words = _words(line)
    if not words:
        return
    if words[0] == "mec":
        _check_paths(words)
        if "--help" in words or "--version" in words:
            return
        build_parser().parse_args(words[1:])
    elif words[0] in ("python3", "python") and words[1:2] and words[1].startswith("scenarios/"):
        _check_paths(words)
        name = Path(words[1]).stem
        module = importlib.import_module(f"scenarios.{name}")
        parser = argparse.ArgumentParser()
        parser.add_argument("-v", "--verbose", action="store_true")
        module.add_arguments(parser)
        parser.parse_args(words[2:])
    elif words[0] == "make":
        targets = re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), re.M)
        for target in words[1:]:
            assert target in targets, f"make {target}: no such target"


def test_the_readme_states_the_two_commands():
    text = (ROOT / "README.md").read_text()
    assert "sudo make demo" in text and "sudo make test" in text
    assert "make test" in (ROOT / ".ci" / "run").read_text()
