"""Which Open vSwitch datapath the emulated switches use: the kernel's or OVS's userspace one.

The kernel datapath (module ``openvswitch``) is faster and is what a Mininet
user expects; the machines this project is developed on have no such module,
and there a bridge of the default ``datapath_type=system`` fails silently (no
packet passes), so switches must use the userspace datapath (``netdev``).

:func:`ovs_datapath` asks the kernel whether the OVS datapath is there: the
module registers the generic netlink family ``ovs_datapath`` once it is loaded
(or built in), which is exactly what ovs-vswitchd needs for ``system`` bridges.
The answer is Mininet's ``OVSSwitch(datapath=...)`` value: ``"kernel"`` or
``"user"``. ``MEC_OVS_DATAPATH`` (``kernel`` | ``user``) forces one, e.g. to test
the userspace path on a VM that has the module; forcing ``kernel`` where the
module is absent is an error.
"""

from __future__ import annotations

import functools
import logging
import os

LOG = logging.getLogger(__name__)

DATAPATHS = ("kernel", "user")
ENV_FORCE = "MEC_OVS_DATAPATH"
GENL_FAMILY = "ovs_datapath"


@functools.lru_cache(maxsize=None)
def kernel_datapath_available() -> bool:
    """True when the kernel's OVS datapath is loaded (its netlink family answers)."""
    from pyroute2.netlink.generic import GenericNetlinkSocket

    sock = GenericNetlinkSocket()
    try:
        sock.bind(GENL_FAMILY, None)
        return True
    except Exception as exc:  # noqa: BLE001 - NetlinkError(ENOENT) when absent
        LOG.debug("no OVS kernel datapath: %s", exc)
        return False
    finally:
        sock.close()


def ovs_datapath() -> str:
    """``"kernel"`` where the OVS kernel datapath is loaded, else ``"user"``; honours MEC_OVS_DATAPATH."""
    forced = os.environ.get(ENV_FORCE, "").strip().lower()
    if forced:
        if forced not in DATAPATHS:
            raise ValueError(f"{ENV_FORCE}={forced!r}: use one of {DATAPATHS}")
        if forced == "kernel" and not kernel_datapath_available():
            raise RuntimeError(f"{ENV_FORCE}=kernel but the kernel has no OVS datapath "
                               "(module openvswitch not loaded)")
        return forced
    return "kernel" if kernel_datapath_available() else "user"
