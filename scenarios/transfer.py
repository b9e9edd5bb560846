"""Moving a service image between two edges, phase by phase (paper Fig. 5).

Topology (built in): a star of sites. Cloudlet c1 at s1 holds the image (pulled
once from the cloud registry before measuring, not timed); each link profile
to compare gets its own site s2, s3, ... with cloudlet c2, c3, ..., joined to s1
by a link of that profile (default: `dc` = 100 Mbit/s, and `mec` = 25 Mbit/s,
50 ms RTT). So the bytes from c1 to c2 cross only the first link, to c3 only
the second, and one testbed serves every profile; repetitions alternate between
the profiles.

Per repetition and profile, the destination's cache is emptied and the phases
are timed one by one:

* export: ``docker save`` of the image on c1, gzip-compressed (``--compress-level``,
  default 1: for httpd ~4 s to 95 MB, against ~13 s to 87 MB at level 6 with
  Python's gzip on this machine: level 1 is faster end to end on both links);
* transfer: the archive fetched over HTTP from c1 by the destination, across the
  emulated link;
* load: ``docker load`` on the destination;
* launch: deploy (create + start) to the first HTTP answer, fetched inside the
  destination cloudlet's namespace.

    sudo python3 scenarios/transfer.py --reps 5
    sudo python3 scenarios/transfer.py --quick          # 2 reps of busybox
    mec run transfer --links dc,mec,wan --image debian
"""

from __future__ import annotations

if __name__ == "__main__":  # run as a script: find the checkout and its Python environment
    import _bootstrap  # noqa: F401 (scenarios/ is first on sys.path when a script runs)

import argparse
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Mapping

from mec.measure.results import ResultDir, SummarySpec
from scenarios import _common

log = logging.getLogger(__name__)

NAME = "transfer"
DEFAULT_LINKS = ("dc", "mec")
DEFAULT_IMAGE, QUICK_IMAGE = "httpd", "busybox"
DEFAULT_REPS, QUICK_REPS = 5, 2
COLUMNS = ("rep", "link", "bw_mbps", "delay_ms", "image", "src", "dst", "archive_bytes",
           "wire_bytes", "export_s", "transfer_s", "load_s", "start_s", "launch_s", "total_s",
           "transfer_mbps")
PHASES = ("export_s", "transfer_s", "load_s", "launch_s")
SPEC = SummarySpec(NAME, group_by=("link",),
                   metrics=PHASES + ("total_s", "archive_bytes", "transfer_mbps", "start_s"))
TABLE_METRICS = {NAME: PHASES + ("total_s", ("archive_bytes", "MB", 1e-6),
                                 ("transfer_mbps", "Mbit/s", 1.0))}


def builtin_topology(links: list[str]) -> dict[str, Any]:
    """Star: s1 (c1, the cloud) joined to s2.. (c2..) by one link of each profile in LINKS."""
    sites = [{"name": "s1", "cloudlets": [{"name": "c1"}]}]
    edges = []
    for i, profile in enumerate(links, start=2):
        sites.append({"name": f"s{i}", "cloudlets": [{"name": f"c{i}"}]})
        edges.append({"a": "s1", "b": f"s{i}", "profile": profile})
    return {"name": "transfer", "sites": sites,
            "cloud": {"name": "cloud", "site": "s1", "link": "wan"}, "ues": [], "links": edges}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--links", default=",".join(DEFAULT_LINKS), metavar="PROFILES",
                        help="comma-separated link profiles compared (default dc,mec; "
                             "built-in: mec, dc, wan, lan)")
    parser.add_argument("--image", default=None,
                        help=f"the built-in service whose image is moved (default "
                             f"{DEFAULT_IMAGE}; --quick: {QUICK_IMAGE})")
    _common.add_service_argument(parser)
    parser.add_argument("--compress-level", type=int, default=1, choices=range(1, 10),
                        metavar="1-9", help="gzip level of the exported archive (default 1)")
    parser.add_argument("--ready-timeout", type=float, default=60.0, metavar="S",
                        help="longest wait for the first good answer to the health check (default 60)")
    _common.add_common_arguments(parser, DEFAULT_REPS, QUICK_REPS, topology=False)


