"""The topology as the page draws it: sites with positions, labelled links, cloudlets, UEs, cloud."""

from __future__ import annotations

from typing import Any

from mec.view.layout import site_positions
from topologies.model import LinkParams, Topology


def link_label(profile: str | None, params: LinkParams) -> str:
    """``mec: 25 Mbit/s, 50 ms`` (profile if known, rate, round-trip delay)."""
    rate = "unshaped" if params.bw_mbps is None else f"{params.bw_mbps:g} Mbit/s"
    text = (f"{profile}: " if profile else "") + f"{rate}, {params.delay_ms:g} ms"
    if params.loss_pct:
        text += f", {params.loss_pct:g}% loss"
    return text


def topology_doc(topo: Topology) -> dict[str, Any]:
    """What the page needs to draw TOPO (JSON-ready)."""
    sites = [s.name for s in topo.sites]
    given = {s.name: s.position for s in topo.sites if s.position is not None}
    pos = site_positions(sites, [(l.a, l.b) for l in topo.links], given)
    return {
        "name": topo.name,
        "layout": "file" if len(given) == len(sites) else "computed",
        "sites": [{"name": s.name, "x": pos[s.name][0], "y": pos[s.name][1],
                   "cloudlets": [{"name": c.name, "ip": c.ip,
                                  "link": link_label(None, c.link)} for c in s.cloudlets]}
                  for s in topo.sites],
        "links": [{"a": l.a, "b": l.b, "profile": l.profile, "label": link_label(l.profile or "custom", l.params),
                   "bw_mbps": l.params.bw_mbps, "delay_ms": l.params.delay_ms} for l in topo.links],
        "ues": [{"name": u.name, "site": u.site, "ip": u.ip} for u in topo.ues],
        "cloud": {"name": topo.cloud.name, "site": topo.cloud.site, "ip": topo.cloud.ip,
                  "link": link_label(None, topo.cloud.link)},
    }
