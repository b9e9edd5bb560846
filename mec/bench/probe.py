"""How fast can the user probe send? A loopback benchmark (no root needed).

Starts a loopback HTTP server in a separate process (``--server asyncio``: a
minimal asyncio server, so the probe is the bottleneck; ``--server threaded``:
Python's ThreadingHTTPServer, like the integration tests), then runs the probe
for ``--duration`` seconds at each rate and prints one line per rate. A rate is
*sustained* when every request succeeded, the achieved send rate is within 1%
of the target and the 99th percentile of send lateness is below 5 ms::

    mec bench probe --rates 200 1000 2000 3000 4000 [--json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from typing import Sequence

from mec.core.proc import PipeReader
from mec.measure.probe import Probe

SERVERS = {
    "asyncio": r'''
import asyncio, sys
async def handle(reader, writer):
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"HTTP/1.0 200 OK\r\nContent-Length: 6\r\n\r\nbench\n")
    await writer.drain()
    writer.close()
async def main():
    srv = await asyncio.start_server(handle, "127.0.0.1", int(sys.argv[1]), backlog=1024)
    print("up", flush=True)
    await srv.serve_forever()
asyncio.run(main())
''',
    "threaded": r'''
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"
    def do_GET(self):
        self.send_response(200); self.send_header("Content-Length", "6"); self.end_headers()
        self.wfile.write(b"bench\n")
    def log_message(self, *a): pass
class S(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024
srv = S(("127.0.0.1", int(sys.argv[1])), H)
print("up", flush=True)
srv.serve_forever()
''',
}


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--rates", type=float, nargs="+", default=[200, 500, 1000, 2000, 3000, 4000])
    ap.add_argument("--duration", type=float, default=3.0)
    ap.add_argument("--port", type=int, default=18099)
    ap.add_argument("--server", choices=sorted(SERVERS), default="asyncio")


def run(args: argparse.Namespace) -> int:
    srv = subprocess.Popen([sys.executable, "-c", SERVERS[args.server], str(args.port)],
                           stdout=subprocess.PIPE, text=True)
    rows = []
    try:
        first = PipeReader(srv.stdout, "stdout of the bench server").next_line(timeout=10)
        if first is None or first.strip() != "up":
            raise SystemExit(f"bench server did not start within 10 s (said {first!r})")
        for rate in args.rates:
            res = Probe(f"http://127.0.0.1:{args.port}/", rate=rate, duration=args.duration,
                        timeout=1.0).run_sync()
            s = res.summary()
            ok = (s["failed"] == 0 and res.achieved_rate >= 0.99 * rate and res.lag_p99_ms < 5.0)
            rows.append({"rate": rate, "achieved": round(res.achieved_rate, 1), "ok": s["ok"],
                         "failed": s["failed"], "lag_p50_ms": round(res.lag_p50_ms, 2),
                         "lag_p99_ms": round(res.lag_p99_ms, 2),
                         "lag_max_ms": round(res.lag_max_ms, 2), "sustained": ok})
            if not getattr(args, "json", False):
                r = rows[-1]
                print(f"rate={rate:7.0f} achieved={r['achieved']:8.1f} ok={r['ok']} "
                      f"failed={r['failed']} lag_p50={r['lag_p50_ms']:.2f}ms "
                      f"lag_p99={r['lag_p99_ms']:.2f}ms lag_max={r['lag_max_ms']:.2f}ms "
                      f"{'SUSTAINED' if ok else 'not sustained'}", flush=True)
    finally:
        srv.terminate()
        srv.wait(timeout=5)
    best = max([r["rate"] for r in rows if r["sustained"]] or [0])
    if getattr(args, "json", False):
        print(json.dumps({"server": args.server, "rates": rows, "max_sustained": best}, indent=1))
    else:
        print(f"max sustained rate ({args.server} server): {best:.0f} req/s")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(ap)
    return run(ap.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
