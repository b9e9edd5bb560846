"""Let ``sudo python3 scenarios/NAME.py`` work with whatever ``python3`` is first on PATH.

A scenario run as a script imports this module first, as ``import _bootstrap``
(Python puts the script's folder, ``scenarios/``, first on ``sys.path``); the
import calls :func:`ensure_environment` for the script. It puts the checkout
(the parent of ``scenarios/``) first on ``sys.path`` and checks that the
project's dependencies import. If they do not (a system Python without them), it re-executes the script with the
project's own interpreter, ``.venv/bin/python`` of the checkout, with the same
arguments; the environment variable ``MEC_REEXEC`` guards against a loop.

Only the standard library is used here.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

REPO_DIR = Path(__file__).resolve().parent.parent
VENV_PYTHON = REPO_DIR / ".venv" / "bin" / "python"
#: Modules a scenario needs besides the project itself.
REQUIRED = ("docker", "yaml", "networkx", "mininet", "matplotlib")
GUARD = "MEC_REEXEC"


def missing_modules(names: tuple[str, ...] = REQUIRED) -> list[str]:
    missing = []
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    return missing


def ensure_environment(script: str) -> None:
    """Make the project importable, re-executing SCRIPT under the venv's Python if needed."""
    root = str(REPO_DIR)
    if root not in sys.path:
        sys.path.insert(0, root)
    missing = missing_modules()
    if not missing:
        return
    if os.environ.get(GUARD) or not VENV_PYTHON.exists():
        why = ("the project's Python environment was found but lacks them"
               if os.environ.get(GUARD) else
               f"and the project's Python environment {VENV_PYTHON} does not exist")
        sys.stderr.write(f"{Path(script).name}: Python modules missing in {sys.executable}: "
                         f"{', '.join(missing)}; {why}. Run `sudo make setup` in {REPO_DIR}.\n")
        raise SystemExit(2)
    env = dict(os.environ)
    env[GUARD] = "1"
    # The checkout first on the path, also for the re-executed interpreter's children.
    env["PYTHONPATH"] = os.pathsep.join([root] + [p for p in env.get("PYTHONPATH", "").split(
        os.pathsep) if p and p != root])
    argv = [str(VENV_PYTHON), str(Path(script).resolve()), *sys.argv[1:]]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(argv[0], argv, env)


if __name__ == "_bootstrap":  # imported by a scenario script (see the module docstring)
    ensure_environment(sys.argv[0])
