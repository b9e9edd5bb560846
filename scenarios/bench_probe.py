"""How fast can the user probe send? A loopback benchmark (no root needed).

Starts a loopback HTTP server in a separate process (``--server asyncio``: a
minimal asyncio server, so the probe is the bottleneck; ``--server threaded``:
Python's ThreadingHTTPServer, like the integration tests), then runs the probe
for ``--duration`` seconds at each rate and prints one line per rate. A rate is
*sustained* when every request succeeded, the achieved send rate is within 1%
of the target and the 99th percentile of send lateness is below 5 ms::

    PYTHONPATH=. python -m scenarios.bench_probe --rates 200 1000 2000 3000 4000
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from typing import Sequence

from mec.probe import Probe

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


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rates", type=float, nargs="+", default=[200, 500, 1000, 2000, 3000, 4000])
    ap.add_argument("--duration", type=float, default=3.0)
    ap.add_argument("--port", type=int, default=18099)
    ap.add_argument("--server", choices=sorted(SERVERS), default="asyncio")
    args = ap.parse_args(argv)
    srv = subprocess.Popen([sys.executable, "-c", SERVERS[args.server], str(args.port)],
                           stdout=subprocess.PIPE, text=True)
    try:
        if srv.stdout.readline().strip() != "up":
            raise SystemExit("server did not start")
        best = 0.0
        for rate in args.rates:
            res = Probe(f"http://127.0.0.1:{args.port}/", rate=rate, duration=args.duration,
                        timeout=1.0).run_sync()
            s = res.summary()
            ok = (s["failed"] == 0 and res.achieved_rate >= 0.99 * rate and res.lag_p99_ms < 5.0)
            best = max(best, rate) if ok else best
            print(f"rate={rate:7.0f} achieved={res.achieved_rate:8.1f} ok={s['ok']} failed={s['failed']} "
                  f"lag_p50={res.lag_p50_ms:.2f}ms lag_p99={res.lag_p99_ms:.2f}ms lag_max={res.lag_max_ms:.2f}ms "
                  f"{'SUSTAINED' if ok else 'not sustained'}", flush=True)
        print(f"max sustained rate ({args.server} server): {best:.0f} req/s")
    finally:
        srv.terminate()
        srv.wait(timeout=5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
