"""`mec view RUN_DIR`: replay a finished run in the browser (a live view: `--view` of
`mec net up` and `mec run NAME`)."""

from __future__ import annotations

import argparse
import sys


def cmd_view(args: argparse.Namespace) -> int:
    from mec.view.errors import ViewError
    from mec.view.replay import load_run
    from mec.view.server import ViewServer

    try:
        feed, meta = load_run(args.run)
        server = ViewServer(feed, meta, port=args.port)
    except ViewError as exc:
        print(f"mec view: {exc}", file=sys.stderr)
        return 2
    print(f"view of {args.run}: {server.url}  (Ctrl-C stops it)", flush=True)
    try:
        server.serve()
    except KeyboardInterrupt:
        pass
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "view", help="replay a run in the browser (results/NAME/TIMESTAMP)",
        description="Serve a page on 127.0.0.1 that replays a finished run with a time slider: "
                    "the topology, the UE at its access point, each service's replica roles "
                    "and the replica that answered, the probe's per-request latency with the "
                    "SLA line and failures, the event log. For a live view of a running "
                    "testbed use `mec net up FILE --view` or `mec run NAME --view`. "
                    "Exit 2 for an unknown folder or a port in use.")
    p.add_argument("run", metavar="RUN_DIR", help="a run's folder, e.g. results/handover/TIMESTAMP")
    p.add_argument("--port", type=int, default=0,
                   help="port on 127.0.0.1 (default 0: a free one, printed)")
    p.set_defaults(func=cmd_view)
