"""Names and places every part of the testbed agrees on.

Everything the project creates on the machine (OVS bridges, veths, network
namespaces, Docker engines, containers, processes) carries the project's
prefix, so that `mec clean` can find and remove exactly that and nothing else.
The prefix defaults to ``mec`` and can be changed with ``MEC_PREFIX`` (used to
keep parallel runs on one machine apart).

Machine names are ``PREFIX + "-" + rest`` (see :func:`name`). A prefix is made of
lower-case letters and digits only, so the ``-`` ends it: the names of prefix
``mec`` (``mec-s1``) and of prefix ``mecb`` (``mecb-s1``) never match each other,
and :func:`split_name` reads the prefix back out of any name. Folders are per
prefix (``/run/mec/PREFIX``, ``/var/lib/mec/engines/PREFIX``), a path component
of their own.
"""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata
from pathlib import Path

#: What a prefix may be: no ``-`` (the separator of machine names) and short enough
#: for 15-character interface names.
PREFIX_RE = re.compile(r"[a-z][a-z0-9]{1,4}")
#: Separates the prefix from the rest of a machine name; never part of a prefix.
NAME_SEP = "-"

PREFIX: str = os.environ.get("MEC_PREFIX", "mec")
if not PREFIX_RE.fullmatch(PREFIX):
    raise SystemExit(
        f"MEC_PREFIX={PREFIX!r} is not allowed: use 2-5 lower-case letters/digits, "
        "starting with a letter (it is part of 15-character interface names)"
    )

#: Root of the checkout (the folder holding setup.py).
REPO_DIR: Path = Path(__file__).resolve().parent.parent.parent

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


def name(rest: str = "") -> str:
    """The machine name (bridge, interface, namespace, node, container) REST of this prefix.

    ``name("s1")`` is ``mec-s1``; ``name()`` is ``mec-``, what every such name starts with.
    """
    return f"{PREFIX}{NAME_SEP}{rest}"


#: What Docker accepts in a container name (after its first character).
_DOCKER_SAFE = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*")


def docker_safe(text: str) -> str:
    """TEXT when Docker accepts it in a container name, else its ASCII letters and digits
    (accents dropped, other characters as ``_``) and a short hash of TEXT that keeps two
    such texts apart: ``"Milano Nord"`` -> ``Milano_Nord-3f2a1b``."""
    if _DOCKER_SAFE.fullmatch(text):
        return text
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-zA-Z0-9_.-]", "_", plain).strip("_.-") or "x"
    return f"{slug}-{hashlib.sha1(text.encode()).hexdigest()[:6]}"


def split_name(machine_name: str) -> tuple[str, str] | None:
    """(prefix, rest) of a name built by :func:`name` (any prefix), or None if it is not one."""
    head, sep, rest = machine_name.partition(NAME_SEP)
    if not sep or not rest or not PREFIX_RE.fullmatch(head):
        return None
    return head, rest


def is_ours(machine_name: str) -> bool:
    """True when a bridge/interface/namespace/container name belongs to exactly this prefix.

    ``mec-s1`` is prefix ``mec``'s; ``mecb-s1`` (prefix ``mecb``) and ``mecs1`` are not.
    """
    parts = split_name(machine_name)
    return parts is not None and parts[0] == PREFIX
