"""Start and stop the Network Manager as a subprocess (the testbed, tests, benchmarks)."""

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
from controller.settings import ControllerSettings
from mec.core import config

LOG = logging.getLogger(__name__)


@dataclass
class ControllerProcess(ControllerSettings):
    """One controller subprocess run with these settings; ``stop()`` signals only its own pid."""

    python: str = sys.executable
    log_file: Path | None = None
    proc: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def pid_file(self) -> Path:
        return config.run_dir() / f"ctl-{self.ofp_port}.pid"

    def client(self) -> NetworkManagerClient:
        return NetworkManagerClient(self.url)

    def start(self, switches: int = 0, timeout: float = 20.0) -> NetworkManagerClient:
        """Start; return when the REST API answers and ``switches`` switches are connected."""
        if self.proc is not None and self.proc.poll() is None:
            raise RuntimeError("controller already running")
        cmd = [self.python, "-m", "controller.run", *self.runner_args(),
               "--pid-file", str(self.pid_file)]
        if self.log_file is None:
            self.log_file = config.run_dir() / f"ctl-{self.ofp_port}.log"
        env = dict(os.environ)
        env["PYTHONPATH"] = str(config.REPO_DIR) + os.pathsep + env.get("PYTHONPATH", "")
        log = open(self.log_file, "ab")  # a restart keeps the dead one's log
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
                self.proc.wait(timeout=10)
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
