"""The `mec` command as a user runs it from an integration test: this checkout, the
test's prefix; and an example service added with `mec image add` for the test's length."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import yaml

from mec.core import config

REPO = Path(__file__).resolve().parents[2]


def mec(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """`mec ARGS...` in a subprocess (PYTHONPATH = this checkout, MEC_PREFIX = ours)."""
    env = dict(os.environ, PYTHONPATH=str(REPO), MEC_PREFIX=config.PREFIX)
    return subprocess.run([sys.executable, "-m", "mec.cli", *args], capture_output=True,
                          text=True, timeout=timeout, env=env)


@contextlib.contextmanager
def added_example(example: Path, out_dir: Path) -> Iterator[Path]:
    """EXAMPLE (a folder with a Dockerfile and service.yaml) added as `PREFIX-NAME:1.0`;
    yields a copy of its service file naming that image; the image is removed after."""
    image = f"{config.PREFIX}-{example.name}:1.0"
    proc = mec("image", "add", str(example), "--name", image, "--replace")
    assert proc.returncode == 0, proc.stderr[-2000:]
    try:
        data = yaml.safe_load((example / "service.yaml").read_text())
        data["image"] = image
        path = out_dir / f"{example.name}.yaml"
        path.write_text(yaml.safe_dump(data))
        yield path
    finally:
        mec("image", "rm", image)
