"""Start and stop the Network Manager as a subprocess (tests, network builder, bench)."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from controller.client import NetworkManagerClient, NetworkManagerError
from mec import config

LOG = logging.getLogger(__name__)


@dataclass
class ControllerProcess:
    """One controller subprocess; ``stop()`` signals only its own pid."""

    line: str = "os-ken"
    ofp_port: int = 6653
    rest_port: int = 8080
    state_file: str | None = None
    topology_file: str | None = None
    python: str = sys.executable
    verbose: bool = False
    #: the controller's default drain period (None: its own default)
    drain_s: float | None = None
    log_file: Path | None = None
    proc: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}"

    @property
    def pid_file(self) -> Path:
        return config.run_dir() / f"ctl-{self.ofp_port}.pid"

    def client(self) -> NetworkManagerClient:
        return NetworkManagerClient(self.url)

    def start(self, switches: int = 0, timeout: float = 20.0) -> NetworkManagerClient:
        """Start; return when the REST API answers and ``switches`` switches are connected."""
        if self.proc is not None and self.proc.poll() is None:
            raise RuntimeError("controller already running")
        cmd = [self.python, "-m", "controller.run", "--line", self.line,
               "--ofp-port", str(self.ofp_port), "--rest-port", str(self.rest_port),
               "--pid-file", str(self.pid_file)]
        if self.state_file:
            cmd += ["--state-file", self.state_file]
        if self.topology_file:
            cmd += ["--topology-file", self.topology_file]
        if self.verbose:
            cmd.append("--verbose")
        if self.drain_s is not None:
            cmd += ["--drain-s", str(self.drain_s)]
        if self.log_file is None:
            self.log_file = config.run_dir() / f"ctl-{self.ofp_port}.log"
        env = dict(os.environ)
        env["PYTHONPATH"] = str(config.REPO_DIR) + os.pathsep + env.get("PYTHONPATH", "")
        log = open(self.log_file, "wb")
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                     cwd=str(config.REPO_DIR), start_new_session=True)
        log.close()
        client = self.client()
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise NetworkManagerError(
                    f"controller exited with {self.proc.returncode}; log: {self.log_file}")
            try:
                client.wait_ready(timeout=min(0.5, max(0.05, deadline - time.monotonic())),
                                  switches=switches)
                return client
            except NetworkManagerError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise NetworkManagerError(
                        f"controller not ready in {timeout}s; log: {self.log_file}") from None

    def wait_switches(self, n: int, timeout: float = 20.0) -> None:
        self.client().wait_ready(timeout=timeout, switches=n)

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM our own pid (SIGKILL after ``timeout``)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        try:
            self.pid_file.unlink()
        except OSError:
            pass

    def __enter__(self) -> "ControllerProcess":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
