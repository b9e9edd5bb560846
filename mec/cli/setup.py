"""`mec setup`: start the shared services and build/publish the service images.

The Debian and Python packages are installed by ``scripts/setup.sh`` (which
then calls this); this part is what needs the package itself: OVS and the build
Docker engine started without systemd, and the images of the paper's three
classes built and published for the emulated cloud registry. Idempotent: on a
machine where all is done it returns in about a second.
"""

from __future__ import annotations

import argparse
import logging
import time

from mec.host import daemons

from mec.edge import images

log = logging.getLogger(__name__)


def _cmd(args: argparse.Namespace) -> int:
    both = not (args.services or args.images or args.servers)
    t0 = time.monotonic()
    if args.services or both:
        for name, what in daemons.ensure_all().items():
            print(f"{name}: {what}")
    if args.servers:
        from mec.host import servers

        print(f"test servers: {servers.start()}")
    if args.images or both:
        if not daemons.docker_engine_running():
            print("the Docker engine does not answer: run `mec setup --services` first")
            return 1
        names = args.only.split(",") if args.only else None
        for name, what in images.ensure_images(names, force=args.force_images).items():
            print(f"image {name}: {what}")
    print(f"set-up done in {time.monotonic() - t0:.1f} s")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("setup", help="start OVS and the Docker engine, build and publish "
                              "the service images (idempotent)")
    p.add_argument("--services", action="store_true", help="only start the services")
    p.add_argument("--images", action="store_true", help="only build/publish the images")
    p.add_argument("--servers", action="store_true", help="start this prefix's sshd on "
                   "127.0.0.2 and 127.0.0.3 (test servers for a split network: docs/scale-out.md)")
    p.add_argument("--only", metavar="NAMES",
                   help="comma-separated images (busybox,debian,httpd,python)")
    p.add_argument("--force-images", action="store_true", help="rebuild even if unchanged")
    p.set_defaults(func=_cmd)
