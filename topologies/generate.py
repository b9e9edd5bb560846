"""Generated topologies of any size: rings and grids of N sites, for scale tests and benches.

Every site gets one cloudlet (``cN``, its own Docker engine) and one UE (``uN``);
backbone links use the ``mec`` profile (25 Mbit/s, 50 ms RTT: a delay line each),
cloudlets the ``lan`` profile, UEs the ``access`` profile, and the cloud sits at
the first site behind the ``wan`` link, as in the hand-written topologies. The
result is a validated :class:`topologies.model.Topology` (built with
``topologies.loader.from_dict``), so a generated network is built exactly like a
file's.

* :func:`ring`: sites ``s1..sN`` in a cycle (N >= 3; N = 2 is a single link).
* :func:`grid`: ``rows x cols`` sites, each linked to its right and lower neighbour.
"""

from __future__ import annotations

from typing import Any

from topologies.loader import from_dict
from topologies.model import BLOCK_HOSTS, Topology

#: Most sites a generated topology may have (auto addresses: one /24 block per kind).
MAX_SITES = BLOCK_HOSTS - 1


def _site_entries(n: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    if not 1 <= n <= MAX_SITES:
        raise ValueError(f"a generated topology has 1..{MAX_SITES} sites, not {n}")
    sites = [{"name": f"s{i}", "cloudlets": [{"name": f"c{i}"}]} for i in range(1, n + 1)]
    ues = [{"name": f"u{i}", "site": f"s{i}"} for i in range(1, n + 1)]
    return sites, ues


def _topology(name: str, n: int, links: list[tuple[int, int]], profile: str) -> Topology:
    sites, ues = _site_entries(n)
    data = {
        "name": name,
        "description": f"generated: {n} sites, one cloudlet and one UE each",
        "sites": sites,
        "cloud": {"name": "cloud", "site": "s1"},
        "ues": ues,
        "links": [{"a": f"s{a}", "b": f"s{b}", "profile": profile} for a, b in links],
    }
    return from_dict(data, f"<generated {name}>")


def ring(n: int, profile: str = "mec") -> Topology:
    """N sites in a ring (s1-s2-...-sN-s1), one cloudlet and one UE per site."""
    links = [(i, i + 1) for i in range(1, n)]
    if n >= 3:
        links.append((n, 1))
    return _topology(f"ring{n}", n, links, profile)


def grid(rows: int, cols: int, profile: str = "mec") -> Topology:
    """ROWS x COLS sites (s1 top left, row by row), each linked right and down."""
    idx = lambda r, c: r * cols + c + 1  # noqa: E731
    links = [(idx(r, c), idx(r, c + 1)) for r in range(rows) for c in range(cols - 1)]
    links += [(idx(r, c), idx(r + 1, c)) for r in range(rows - 1) for c in range(cols)]
    return _topology(f"grid{rows}x{cols}", rows * cols, links, profile)
