"""Servers on this machine: an ``sshd`` of the project on loopback addresses.

A testbed split over several servers reaches each server by SSH as root (Mininet
Cluster Edition runs its remote node shells through ``ssh``). To run that whole path on
one machine, each "server" is a loopback address (``127.0.0.2``, ``127.0.0.3``...) on
which the project's own ``sshd`` listens. Everything it needs is the project's and of
this prefix: host and client keys generated here, an ``authorized_keys`` that only its
sshd reads, an ``ssh_config`` that the project's ``ssh`` commands pass with ``-F``
(``~/.ssh`` is never read nor written), all under ``STATE_DIR/ssh/PREFIX``. The daemon
is started directly (there is no init system), recorded in ``RUN_DIR/sshd.pid`` like
the project's other background processes, so ``mec clean`` stops it and removes the
folder.

On real servers the same ``ssh_config`` names their addresses and the public key
``client_key.pub`` goes into root's ``authorized_keys`` there (docs/scale-out.md).

The test servers share this machine's kernel and its root network namespace, where two
VXLAN ends of one link cannot both listen (one UDP port and VNI), and where a tunnel to a
local address skips the UDP path. So each test server gets an *underlay*: a namespace
that stands for its network card (its tunnel address on a veth), all joined by a Linux
bridge in a namespace of their own, the servers' "LAN". A VXLAN end is created in its
server's underlay (its socket stays there) and moved to its switch or host
(`topologies.cluster`). Real servers need none of it: their tunnels leave from their
own address.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from mec.core import config
from mec.core.proc import (PidRecord, cmdline, have, read_record, run, terminate,
                           wait_until, write_record)
from topologies.cluster import VXLAN_OVERHEAD, Server

log = logging.getLogger(__name__)

#: The loopback addresses the test servers listen on, unless told otherwise.
DEFAULT_ADDRESSES = ("127.0.0.2", "127.0.0.3")
#: This machine as a server of a split network (Mininet Cluster Edition's name for it).
LOCAL = "localhost"
SSH_PORT = 22
PRIVSEP_DIR = Path("/run/sshd")  # sshd refuses to start without it
#: The test servers' LAN (their underlays' addresses) and its MTU: a 1500-byte emulated
#: frame plus VXLAN's overhead fits, as on a real network with jumbo frames.
UNDERLAY_NET = "10.254.0"
UNDERLAY_MTU = 1500 + VXLAN_OVERHEAD + 50


@dataclass(frozen=True)
class SshFiles:
    """Where this prefix's SSH keys and configurations are."""

    root: Path

    @property
    def host_key(self) -> Path:
        return self.root / "host_ed25519"

    @property
    def client_key(self) -> Path:
        return self.root / "client_ed25519"

    @property
    def authorized_keys(self) -> Path:
        return self.root / "authorized_keys"

    @property
    def known_hosts(self) -> Path:
        return self.root / "known_hosts"

    @property
    def sshd_config(self) -> Path:
        return self.root / "sshd_config"

    @property
    def ssh_config(self) -> Path:
        return self.root / "ssh_config"


def files() -> SshFiles:
    return SshFiles(config.STATE_DIR / "ssh" / config.PREFIX)


def pid_file() -> Path:
    return config.RUN_DIR / "sshd.pid"


def ssh_base() -> list[str]:
    """``ssh`` with the project's configuration, up to the destination."""
    return ["ssh", "-F", str(files().ssh_config)]


def ssh_command(address: str) -> list[str]:
    """The ``ssh`` argument list that reaches ADDRESS as root with the project's key."""
    return [*ssh_base(), f"root@{address}"]


def underlay_netns(index: int) -> str:
    return config.name(f"ul{index}")


def lan_netns() -> str:
    return config.name("ulan")


def members(addresses: tuple[str, ...] = DEFAULT_ADDRESSES) -> list[Server]:
    """This machine (``localhost``, reached without SSH) and the test servers, as a split
    network sees them (`topologies.cluster.Server`), each with its underlay."""
    return [Server(name=LOCAL, address=None, tunnel_ip=f"{UNDERLAY_NET}.1",
                   underlay=underlay_netns(0))] + [
        Server(name=a, address=a, tunnel_ip=f"{UNDERLAY_NET}.{i + 2}",
               underlay=underlay_netns(i + 1)) for i, a in enumerate(addresses)]


def test_servers(addresses: tuple[str, ...] = DEFAULT_ADDRESSES) -> list[Server]:
    """The test servers (reached by SSH) with their underlays."""
    return members(addresses)[1:]


