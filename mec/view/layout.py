"""Where each site is drawn: its position from the topology file, else a stable computed layout."""

from __future__ import annotations

from typing import Mapping, Optional

import networkx as nx

#: seed of the spring layout: the same topology is always drawn the same way
LAYOUT_SEED = 7


def site_positions(sites: list[str], links: list[tuple[str, str]],
                   given: Optional[Mapping[str, tuple[float, float]]] = None
                   ) -> dict[str, tuple[float, float]]:
    """Every site's (x, y), both scaled into [0, 1].

    GIVEN positions (from the topology file) are used when every site has one;
    otherwise a spring layout of the site graph with a fixed seed (a line of
    sites stays a line, a ring a ring) is computed once.
    """
    if given and all(s in given for s in sites):
        raw = {s: (float(given[s][0]), float(given[s][1])) for s in sites}
    else:
        graph = nx.Graph()
        graph.add_nodes_from(sites)
        graph.add_edges_from(links)
        if len(sites) == 1:
            raw = {sites[0]: (0.0, 0.0)}
        else:
            layout = nx.spring_layout(graph, seed=LAYOUT_SEED)
            raw = {s: (float(layout[s][0]), float(layout[s][1])) for s in sites}
    return _normalised(raw)


def _normalised(raw: Mapping[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
    """RAW scaled into [0, 1] on both axes, keeping the aspect (one axis may be shorter)."""
    xs = [p[0] for p in raw.values()]
    ys = [p[1] for p in raw.values()]
    span = max(max(xs) - min(xs), max(ys) - min(ys)) or 1.0
    cx = (max(xs) + min(xs)) / 2
    cy = (max(ys) + min(ys)) / 2
    return {s: (round(0.5 + (x - cx) / span, 4), round(0.5 + (y - cy) / span, 4))
            for s, (x, y) in raw.items()}

