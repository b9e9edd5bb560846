"""`mec image add / ls / rm`: the user's own service images in the emulated cloud registry.

``add PATH`` builds a folder's Dockerfile offline (FROM scratch or an image the project
has, e.g. mec/busybox:latest) or loads a ``docker save`` archive, then publishes it as
``mec/NAME:TAG`` beside the built-in images; ``ls`` lists every image with its compressed
(registry) and uncompressed (engine) size and layer count; ``rm`` removes a user image.
A refused image (missing Dockerfile, failing build, corrupt archive, name clash...) exits
2 with the reason and leaves nothing published. See docs/images.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Callable

from mec.edge import userimages
from mec.edge.imagesource import ImageError
from mec.host import daemons


def register(subparsers) -> None:
    p = subparsers.add_parser("image", help="add, list or remove your own service images",
                              description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="image_command", metavar="SUBCOMMAND", required=True)
    add = sub.add_parser("add", help="build a Dockerfile folder or load a `docker save` "
                         "archive, and publish it into the cloud registry")
    add.add_argument("path", type=Path, metavar="PATH",
                     help="a folder with a Dockerfile, or a .tar/.tar.gz from `docker save`")
    add.add_argument("--name", metavar="NAME[:TAG]",
                     help="its name (default: the folder's name, or the archive's single tag)")
    add.add_argument("--replace", action="store_true",
                     help="replace an image of that name added from somewhere else")
    add.set_defaults(func=_add)
    ls = sub.add_parser("ls", help="every image: sizes, layers, origin, published or not")
    ls.add_argument("--json", action="store_true", help="print JSON")
    ls.set_defaults(func=_ls)
    rm = sub.add_parser("rm", help="remove a user image from the registry and the engine")
    rm.add_argument("name", metavar="NAME[:TAG]")
    rm.set_defaults(func=_rm)


def _ready(command: str) -> int | None:
    """Exit code when the machine cannot serve COMMAND (not root, engine down), else None."""
    if os.geteuid() != 0:
        print(f"mec image {command}: the registry storage and the Docker engine are root's: "
              "run it with sudo", file=sys.stderr)
        return 2
    if not daemons.docker_engine_running():
        print(f"mec image {command}: the Docker engine does not answer: run "
              "`mec setup --services` first", file=sys.stderr)
        return 1
    return None


def _guarded(command: str, check: Callable[[], object], act: Callable[[], str]) -> int:
    """Run CHECK (argument checks that need no engine: refused at once), then, on a ready
    machine, ACT, printing what it returns; a refused image exits 2 with the reason."""
    try:
        check()
        code = _ready(command)
        if code is not None:
            return code
        print(act())
    except ImageError as exc:
        print(f"mec image {command}: {exc}", file=sys.stderr)
        return 2
    return 0


def _add(args: argparse.Namespace) -> int:
    def check() -> None:
        userimages.imagesource.source_of(args.path)
        if args.name:
            userimages.parse_name(args.name)

    def act() -> str:
        added = userimages.add(args.path, args.name, replace=args.replace)
        return (f"{added.ref}: {'replaced' if added.replaced else 'added'} from {added.origin} "
                f"{added.source}; published as {added.digest} "
                f"({_mb(added.compressed_bytes)} of compressed layers)")

    return _guarded("add", check, act)


def _ls(args: argparse.Namespace) -> int:
    code = _ready("ls")
    if code is not None:
        return code
    rows = userimages.list_images()
    if args.json:
        print(json.dumps([userimages.as_dict(r) for r in rows], indent=1))
        return 0
    print(f"{'IMAGE':28} {'COMPRESSED':>11} {'UNCOMPRESSED':>13} {'LAYERS':>6} "
          f"{'PUBLISHED':9}  ORIGIN")
    for r in rows:
        origin = "built-in" if r.origin == "built-in" else f"{r.origin} {r.source}"
        print(f"{r.ref:28} {_mb(r.compressed_bytes):>11} {_mb(r.uncompressed_bytes):>13} "
              f"{'-' if r.layers is None else r.layers:>6} {'yes' if r.published else 'no':9}  "
              f"{origin}")
    return 0


def _rm(args: argparse.Namespace) -> int:
    def act() -> str:
        deleted = userimages.remove(args.name)
        return f"{args.name}: removed ({len(deleted)} blob(s) no other image used deleted)"

    return _guarded("rm", lambda: userimages.removable(args.name), act)


def _mb(n: int | None) -> str:
    return "-" if n is None else f"{n / 1e6:.2f} MB"
