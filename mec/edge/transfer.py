"""File transfer between two cloudlets over the emulated network (paper Sec. V, Fig. 5).

The paper copied a compressed image archive between edges with scp. Here a
small HTTP file server (``busybox httpd``) is started inside the SOURCE
cloudlet's network namespace, serving only the one file, and ``curl`` run
inside the DESTINATION cloudlet's namespace fetches it: the bytes cross the
emulated (possibly shaped) links between the two. The transfer time is measured
with ``perf_counter`` around the fetch; the server's start-up is not included.
The bytes that crossed the wire are counted on the destination namespace's
interfaces around the same fetch (:class:`mec.core.netns.WireCounter`).
The server is recorded in a pid file (for ``mec clean``) and always stopped.
"""

from __future__ import annotations

import logging
import os
import random
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from mec.core import config
from mec.core.netns import WireCounter
from mec.core.proc import PidRecord, have, stop_child, wait_until, write_record

log = logging.getLogger(__name__)

PORT_RANGE = (20000, 29999)


class TransferError(RuntimeError):
    """A file did not arrive complete."""


@dataclass
class TransferResult:
    """One file moved between namespaces: its size, the bytes on the wire, the seconds.

    ``bytes`` is the file's size (the payload, checked to have arrived whole);
    ``wire_bytes`` the rx + tx bytes counted on the destination namespace's
    interfaces during the fetch: headers, ACKs, retransmissions, the HTTP exchange,
    and any other traffic of that namespace meanwhile (None without a namespace).
    """

    bytes: int
    seconds: float
    path: Path  # where the destination received it
    curl_seconds: float = 0.0  # curl's own time_total (excludes process start-up)
    wire_bytes: Optional[int] = None

    @property
    def mbit_per_s(self) -> float:
        return self.bytes * 8 / self.seconds / 1e6 if self.seconds > 0 else 0.0


def in_netns(netns_path: Optional[str], argv: list[str]) -> list[str]:
    """ARGV run inside the network namespace NETNS_PATH (unchanged if None)."""
    return ["nsenter", f"--net={netns_path}", *argv] if netns_path else list(argv)


class FileServer:
    """``busybox httpd`` serving one directory from inside a network namespace."""

    def __init__(self, netns_path: Optional[str], ip: str, directory: Path,
                 port: Optional[int] = None):
        self.netns_path = netns_path
        self.ip = ip
        self.directory = Path(directory)
        self.port = port
        self.port_fixed = port is not None
        self.process: Optional[subprocess.Popen] = None
        self.record = config.run_dir() / f"fileserver-{self.directory.name}.pid"

    @property
    def base_url(self) -> str:
        return f"http://{self.ip}:{self.port}/"

    def start(self, probe_netns: Optional[str] = None, timeout: float = 10.0) -> "FileServer":
        """Start the server; ready once a HEAD request from PROBE_NETNS gets an answer."""
        busybox = have("busybox")
        if not busybox:
            raise RuntimeError("busybox not found: install Debian package busybox-static")
        for _attempt in range(5):
            port = self.port if self.port_fixed else random.randint(*PORT_RANGE)
            argv = in_netns(self.netns_path, [busybox, "httpd", "-f", "-p", f"{self.ip}:{port}",
                                              "-h", str(self.directory)])
            self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                            start_new_session=True)
            write_record(self.record, PidRecord(f"fileserver-{self.directory.name}",
                                                self.process.pid, str(self.directory),
                                                "fileserver"))
            self.port = port
            try:
                wait_until(lambda: self._probe(probe_netns), timeout,
                           what=f"file server at {self.base_url}")
                return self
            except (TimeoutError, RuntimeError) as exc:
                err = self._stderr()
                self.stop()
                if "in use" in err and not self.port_fixed:
                    continue
                raise RuntimeError(f"file server at {self.ip}:{port} did not start: {err or exc}")
        raise RuntimeError("file server: no free port found")

    def _stderr(self) -> str:
        if self.process is None or self.process.poll() is None:
            return ""
        return (self.process.stderr.read() or b"").decode(errors="replace").strip()

    def _probe(self, probe_netns: Optional[str]) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"exited with {self.process.returncode}")
        argv = in_netns(probe_netns, ["curl", "-s", "-o", "/dev/null", "-m", "1", "-I",
                                      self.base_url])
        return subprocess.run(argv, capture_output=True, timeout=5).returncode == 0

    def stop(self) -> None:
        if self.process is not None:
            stop_child(self.process, str(self.directory))
            if self.process.stderr:
                self.process.stderr.close()
            self.process = None
        self.record.unlink(missing_ok=True)


def transfer_file(src_netns: str, src_ip: str, dst_netns: str, path: Path | str,
                  dest_dir: Optional[Path | str] = None, timeout: float = 3600) -> TransferResult:
    """Copy PATH from the namespace SRC_NETNS (address SRC_IP) into DST_NETNS over HTTP.

    The file lands in DEST_DIR (default: a new temporary folder) under its own
    name. Raises TransferError unless exactly the file's size arrived.
    """
    path = Path(path)
    size = path.stat().st_size
    dest_dir = Path(dest_dir) if dest_dir else Path(tempfile.mkdtemp(prefix=f"{config.PREFIX}-rx-"))
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / path.name
    if dest.resolve() == path.resolve():
        raise ValueError(f"destination {dest} is the source file itself")
    serve_dir = Path(tempfile.mkdtemp(prefix=f"{config.PREFIX}-tx-", dir=config.run_dir()))
    try:
        try:
            os.link(path, serve_dir / path.name)
        except OSError:  # another file system: a symlink serves the same bytes
            (serve_dir / path.name).symlink_to(path.resolve())
        server = FileServer(src_netns, src_ip, serve_dir)
        try:
            server.start(probe_netns=dst_netns)
            url = server.base_url + path.name
            argv = in_netns(dst_netns, ["curl", "-sfS", "-o", str(dest), "-w",
                                        "%{size_download} %{time_total}", url])
            with WireCounter(dst_netns) as wire:
                t0 = time.perf_counter()
                proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
                seconds = time.perf_counter() - t0
        finally:
            server.stop()
    finally:
        shutil.rmtree(serve_dir, ignore_errors=True)
    if proc.returncode != 0:
        raise TransferError(f"fetching {url} from {dst_netns} failed: {proc.stderr.strip()}")
    got_s, curl_s = proc.stdout.split()
    got = dest.stat().st_size
    if got != size or int(float(got_s)) != size:
        raise TransferError(f"{path.name}: {got} bytes arrived, {size} expected")
    log.info("transferred %s (%d bytes, %s on the wire) in %.3f s (%.1f Mbit/s)", path.name,
             size, wire.bytes, seconds, size * 8 / seconds / 1e6 if seconds else 0)
    return TransferResult(size, seconds, dest, float(curl_s), wire.bytes)