def make_plots(run_dir: Path, groups: Mapping[str, list]) -> list[Path]:
    from mec.measure.plots import transfer_figure
    from topologies.model import PROFILES

    labels = {}
    for g in groups[NAME]:
        lk = g["group"]["link"]
        p = PROFILES.get(lk)
        labels[lk] = (f"{lk}\n{p.bw_mbps:g} Mbit/s" + (f", {p.delay_ms:g} ms" if p.delay_ms else "")
                      if p is not None and p.bw_mbps else lk)
    return [transfer_figure(groups[NAME], run_dir / "transfer.png", link_labels=labels)]


def run(args: argparse.Namespace) -> int:
    from mec.edge.images import RECIPES
    from mec.measure.progress import Progress
    from topologies.loader import from_dict

    _common.quiet_logs(args)
    reps = _common.reps_of(args, DEFAULT_REPS, QUICK_REPS)
    if args.image is not None and args.image not in RECIPES:
        raise SystemExit(f"--image {args.image!r}: choose from {', '.join(RECIPES)}")
    service = _common.service_of(args, QUICK_IMAGE if args.quick else DEFAULT_IMAGE)
    image = service.image
    links = [p.strip() for p in args.links.split(",") if p.strip()]
    if not links or len(set(links)) != len(links):
        raise SystemExit(f"--links {args.links!r}: give distinct profile names")
    data = builtin_topology(links)
    topo = from_dict(data, "<transfer built-in>")  # rejects unknown profiles with the known ones
    _common.prepare([image])
    progress = Progress(reps)

    def measure(rd: ResultDir, set_testbed: Callable[[Any], None]) -> None:
        from mec.edge.manager import EdgeManager, transfer_image
        from mec.core import config
        from mec.edge.images import registry_ref
        from mec.testbed import Testbed

        table = rd.table(NAME, COLUMNS)
        work = Path(tempfile.mkdtemp(prefix=f"{config.PREFIX}-transfer-"))
        try:
            with Testbed(topo, controller=_common.controller_of(args),
                         servers=_common.servers_of(args)) as tb:
                set_testbed(tb)
                ems = {c.name: EdgeManager.for_cloudlet(c, tb.network.engine(c.name))
                       for c in topo.cloudlets}
                src = ems["c1"]
                ref = registry_ref(image, tb.network.registry_addr)
                instance = f"tr-{service.name}"
                pull = src.pull(ref)
                progress.note(f"{NAME}: {image} on c1 (pulled in {pull.seconds:.1f} s, not "
                              f"counted); {reps} rep(s) over {', '.join(links)}; "
                              f"results in {rd.path}")
                for rep in range(1, reps + 1):
                    for i, profile in enumerate(links, start=2):
                        dst = ems[f"c{i}"]
                        params = topo.links[i - 2].params
                        dst.remove_image(ref)
                        tr = transfer_image(ref, src, dst, work, compresslevel=args.compress_level)
                        t0 = time.perf_counter()
                        inst = dst.deploy_service(instance, ref, service)
                        dst.wait_service(instance, service, timeout=args.ready_timeout)
                        launch_s = time.perf_counter() - t0
                        dst.remove(instance)
                        total = tr.total_s + launch_s
                        table.append({
                            "rep": rep, "link": profile, "bw_mbps": params.bw_mbps,
                            "delay_ms": params.delay_ms, "image": image, "src": src.name,
                            "dst": dst.name, "archive_bytes": tr.archive_bytes,
                            "wire_bytes": tr.wire_bytes, "export_s": tr.export_s,
                            "transfer_s": tr.transfer_s, "load_s": tr.load_s,
                            "start_s": inst.launch_s, "launch_s": launch_s, "total_s": total,
                            "transfer_mbps": tr.archive_bytes * 8 / tr.transfer_s / 1e6,
                        })
                        progress.line(rep, f"{image} c1->{dst.name} over {profile}", total,
                                      export=tr.export_s, transfer=tr.transfer_s,
                                      load=tr.load_s, launch=launch_s)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    return _common.execute(NAME, args, [SPEC], measure, make_plots, TABLE_METRICS,
                           config={"topology_data": data, "image": image, "reps": reps,
                                   "links": links, "compress_level": args.compress_level,
                                   "service": _common.service_config(service)})


if __name__ == "__main__":
    sys.exit(_common.script_main(sys.modules[__name__], NAME))
