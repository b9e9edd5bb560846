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

from controller.settings import ControllerSettings

APP_MODULE = "controller.app"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m controller.run", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    ControllerSettings.add_arguments(p)
    p.add_argument("--pid-file", default=None)
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
    try:
        settings = ControllerSettings.from_args(args)
    except ValueError as exc:
        print(f"controller.run: {exc}", file=sys.stderr)
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
    from mec.core.config import run_dir
    from mec.core.proc import PidRecord, write_record

    pid_file = Path(args.pid_file) if args.pid_file else run_dir() / f"ctl-{args.ofp_port}.pid"
    # A record `mec clean` understands: it signals the pid only while its command line
    # still carries this run's OpenFlow port.
    write_record(pid_file, PidRecord(f"network-manager-{args.ofp_port}", os.getpid(),
                                     f"--ofp-port {args.ofp_port}", "controller"))
    _install_exit(pid_file)

    from controller import app as appmod

    appmod.CONFIG = settings
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
