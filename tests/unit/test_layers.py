"""The project's import layers (pyproject.toml, [tool.importlinter]) hold: `lint-imports` passes."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def test_import_contracts_are_kept():
    proc = subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "0 broken" in proc.stdout


def test_mec_holds_only_subpackages_and_the_composition_root():
    loose = sorted(p.name for p in (REPO / "mec").glob("*.py"))
    assert loose == ["__init__.py", "testbed.py"]
