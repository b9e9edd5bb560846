"""The test servers' SSH configurations (mec.host.servers): only the project's files."""

from pathlib import Path

from mec.host import servers
from mec.host.servers import SshFiles

ROOT = Path("/var/lib/mec/ssh/xx")


def test_sshd_listens_only_on_the_given_addresses_with_the_projects_keys():
    text = servers.sshd_config_text(SshFiles(ROOT), ("127.0.0.2", "127.0.0.3"))
    lines = text.splitlines()
    assert [l for l in lines if l.startswith("ListenAddress")] == [
        "ListenAddress 127.0.0.2:22", "ListenAddress 127.0.0.3:22"]
    assert f"AuthorizedKeysFile {ROOT}/authorized_keys" in lines
    assert f"HostKey {ROOT}/host_ed25519" in lines
    assert "PasswordAuthentication no" in lines and "PermitRootLogin prohibit-password" in lines
    assert ".ssh" not in text


def test_ssh_client_uses_the_projects_key_and_known_hosts_never_home():
    text = servers.ssh_config_text(SshFiles(ROOT))
    assert f"IdentityFile {ROOT}/client_ed25519" in text
    assert f"UserKnownHostsFile {ROOT}/known_hosts" in text
    assert "IdentitiesOnly yes" in text and "StrictHostKeyChecking yes" in text
    assert "~" not in text and ".ssh" not in text


def test_ssh_command_passes_the_projects_config():
    argv = servers.ssh_command("127.0.0.3")
    assert argv[:3] == ["ssh", "-F", str(servers.files().ssh_config)]
    assert argv[-1] == "root@127.0.0.3"
