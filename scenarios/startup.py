"""Container start-up time, pre-cached vs pulled from the cloud (paper Fig. 4).

For each image (busybox 2 MB, debian 119 MB, httpd 229 MB) and repetition, on
one cloudlet's own Docker engine:

* pulled: the image is removed from the cloudlet's cache (a fresh cache state
  every repetition), pulled from the cloud registry across the emulated network
  (built-in topology: one site, cloudlet c1, the cloud behind a `wan` link of
  100 Mbit/s and 20 ms RTT), then launched;
* pre-cached: right after, the same image (now in the cache) is launched again.

"Launch" is measured from the deploy call (container create + start) to the
first HTTP answer of the service, fetched from inside the cloudlet's own network
namespace (curl, polled every 20 ms), so no user-side network delay is included.
Per image and state the raw CSV keeps: pull_s, bytes (compressed layer bytes
downloaded), start_s (create + start), ready_s (start to first answer),
launch_s (start_s + ready_s), total_s (pull_s + launch_s).

    sudo python3 scenarios/startup.py --reps 10
    sudo python3 scenarios/startup.py --quick            # 3 reps, busybox only
    mec run startup --images busybox,httpd --reps 5
"""

from __future__ import annotations

if __name__ == "__main__":  # run as a script: find the checkout and its Python environment
    import _bootstrap  # noqa: F401 (scenarios/ is first on sys.path when a script runs)

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import Any, Callable, Mapping

from mec.measure.results import ResultDir, SummarySpec
from scenarios import _common

log = logging.getLogger(__name__)

NAME = "startup"
IMAGES = ("busybox", "debian", "httpd")
DEFAULT_REPS, QUICK_REPS = 10, 3
QUICK_IMAGES = ("busybox",)
COLUMNS = ("rep", "image", "state", "cloudlet", "pull_s", "bytes", "image_bytes", "start_s",
           "ready_s", "launch_s", "total_s")
SPEC = SummarySpec(NAME, group_by=("image", "state"),
                   metrics=("pull_s", "bytes", "start_s", "ready_s", "launch_s", "total_s"))
TABLE_METRICS = {NAME: ("pull_s", "launch_s", "total_s", ("bytes", "MB", 1e-6))}


def builtin_topology(cloud_link: str) -> dict[str, Any]:
    """One site with cloudlet c1 and the cloud registry behind a CLOUD_LINK link."""
    return {"name": "startup", "sites": [{"name": "s1", "cloudlets": [{"name": "c1"}]}],
            "cloud": {"name": "cloud", "site": "s1", "link": cloud_link}, "ues": [], "links": []}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--images", default=None, metavar="LIST",
                        help=f"comma-separated images (default {','.join(IMAGES)}; "
                             f"--quick: {','.join(QUICK_IMAGES)})")
    parser.add_argument("--service", action="append", default=None, metavar="FILE",
                        help="a service file (docs/services.md) whose image is measured "
                             "instead of --images; repeat for several")
    parser.add_argument("--cloudlet", default=None,
                        help="cloudlet measured (default: the topology's first)")
    parser.add_argument("--cloud-link", default="wan", metavar="PROFILE",
                        help="profile of the built-in topology's cloud link (default wan: "
                             "100 Mbit/s, 20 ms RTT)")
    parser.add_argument("--ready-timeout", type=float, default=60.0, metavar="S",
                        help="longest wait for the first good answer to the health check (default 60)")
    _common.add_common_arguments(parser, DEFAULT_REPS, QUICK_REPS, topology=True)


def services_of(args: argparse.Namespace) -> list[Any]:
    """The services measured: ``--service`` files, else the built-ins of ``--images``."""
    from mec.core import servicefile

    if args.service:
        if args.images:
            raise SystemExit("--service and --images: give one (a service file names its image)")
        return [_common.service_of(argparse.Namespace(service=f), "") for f in args.service]
    names = ([n.strip() for n in args.images.split(",") if n.strip()] if args.images
             else list(QUICK_IMAGES if args.quick else IMAGES))
    unknown = [n for n in names if n not in IMAGES]
    if unknown or not names:
        raise SystemExit(f"--images: unknown {unknown}; choose from {', '.join(IMAGES)}")
    return [servicefile.builtin(n) for n in names]


