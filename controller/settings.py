"""How one Network Manager runs: its line, ports, files and default drain, in one place.

The launcher (`controller.process.ControllerProcess`, which extends these
settings with what a parent process needs), the runner (`python -m
controller.run`, whose options are made from these fields) and the app
(`controller.app.CONFIG`) all read the same `ControllerSettings`, so a default
(the REST port, say) is written once.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass, fields

LINES = ("os-ken", "ryu")
MAX_DRAIN_S = 600.0


@dataclass
class ControllerSettings:
    """The Network Manager's settings (defaults: os-ken, OpenFlow 6653, REST 8080 on loopback)."""

    line: str = "os-ken"
    ofp_host: str = "127.0.0.1"
    ofp_port: int = 6653
    rest_host: str = "127.0.0.1"
    rest_port: int = 8080
    #: JSON file the state persists to (None: not persisted)
    state_file: str | None = None
    #: the run the controller serves: a state file saved by another run is not loaded
    #: (None: only a state file saved without a run id is)
    run_id: str | None = None
    #: JSON topology applied at start
    topology_file: str | None = None
    #: seconds a re-steered UE's established connections keep the old replica while new
    #: ones go to the new one (0 = switch every packet at once)
    drain_s: float = 1.0
    verbose: bool = False

    def __post_init__(self) -> None:
        if self.line not in LINES:
            raise ValueError(f"unknown controller line {self.line!r}: use one of {', '.join(LINES)}")
        if not 0 <= self.drain_s <= MAX_DRAIN_S:
            raise ValueError(f"drain_s must be in 0..{MAX_DRAIN_S:g}, not {self.drain_s}")

    def remove_state(self) -> None:
        """Delete the saved state file (the run it belongs to has ended)."""
        if self.state_file:
            try:
                os.remove(self.state_file)
            except FileNotFoundError:
                pass

    @property
    def url(self) -> str:
        """The REST API's base URL."""
        return f"http://{self.rest_host}:{self.rest_port}"

    def runner_args(self) -> list[str]:
        """These settings as options of ``python -m controller.run``."""
        args = ["--line", self.line, "--ofp-host", self.ofp_host, "--ofp-port", str(self.ofp_port),
                "--rest-host", self.rest_host, "--rest-port", str(self.rest_port),
                "--drain-s", str(self.drain_s)]
        if self.state_file:
            args += ["--state-file", self.state_file]
        if self.run_id:
            args += ["--run-id", self.run_id]
        if self.topology_file:
            args += ["--topology-file", self.topology_file]
        if self.verbose:
            args.append("--verbose")
        return args

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """The runner's options, one per field, with the fields' defaults."""
        d = cls()
        parser.add_argument("--line", choices=LINES, default=d.line)
        parser.add_argument("--ofp-host", default=d.ofp_host)
        parser.add_argument("--ofp-port", type=int, default=d.ofp_port)
        parser.add_argument("--rest-host", default=d.rest_host)
        parser.add_argument("--rest-port", type=int, default=d.rest_port)
        parser.add_argument("--state-file", default=d.state_file,
                            help="JSON file the state persists to")
        parser.add_argument("--run-id", default=d.run_id,
                            help="the run served: a state file of another run is not loaded")
        parser.add_argument("--topology-file", default=d.topology_file,
                            help="JSON topology applied at start")
        parser.add_argument("--drain-s", type=float, default=d.drain_s,
                            help="seconds a re-steered UE's established connections keep the old "
                                 "replica while new ones go to the new one (0 = switch all at once)")
        parser.add_argument("-v", "--verbose", action="store_true")

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "ControllerSettings":
        """The settings the runner's parsed options give (ValueError on a bad value)."""
        return cls(**{f.name: getattr(args, f.name) for f in fields(cls)})


def new_run_id() -> str:
    """A name for one run of the testbed, unique on this machine (time and pid)."""
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{time.monotonic_ns() % 10**6:06d}"
