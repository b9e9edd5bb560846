"""The Vagrantfile: Vagrant accepts it, and the VM is provisioned by scripts/setup.sh."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
VAGRANTFILE = REPO / "Vagrantfile"


def test_vagrant_validate_accepts_the_vagrantfile(tmp_path):
    if shutil.which("vagrant") is None:
        pytest.skip("the vagrant binary is absent (scripts/setup.sh installs Debian's vagrant)")
    # Own VAGRANT_HOME / dotfile path: leave neither ~/.vagrant.d nor .vagrant/ behind.
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
           "HOME": str(tmp_path), "VAGRANT_HOME": str(tmp_path / "vagrant.d"),
           "VAGRANT_DOTFILE_PATH": str(tmp_path / "dot"), "VAGRANT_CHECKPOINT_DISABLE": "1"}
    # --ignore-provider: no hypervisor here; the provisioners, synced folders and all
    # other settings are still checked.
    proc = subprocess.run(["vagrant", "validate", "--ignore-provider"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "validated successfully" in proc.stdout


def _provision_blocks(text: str) -> dict[str, str]:
    """name -> source text of each `config.vm.provision "NAME", ...` up to the next one."""
    parts = re.split(r'(?m)^\s*config\.vm\.provision\s+"([^"]+)"', text)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts), 2)}


def test_vm_is_provisioned_by_setup_sh_in_the_synced_checkout():
    text = VAGRANTFILE.read_text()
    project = re.search(r'^PROJECT = "([^"]+)"', text, re.M).group(1)
    assert re.search(r'synced_folder "\.", PROJECT', text), "the checkout is not synced to PROJECT"
    setup = _provision_blocks(text)["setup"]
    assert 'run: "never"' not in setup
    assert 'inline: "bash #{PROJECT}/scripts/setup.sh"' in setup
    assert (REPO / "scripts" / "setup.sh").is_file()
    assert project.startswith("/")


def test_vagrantfile_carries_no_recipe_building_other_projects():
    """Containernet is installed by its own instructions, never by a recipe of ours."""
    text = VAGRANTFILE.read_text()
    assert "git clone" not in text and "containernet" not in text.lower()


def test_setup_sh_installs_what_the_vm_and_the_vagrant_check_need():
    script = (REPO / "scripts" / "setup.sh").read_text()
    apt = script.split("APT_PACKAGES=(", 1)[1].split(")", 1)[0]
    words = {w for line in apt.splitlines() for w in line.split("#")[0].split()}
    assert {"vagrant", "python3-venv", "python3-dev", "openvswitch-switch"} <= words
