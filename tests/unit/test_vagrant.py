"""The Vagrantfile: Vagrant accepts it, the VM is provisioned by scripts/setup.sh, and
Containernet by scripts/install-containernet.sh on request."""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
VAGRANTFILE = REPO / "Vagrantfile"


@pytest.mark.parametrize("containernet", ["0", "1"])
def test_vagrant_validate_accepts_the_vagrantfile(tmp_path, containernet):
    if shutil.which("vagrant") is None:
        pytest.skip("the vagrant binary is absent (scripts/setup.sh installs Debian's vagrant)")
    # Own VAGRANT_HOME / dotfile path: leave neither ~/.vagrant.d nor .vagrant/ behind.
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
           "HOME": str(tmp_path), "VAGRANT_HOME": str(tmp_path / "vagrant.d"),
           "VAGRANT_DOTFILE_PATH": str(tmp_path / "dot"), "VAGRANT_CHECKPOINT_DISABLE": "1",
           "MEC_VM_CONTAINERNET": containernet}
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


INSTALL_CONTAINERNET = REPO / "scripts" / "install-containernet.sh"


def test_containernet_is_provisioned_only_on_request():
    """MEC_VM_CONTAINERNET=1 runs scripts/install-containernet.sh once; by default never."""
    text = VAGRANTFILE.read_text()
    assert re.search(r'^CONTAINERNET = ENV\.fetch\("MEC_VM_CONTAINERNET", "0"\) == "1"$', text, re.M)
    block = _provision_blocks(text)["containernet"]
    assert 'run: CONTAINERNET ? "once" : "never"' in block
    assert 'inline: "bash #{PROJECT}/scripts/install-containernet.sh"' in block
    # Containernet comes after the set-up (it uses its mnexec and Docker engine).
    assert text.index('provision "setup"') < text.index('provision "containernet"')


def test_install_containernet_script_is_valid_shell():
    proc = subprocess.run(["bash", "-n", str(INSTALL_CONTAINERNET)], capture_output=True,
                          text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr


def test_install_containernet_pins_a_commit_into_its_own_venv():
    script = INSTALL_CONTAINERNET.read_text()
    pin = re.search(r'^CONTAINERNET_COMMIT=\$\{CONTAINERNET_COMMIT:-([0-9a-f]+)\}$', script, re.M)
    assert pin and len(pin.group(1)) == 40, "Containernet is not pinned to a full commit"
    # The checkout is verified against the pin, and the package (called `mininet`) never
    # goes into the project's .venv.
    assert '"$got" != "$CONTAINERNET_COMMIT"' in script
    assert "VENV=$PREFIX/venv" in script and ".venv/bin/pip" not in script
    # The pin is the one docs/containernet.md says the backend was checked with.
    assert pin.group(1)[:8] in (REPO / "docs" / "containernet.md").read_text()


def test_install_containernet_refuses_to_run_without_root():
    command = ["bash", str(INSTALL_CONTAINERNET)]
    if os.geteuid() == 0:  # as root the script would really install: run it as nobody
        command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *command]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1 and "run as root" in proc.stderr


def test_setup_sh_installs_what_the_vm_and_the_vagrant_check_need():
    script = (REPO / "scripts" / "setup.sh").read_text()
    apt = script.split("APT_PACKAGES=(", 1)[1].split(")", 1)[0]
    words = {w for line in apt.splitlines() for w in line.split("#")[0].split()}
    assert {"vagrant", "python3-venv", "python3-dev", "openvswitch-switch"} <= words