def launch(em, instance: str, ref: str, service: Any, timeout: float) -> dict[str, float]:
    """Deploy INSTANCE of REF as SERVICE and wait for its first good answer to the
    service's health check; remove it again."""
    t0 = time.perf_counter()
    inst = em.deploy_service(instance, ref, service)
    ready = em.wait_service(instance, service, timeout=timeout)
    launch_s = time.perf_counter() - t0
    em.remove(instance)
    return {"start_s": inst.launch_s, "ready_s": launch_s - inst.launch_s, "launch_s": launch_s,
            "answer": ready.answer}


def make_plots(run_dir: Path, groups: Mapping[str, list]) -> list[Path]:
    from mec.measure.plots import startup_figure

    order = [i for i in IMAGES if any(g["group"]["image"] == i for g in groups[NAME])]
    return [startup_figure(groups[NAME], run_dir / "startup.png", images=order)]


def run(args: argparse.Namespace) -> int:
    from mec.measure.progress import Progress
    from topologies.loader import from_dict, load

    _common.quiet_logs(args)
    reps = _common.reps_of(args, DEFAULT_REPS, QUICK_REPS)
    services = services_of(args)
    images = [s.image for s in services]
    if args.topology:
        topo = load(args.topology)
        cfg = {"topology_path": args.topology}
    else:
        data = builtin_topology(args.cloud_link)
        topo = from_dict(data, "<startup built-in>")
        cfg = {"topology_data": data}
    cloudlets = [c.name for c in topo.cloudlets]
    cloudlet = args.cloudlet or (cloudlets[0] if cloudlets else None)
    if cloudlet not in cloudlets:
        raise SystemExit(f"--cloudlet {cloudlet!r}: the topology's cloudlets are {cloudlets}")
    _common.prepare(images)
    progress = Progress(reps)

    def measure(rd: ResultDir, set_testbed: Callable[[Any], None]) -> None:
        from mec.edge.manager import EdgeManager
        from mec.edge.images import registry_ref
        from mec.testbed import Testbed

        table = rd.table(NAME, COLUMNS)
        with Testbed(topo, controller=_common.controller_of(args),
                     servers=_common.servers_of(args)) as tb:
            set_testbed(tb)
            em = EdgeManager.for_cloudlet(topo.cloudlet(cloudlet), tb.network.engine(cloudlet))
            progress.note(f"{NAME}: {len(images)} image(s) x {reps} rep(s) on cloudlet "
                          f"{cloudlet}; results in {rd.path}")
            for rep in range(1, reps + 1):
                for service in services:
                    image = service.image
                    ref = registry_ref(image, tb.network.registry_addr)
                    em.remove_image(ref)
                    if em.has_image(ref):
                        raise RuntimeError(f"{ref} is still cached on {cloudlet} after removal")
                    pull = em.pull(ref)
                    pulled = launch(em, f"su-{service.name}", ref, service, args.ready_timeout)
                    cached = launch(em, f"su-{service.name}", ref, service, args.ready_timeout)
                    base = {"rep": rep, "image": image, "cloudlet": cloudlet,
                            "image_bytes": pull.image_size}
                    table.append({**base, "state": "pulled", "pull_s": pull.seconds,
                                  "bytes": pull.bytes, "start_s": pulled["start_s"],
                                  "ready_s": pulled["ready_s"], "launch_s": pulled["launch_s"],
                                  "total_s": pull.seconds + pulled["launch_s"]})
                    table.append({**base, "state": "cached", "pull_s": None, "bytes": 0,
                                  "start_s": cached["start_s"], "ready_s": cached["ready_s"],
                                  "launch_s": cached["launch_s"], "total_s": cached["launch_s"]})
                    progress.line(rep, f"{image} pulled", pull.seconds + pulled["launch_s"],
                                  pull=pull.seconds, launch=pulled["launch_s"],
                                  size=f"{pull.bytes / 1e6:.1f} MB")
                    progress.line(rep, f"{image} pre-cached", cached["launch_s"])

    return _common.execute(NAME, args, [SPEC], measure, make_plots, TABLE_METRICS,
                           config={**cfg, "images": images, "reps": reps, "cloudlet": cloudlet,
                                   "services": [s.name for s in services]})


if __name__ == "__main__":
    sys.exit(_common.script_main(sys.modules[__name__], NAME))