def resolve(names: list[str]) -> dict[str, Server]:
    """The servers NAMES (``--servers``, a topology's ``servers:``) stand for: ``localhost``
    is this machine; this prefix's test servers come with their underlays (`mec setup
    --servers` must have made them); any other name is a real server reached by SSH, whose
    tunnels leave from its own address (and this machine's from its route to it)."""
    test = {s.name: s for s in members()}
    real = [n for n in names if n not in test]
    if not real:
        if not underlay_ready() or (any(n != LOCAL for n in names) and sshd_pid() is None):
            raise ValueError(f"servers {', '.join(names)}: the test servers are not running: "
                             "sudo mec setup --servers")
        return {n: test[n] for n in names}
    if any(n in test and n != LOCAL for n in names):
        raise ValueError(f"servers {', '.join(names)}: this machine's test servers "
                         f"({', '.join(DEFAULT_ADDRESSES)}) and real servers cannot be mixed")
    out = {}
    for name in real:
        try:
            out[name] = Server(name=name, address=name, tunnel_ip=socket.gethostbyname(name))
        except OSError as exc:
            raise ValueError(f"server {name}: no address: {exc}") from None
    if LOCAL in names:
        route = run(["ip", "route", "get", out[real[0]].tunnel_ip], timeout=10).stdout.split()
        out[LOCAL] = Server(name=LOCAL, address=None, tunnel_ip=route[route.index("src") + 1])
    return {n: out[n] for n in names}


def underlay_ready(addresses: tuple[str, ...] = DEFAULT_ADDRESSES) -> bool:
    names = set(run(["ip", "netns", "list"], check=False).stdout.split())
    return {lan_netns(), *(underlay_netns(i) for i in range(len(addresses) + 1))} <= names


def start_underlay(addresses: tuple[str, ...] = DEFAULT_ADDRESSES) -> bool:
    """Create the test servers' underlays and their LAN (see module doc) unless they
    exist; True if created. Everything is a namespace of this prefix: `mec clean` removes it."""
    if underlay_ready(addresses):
        return False
    lan = lan_netns()
    steps = [["ip", "netns", "add", lan], ["ip", "-n", lan, "link", "set", "lo", "up"],
             ["ip", "-n", lan, "link", "add", "name", "lan", "type", "bridge"],  # MTU: its ports' 
             ["ip", "-n", lan, "link", "set", "lan", "up"]]
    for i, server in enumerate(members(addresses)):
        ns, port = server.underlay, f"s{i}"
        steps += [["ip", "netns", "add", ns], ["ip", "-n", ns, "link", "set", "lo", "up"],
                  ["ip", "link", "add", "name", port, "netns", lan, "mtu", str(UNDERLAY_MTU), "type",
                   "veth", "peer", "name", "eth0", "netns", ns, "mtu", str(UNDERLAY_MTU)],
                  ["ip", "-n", lan, "link", "set", port, "master", "lan", "up"],
                  ["ip", "-n", ns, "addr", "add", f"{server.tunnel_ip}/24", "dev", "eth0"],
                  ["ip", "-n", ns, "link", "set", "eth0", "up"]]
    try:
        for argv in steps:
            run(argv, timeout=20)
    except Exception:
        remove_underlay(addresses)  # nothing half-made is left
        raise
    return True


def remove_underlay(addresses: tuple[str, ...] = DEFAULT_ADDRESSES) -> None:
    for ns in (lan_netns(), *(underlay_netns(i) for i in range(len(addresses) + 1))):
        run(["ip", "netns", "del", ns], check=False, timeout=20)


def _keygen(path: Path, comment: str) -> None:
    if not path.exists():
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
            timeout=30)


def sshd_config_text(f: SshFiles, addresses: tuple[str, ...]) -> str:
    """This prefix's sshd: root by key only, only the project's key, only these addresses."""
    lines = [f"ListenAddress {a}:{SSH_PORT}" for a in addresses] + [
        f"HostKey {f.host_key}",
        f"AuthorizedKeysFile {f.authorized_keys}",
        f"PidFile {config.RUN_DIR / 'sshd.real.pid'}",
        "PermitRootLogin prohibit-password",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "UsePAM no",
        "PermitTunnel no",
        # the Docker SDK reaches a remote engine's socket by ``ssh -L`` (sshd lets no local
        # forwarding through, socket or TCP, unless TCP forwarding is allowed too)
        "AllowTcpForwarding local",
        "AllowStreamLocalForwarding local",
        "X11Forwarding no",
        "PrintMotd no",
        "MaxStartups 100:30:200",  # a bring-up opens many sessions at once
        "MaxSessions 100",
        "AcceptEnv MEC_PREFIX MEC_STATE_DIR MEC_RUN_DIR PYTHONPATH",
    ]
    return "\n".join(lines) + "\n"


def ssh_config_text(f: SshFiles) -> str:
    """The client side: the project's key and known hosts, never ~/.ssh's."""
    return "\n".join([
        "Host *",
        "    User root",
        f"    IdentityFile {f.client_key}",
        "    IdentitiesOnly yes",
        f"    UserKnownHostsFile {f.known_hosts}",
        "    StrictHostKeyChecking yes",
        "    BatchMode yes",
        "    ConnectTimeout 10",
        "    LogLevel ERROR",
        "    SendEnv MEC_PREFIX MEC_STATE_DIR MEC_RUN_DIR PYTHONPATH",
        # one connection per server, shared by every command and node shell (a new one
        # costs ~0.25 s of key exchange); it ends 30 s after its last user, or with sshd
        "    ControlMaster auto",
        f"    ControlPath {f.root}/cm-%C",
        "    ControlPersist 30",
    ]) + "\n"


