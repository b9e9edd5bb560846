"""Names and places every part of the testbed agrees on.

Everything the project creates on the machine (OVS bridges, veths, network
namespaces, Docker engines, containers, processes) carries the project's
prefix, so that `mec clean` can find and remove exactly that and nothing else.
The prefix defaults to ``mec`` and can be changed with ``MEC_PREFIX`` (used to
keep parallel runs on one machine apart).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

PREFIX: str = os.environ.get("MEC_PREFIX", "mec")
if not re.fullmatch(r"[a-z][a-z0-9]{1,4}", PREFIX):
    raise SystemExit(
        f"MEC_PREFIX={PREFIX!r} is not allowed: use 2-5 lower-case letters/digits, "
        "starting with a letter (it is part of 15-character interface names)"
    )

#: Root of the checkout (the folder holding setup.py).
REPO_DIR: Path = Path(__file__).resolve().parent.parent

#: Long-lived data: built images, registry storage, per-cloudlet engine roots.
STATE_DIR: Path = Path(os.environ.get("MEC_STATE_DIR", "/var/lib/mec"))
#: Volatile run-time files: pid files, sockets, logs of running daemons.
RUN_DIR: Path = Path(os.environ.get("MEC_RUN_DIR", "/run/mec")) / PREFIX

#: Storage directory of the image registry the emulated cloud serves.
REGISTRY_DIR: Path = STATE_DIR / "registry"
#: Data roots of the per-cloudlet Docker engines (removed by `mec clean`).
ENGINES_DIR: Path = STATE_DIR / "engines" / PREFIX

#: The REST address of the running testbed's Network Manager (written by mec.testbed,
#: read by `mec flows`).
NM_URL_FILE: Path = RUN_DIR / "nm.url"

#: Repository name under which service images are published.
IMAGE_REPO: str = "mec"
#: TCP port every service image answers HTTP on.
SERVICE_PORT: int = 8080
#: TCP port of the image registry inside the emulated cloud node.
REGISTRY_PORT: int = 5000


def run_dir() -> Path:
    """Return RUN_DIR, creating it if needed."""
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    return RUN_DIR


def is_ours(name: str) -> bool:
    """True when a bridge/interface/namespace/container name belongs to this prefix."""
    return name.startswith(PREFIX)
