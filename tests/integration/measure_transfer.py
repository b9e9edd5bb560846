"""Measure the paper's Fig. 5 phases between two edges on an unshaped link (not a test).

    sudo MEC_PREFIX=me PYTHONPATH=. .venv/bin/python tests/integration/measure_transfer.py httpd [reps]

Pulls IMAGE from the cloud registry onto cloudlet c0, then per repetition:
removes it from c1, exports it on c0 (docker save | gzip), transfers the
archive c0 -> c1 over the emulated network, loads it on c1 and launches it
(create + start + first HTTP answer from inside c1's namespace).
"""

import sys
import tempfile
import time

from edge_net import SUBNET, edge_net

from mec.edge.manager import EdgeManager, transfer_image
from mec.edge.images import registry_ref


def main(image: str, reps: int) -> None:
    with edge_net(n_cloudlets=2) as env:
        a = EdgeManager.for_engine(env.engines["c0"], f"{SUBNET}.10")
        b = EdgeManager.for_engine(env.engines["c1"], f"{SUBNET}.11")
        ref = registry_ref(image, env.registry_addr)
        pull = a.pull(ref)
        print(f"{image}: pull from cloud {pull.seconds:.3f} s, {pull.bytes} compressed bytes, "
              f"image size {pull.image_size} bytes")
        for rep in range(reps):
            b.remove_image(ref)
            with tempfile.TemporaryDirectory() as tmp:
                tr = transfer_image(ref, a, b, tmp)
            t0 = time.perf_counter()
            b.deploy("meas", ref)
            b.wait_ready("meas", timeout=60)
            launch = time.perf_counter() - t0
            b.remove("meas")
            print(f"{image} rep {rep}: export {tr.export_s:.3f} s, transfer {tr.transfer_s:.3f} s "
                  f"({tr.wire_bytes} B, {tr.wire_bytes * 8 / tr.transfer_s / 1e6:.0f} Mbit/s), "
                  f"load {tr.load_s:.3f} s, launch {launch:.3f} s, "
                  f"total {tr.total_s + launch:.3f} s")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "busybox", int(sys.argv[2]) if len(sys.argv) > 2 else 1)