def prepare(addresses: tuple[str, ...]) -> SshFiles:
    """Generate the keys and write both configurations (idempotent)."""
    f = files()
    f.root.mkdir(parents=True, exist_ok=True)
    os.chmod(f.root, 0o700)
    _keygen(f.host_key, f"{config.PREFIX} test servers")
    _keygen(f.client_key, f"{config.PREFIX} testbed")
    f.authorized_keys.write_text(Path(f"{f.client_key}.pub").read_text())
    host_pub = Path(f"{f.host_key}.pub").read_text().split()
    f.known_hosts.write_text("".join(f"{a} {host_pub[0]} {host_pub[1]}\n" for a in addresses))
    f.sshd_config.write_text(sshd_config_text(f, addresses))
    f.ssh_config.write_text(ssh_config_text(f))
    for path in (f.authorized_keys, f.known_hosts, f.sshd_config, f.ssh_config):
        os.chmod(path, 0o600)
    return f


def sshd_pid() -> int | None:
    record = read_record(pid_file())
    return record.pid if record and record.is_ours() else None


def reachable(address: str, timeout: float = 15) -> bool:
    """Whether ``ssh root@ADDRESS true`` succeeds with the project's key."""
    try:
        proc = subprocess.run(ssh_command(address) + ["true"], capture_output=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return False
    return proc.returncode == 0


def _listening(address: str) -> bool:
    try:
        with socket.create_connection((address, SSH_PORT), timeout=1):
            return True
    except OSError:
        return False


def start(addresses: tuple[str, ...] = DEFAULT_ADDRESSES) -> str:
    """Start this prefix's sshd on ADDRESSES and their underlays unless they run; returns
    what was done."""
    sshd = have("sshd") or ("/usr/sbin/sshd" if Path("/usr/sbin/sshd").exists() else None)
    if not sshd:
        raise RuntimeError("sshd not found: apt-get install openssh-server (sudo make setup)")
    f = prepare(addresses)
    underlay = (f"; underlays {', '.join(s.tunnel_ip for s in members(addresses))} "
                f"on a LAN of MTU {UNDERLAY_MTU}" if start_underlay(addresses) else "")
    if sshd_pid() is not None:
        return f"already running on {', '.join(addresses)}{underlay}"
    PRIVSEP_DIR.mkdir(mode=0o755, exist_ok=True)
    run([sshd, "-t", "-f", str(f.sshd_config)], timeout=30)  # a bad config fails here, named
    log_path = config.run_dir() / "sshd.log"
    # -D: stay in the foreground (so the pid is the daemon's), -e: log to our file.
    with open(log_path, "ab") as logfile:
        proc = subprocess.Popen([sshd, "-D", "-e", "-f", str(f.sshd_config)], stdout=logfile,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, close_fds=True)
    write_record(pid_file(), PidRecord("sshd", proc.pid, str(f.sshd_config), kind="sshd"))
    try:
        wait_until(lambda: all(_listening(a) for a in addresses), timeout=20,
                   what=f"sshd to listen on {', '.join(addresses)} (log: {log_path})")
    except Exception:
        if proc.poll() is not None:
            raise RuntimeError(f"sshd exited ({proc.returncode}): see {log_path}") from None
        raise
    return f"started sshd (pid {proc.pid}) on {', '.join(addresses)}{underlay}"


def end_connections(addresses: tuple[str, ...] = DEFAULT_ADDRESSES) -> int:
    """End the shared SSH connections (ControlMaster) to ADDRESSES; returns how many ran
    (a connection outlives sshd's listener until its idle time ends)."""
    ended = 0
    if files().ssh_config.exists():
        for address in addresses:
            proc = subprocess.run([*ssh_base(), "-O", "exit", f"root@{address}"],
                                  capture_output=True, timeout=10, stdin=subprocess.DEVNULL)
            ended += proc.returncode == 0
    # a master whose socket was replaced (a killed run's) is found by its socket's path
    marker = f"{files().root}/cm-"
    for pid in (int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()):
        if cmdline(pid).startswith(f"ssh: {marker}") and terminate(pid, marker):
            ended += 1
    return ended


def stop(addresses: tuple[str, ...] = DEFAULT_ADDRESSES) -> None:
    """Stop this prefix's sshd and remove the underlays (the keys stay: `remove_files`)."""
    end_connections(addresses)
    record = read_record(pid_file())
    if record is not None and record.is_ours():
        terminate(record.pid, record.marker)
    pid_file().unlink(missing_ok=True)
    remove_underlay(addresses)


def remove_files() -> bool:
    """Remove this prefix's keys and configurations; True if there were any."""
    root = files().root
    if not root.exists():
        return False
    shutil.rmtree(root, ignore_errors=True)
    return True
