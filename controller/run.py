"""Run the Network Manager on one controller line.

    python -m controller.run --line os-ken|ryu --ofp-port P --rest-port R \
        [--state-file F] [--topology-file F] [--pid-file F] [--drain-s S]

For ryu the eventlet ``ALREADY_HANDLED`` fix is applied and ryu-manager's main
runs in-process; os-ken 4.x has no manager, so a minimal one (AppManager +
the OpenFlowController that ofp_handler starts) is run here. A pid file is
written (default ``<run_dir>/ctl-<ofp port>.pid``) and removed on SIGTERM.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path

APP_MODULE = "controller.app"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m controller.run", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--line", choices=("os-ken", "ryu"), default="os-ken")
    p.add_argument("--ofp-host", default="127.0.0.1")
    p.add_argument("--ofp-port", type=int, default=6653)
    p.add_argument("--rest-host", default="127.0.0.1")
    p.add_argument("--rest-port", type=int, default=8080)
    p.add_argument("--state-file", default=None, help="JSON file the state persists to")
    p.add_argument("--topology-file", default=None, help="JSON topology applied at start")
    p.add_argument("--pid-file", default=None)
    p.add_argument("--drain-s", type=float, default=1.0,
                   help="seconds a re-steered UE's established connections keep the old "
                        "replica while new ones go to the new one (0 = switch all at once)")
    p.add_argument("-v", "--verbose", action="store_true")
    return p.parse_args(argv)


def _install_exit(pid_file: Path) -> None:
    def stop(signum: int, frame: object) -> None:
        app = sys.modules.get("controller.app")
        if app is not None and getattr(app, "INSTANCE", None) is not None:
            app.INSTANCE.flush_state()
        try:
            pid_file.unlink()
        except OSError:
            pass
        logging.getLogger("controller.run").info("signal %d: exiting", signum)
        os._exit(0)  # framework threads are not daemons: leave without joining them

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not 0 <= args.drain_s <= 600:
        print("--drain-s must be in 0..600", file=sys.stderr)
        return 2
    os.environ["MEC_CTL_LINE"] = args.line
    if args.line == "ryu":  # green the world before anything else creates locks
        from controller.compat import apply_eventlet_fix

        apply_eventlet_fix()
        from ryu.cmd import manager  # noqa: F401 - patches at import
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
                        stream=sys.stdout)
    sys.setswitchinterval(0.0005)  # hand the GIL over quickly: OpenFlow round trips matter
    from mec.config import run_dir
    from mec.proc import PidRecord, write_record

    pid_file = Path(args.pid_file) if args.pid_file else run_dir() / f"ctl-{args.ofp_port}.pid"
    # A record `mec clean` understands: it signals the pid only while its command line
    # still carries this run's OpenFlow port.
    write_record(pid_file, PidRecord(f"network-manager-{args.ofp_port}", os.getpid(),
                                     f"--ofp-port {args.ofp_port}", "controller"))
    _install_exit(pid_file)

    from controller import app as appmod

    appmod.CONFIG = appmod.AppConfig(
        rest_host=args.rest_host, rest_port=args.rest_port, ofp_port=args.ofp_port,
        state_file=args.state_file, topology_file=args.topology_file, drain_s=args.drain_s)
    of_args = ["--ofp-listen-host", args.ofp_host, "--ofp-tcp-listen-port", str(args.ofp_port)]
    if args.line == "ryu":
        from ryu.cmd import manager

        logging.getLogger().handlers.clear()  # ryu's log.init_log installs its own
        manager.main(args=of_args + [APP_MODULE])
    else:
        from os_ken import cfg
        from os_ken.base.app_manager import AppManager

        cfg.CONF(args=of_args, project="os_ken")
        AppManager.run_apps([APP_MODULE])
    return 0


if __name__ == "__main__":
    sys.exit(main())
