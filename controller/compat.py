"""Import shim: one Network Manager codebase for both OpenFlow controller lines.

The line is chosen by the environment variable ``MEC_CTL_LINE`` (``os-ken``,
the default, or ``ryu``) which the runner sets before importing the app.
os-ken 4.x is the default because it is maintained, installs from wheels and
runs on current Python (3.12 in the VM); ryu 4.34 needs a build pin, an
eventlet shim and Python <= 3.11.

Everything the app needs from the framework is re-exported here under one name.
"""

from __future__ import annotations

import os

LINES: tuple[str, ...] = ("os-ken", "ryu")
LINE: str = os.environ.get("MEC_CTL_LINE", "os-ken")
if LINE not in LINES:
    raise ImportError(f"MEC_CTL_LINE={LINE!r}: expected one of {LINES}")


def apply_eventlet_fix() -> None:
    """Provide ``eventlet.wsgi.ALREADY_HANDLED`` which ryu 4.34's wsgi module imports.

    Newer eventlet releases (0.33+) dropped the constant; ryu only uses it as
    a sentinel, so any unique object works.
    """
    import eventlet.wsgi

    if not hasattr(eventlet.wsgi, "ALREADY_HANDLED"):
        eventlet.wsgi.ALREADY_HANDLED = object()


if LINE == "ryu":
    apply_eventlet_fix()
    from ryu.base import app_manager  # noqa: E402
    from ryu.controller import ofp_event  # noqa: E402
    from ryu.controller.handler import (  # noqa: E402
        CONFIG_DISPATCHER,
        DEAD_DISPATCHER,
        MAIN_DISPATCHER,
        set_ev_cls,
    )
    from ryu.lib import hub, ofctl_v1_3  # noqa: E402
    from ryu.lib.packet import arp, ether_types, ethernet, packet  # noqa: E402
    from ryu.ofproto import ofproto_v1_3  # noqa: E402

    BaseApp = app_manager.RyuApp
else:
    from os_ken.base import app_manager  # noqa: E402
    from os_ken.controller import ofp_event  # noqa: E402
    from os_ken.controller.handler import (  # noqa: E402
        CONFIG_DISPATCHER,
        DEAD_DISPATCHER,
        MAIN_DISPATCHER,
        set_ev_cls,
    )
    from os_ken.lib import hub, ofctl_v1_3  # noqa: E402
    from os_ken.lib.packet import arp, ether_types, ethernet, packet  # noqa: E402
    from os_ken.ofproto import ofproto_v1_3  # noqa: E402

    BaseApp = app_manager.OSKenApp

__all__ = [
    "LINE", "LINES", "apply_eventlet_fix", "app_manager", "ofp_event", "set_ev_cls",
    "CONFIG_DISPATCHER", "MAIN_DISPATCHER", "DEAD_DISPATCHER", "hub", "ofctl_v1_3",
    "arp", "ether_types", "ethernet", "packet", "ofproto_v1_3", "BaseApp",
]
