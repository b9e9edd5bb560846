"""The Edge Orchestrator's Scheduler: where a service's replicas should run.

Pure decision logic (no I/O), following the paper's Section IV ("Scheduler")
and Section VI.A (replica scheduling policies). It answers three questions:

1. *Which cloudlets are eligible* to serve a user at a given site
   (:func:`eligible`): the cloudlet is up, has the CPUs and memory the
   service asks for, and the latency the user would see is within the
   service's SLA bound. That latency is the round-trip delay of the
   minimum-delay path between the user's site (its access point) and the
   cloudlet's site in the :class:`SiteGraph`, plus an optional constant for the
   radio/access link (``access_delay_ms``).
2. *How many replicas*: ``ServiceSpec.replicas`` counts all instances
   (primary included), bounded by how many cloudlets are eligible.
3. *Where*: a named placement policy (:data:`POLICIES`) ranks cloudlets;
   :func:`place` turns that ranking into a :class:`Placement` with exactly one
   primary (the best eligible cloudlet for the user's current site), one
   backup (the next best distinct cloudlet) and the remaining secondaries.

Policies think in *target sites*: sites where the user is expected to be
served (now or after a move). The replica for a target site is the best
cloudlet eligible *from that site*, so a secondary placed for a neighbouring
access point is checked against the SLA as seen from that access point, not
from the user's current one. Built-in policies:

* ``neighbours``: the user's site, then its graph neighbours, nearest first;
* ``predictive``: the user's site, then the next sites a first-order Markov
  model of past moves (:class:`MarkovPredictor`) finds most likely, then the
  neighbours (the fallback when there is no or too little history);
* ``all``: every cloudlet eligible from some site, nearest to the user first
  (full replication; ignores ``ServiceSpec.replicas``, bounded only by
  eligibility).

``neighbours`` and ``predictive`` place one replica per target site (see
:meth:`PlacementContext.rank_by_sites`), so they never place more replicas
than they have target sites.

Adding a policy is one small class::

    @register_policy("my-policy")
    class MyPolicy(Policy):
        def rank(self, ctx: PlacementContext) -> list[str]:
            return ctx.rank_by_sites([ctx.ue_site, ...])

Ordering is deterministic: cloudlets are preferred by lower latency, then by
already holding the service's image in their cache (no pull needed), then by
name; sites by lower delay, then by name.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, ClassVar, Iterable, Mapping, Sequence, TypeVar

import networkx as nx

log = logging.getLogger(__name__)

#: Edge attribute holding the round-trip delay (ms) a link adds.
DELAY_ATTR = "delay_ms"


class SchedulingError(RuntimeError):
    """No placement is possible; ``reasons`` maps each cloudlet to why it was rejected."""

    def __init__(self, message: str, reasons: Mapping[str, Sequence[str]] | None = None) -> None:
        self.reasons: dict[str, list[str]] = {k: list(v) for k, v in (reasons or {}).items()}
        if self.reasons:
            detail = "; ".join(f"{name}: {', '.join(why)}" for name, why in sorted(self.reasons.items()))
            message = f"{message} ({detail})"
        super().__init__(message)


# --------------------------------------------------------------------------
# Inputs and output
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class CloudletStatus:
    """What the Edge Manager of one cloudlet reports.

    ``free_cpus`` / ``free_memory_mb`` of None mean "not reported": the
    resource is then not checked.
    """

    name: str
    site: str
    free_cpus: float | None = None
    free_memory_mb: int | None = None
    cached_images: frozenset[str] = frozenset()
    up: bool = True


@dataclass(frozen=True)
class ServiceSpec:
    """A service's requirements: image, per-instance resources, SLA, replica count.

    ``replicas`` is the total number of instances wanted (1 = primary only,
    2 = primary + backup, more = plus secondaries).
    """

    name: str
    image: str
    cpus: float = 0.0
    memory_mb: int = 0
    latency_bound_ms: float = math.inf
    replicas: int = 1

    def __post_init__(self) -> None:
        if self.replicas < 1:
            raise ValueError(f"service {self.name}: replicas must be >= 1, not {self.replicas}")
        if self.cpus < 0 or self.memory_mb < 0:
            raise ValueError(f"service {self.name}: negative resource request")


@dataclass(frozen=True)
class Placement:
    """Where a service's instances run, by role; cloudlet names in preference order."""

    primary: str
    backup: str | None = None
    secondaries: tuple[str, ...] = ()

    @property
    def replicas(self) -> tuple[str, ...]:
        """Every cloudlet of the placement: primary, backup, secondaries."""
        return (self.primary,) + ((self.backup,) if self.backup else ()) + self.secondaries

    def role_of(self, cloudlet: str) -> str | None:
        """``"primary"``, ``"backup"``, ``"secondary"`` or None (not in the placement)."""
        if cloudlet == self.primary:
            return "primary"
        if cloudlet == self.backup:
            return "backup"
        if cloudlet in self.secondaries:
            return "secondary"
        return None


def changes(old: Placement, new: Placement) -> tuple[list[str], list[str]]:
    """Cloudlets to start an instance on and to stop, going from ``old`` to ``new``."""
    start = [c for c in new.replicas if c not in old.replicas]
    stop = [c for c in old.replicas if c not in new.replicas]
    return start, stop


# --------------------------------------------------------------------------
# Site graph
# --------------------------------------------------------------------------
class SiteGraph:
    """Read-only view of the sites (access points) and the delays between them.

    Wraps a networkx ``Graph`` whose nodes are site names and whose edges
    carry ``delay_ms`` (round-trip delay the link adds; missing = 0). The delay
    between two sites is the sum along the minimum-delay path (inf when
    unreachable). Path delays are cached: build a new view after the topology
    changes.
    """

    def __init__(self, graph: nx.Graph) -> None:
        self.graph = graph
        self._dist: dict[str, dict[str, float]] = {}

    @classmethod
    def from_edges(cls, edges: Iterable[tuple[str, str, float]], sites: Iterable[str] = ()) -> "SiteGraph":
        """Build from ``(site_a, site_b, delay_ms)`` triples (plus isolated ``sites``)."""
        g = nx.Graph()
        g.add_nodes_from(sites)
        for a, b, delay in edges:
            g.add_edge(a, b, **{DELAY_ATTR: float(delay)})
        return cls(g)

    @property
    def sites(self) -> list[str]:
        return sorted(self.graph.nodes)

    def __contains__(self, site: object) -> bool:
        return site in self.graph

    def _from(self, site: str) -> dict[str, float]:
        if site not in self._dist:
            if site not in self.graph:
                raise SchedulingError(f"unknown site {site!r} (sites: {', '.join(self.sites)})")
            self._dist[site] = nx.single_source_dijkstra_path_length(
                self.graph, site, weight=lambda u, v, d: float(d.get(DELAY_ATTR, 0.0))
            )
        return self._dist[site]

    def delay_ms(self, a: str, b: str) -> float:
        """Round-trip delay of the minimum-delay path from ``a`` to ``b`` (inf if none)."""
        if b not in self.graph:
            return math.inf
        return self._from(a).get(b, math.inf)

    def neighbours(self, site: str) -> list[str]:
        """Sites adjacent to ``site``, nearest (path delay) first, ties by name."""
        dist = self._from(site)
        return sorted(self.graph.neighbors(site), key=lambda s: (dist.get(s, math.inf), s))

    def by_distance(self, site: str) -> list[str]:
        """Every reachable site, ``site`` itself first, then nearest first, ties by name."""
        dist = self._from(site)
        return sorted(dist, key=lambda s: (dist[s], s != site, s))


def as_site_graph(graph: SiteGraph | nx.Graph) -> SiteGraph:
    return graph if isinstance(graph, SiteGraph) else SiteGraph(graph)


# --------------------------------------------------------------------------
# Eligibility
# --------------------------------------------------------------------------
def latency_ms(graph: SiteGraph | nx.Graph, cloudlet: CloudletStatus, site: str,
               access_delay_ms: float = 0.0) -> float:
    """Latency a user at ``site`` would see to ``cloudlet`` (path delay + access delay)."""
    return as_site_graph(graph).delay_ms(site, cloudlet.site) + access_delay_ms


def rejections(cloudlet: CloudletStatus, spec: ServiceSpec, latency: float) -> list[str]:
    """Why ``cloudlet`` cannot serve ``spec`` at ``latency`` ms; empty if it can."""
    why: list[str] = []
    if not cloudlet.up:
        why.append("down")
    if math.isinf(latency):
        why.append(f"site {cloudlet.site} unreachable")
    elif latency > spec.latency_bound_ms:
        why.append(f"latency {latency:g} ms > bound {spec.latency_bound_ms:g} ms")
    why.extend(resource_shortage(cloudlet, spec))
    return why


def resource_shortage(cloudlet: CloudletStatus, spec: ServiceSpec) -> list[str]:
    """Resource reasons (CPU, memory) why ``cloudlet`` cannot host ``spec``."""
    why = []
    if cloudlet.free_cpus is not None and spec.cpus > cloudlet.free_cpus + 1e-9:
        why.append(f"needs {spec.cpus:g} CPUs, {cloudlet.free_cpus:g} free")
    if cloudlet.free_memory_mb is not None and spec.memory_mb > cloudlet.free_memory_mb:
        why.append(f"needs {spec.memory_mb} MB, {cloudlet.free_memory_mb} MB free")
    return why


def _preference(spec: ServiceSpec, lat: float, cloudlet: CloudletStatus) -> tuple:
    return (lat, spec.image not in cloudlet.cached_images, cloudlet.name)


def eligible(graph: SiteGraph | nx.Graph, cloudlets: Iterable[CloudletStatus], spec: ServiceSpec,
             site: str, access_delay_ms: float = 0.0) -> list[CloudletStatus]:
    """Cloudlets that can serve ``spec`` to a user at ``site``, best first.

    Best = lowest latency, then image already cached, then name.
    """
    g = as_site_graph(graph)
    g._from(site)  # unknown site -> SchedulingError
    scored = []
    for c in cloudlets:
        lat = latency_ms(g, c, site, access_delay_ms)
        if not rejections(c, spec, lat):
            scored.append((_preference(spec, lat, c), c))
    return [c for _, c in sorted(scored, key=lambda x: x[0])]


def explain(graph: SiteGraph | nx.Graph, cloudlets: Iterable[CloudletStatus], spec: ServiceSpec,
            site: str, access_delay_ms: float = 0.0) -> dict[str, list[str]]:
    """For each rejected cloudlet, why it cannot serve a user at ``site``."""
    g = as_site_graph(graph)
    out = {}
    for c in cloudlets:
        why = rejections(c, spec, latency_ms(g, c, site, access_delay_ms))
        if why:
            out[c.name] = why
    return out


# --------------------------------------------------------------------------
# Mobility prediction
# --------------------------------------------------------------------------
class MarkovPredictor:
    """First-order Markov model of a user's site transitions, learned by counting.

    ``observe(a, b)`` counts one move from site ``a`` to site ``b``;
    ``next_sites(a, k)`` returns up to ``k`` most likely next sites with their
    estimated probabilities (count / total moves out of ``a``), ties by name.
    A "move" to the same site is not a transition and is ignored.
    """

    def __init__(self) -> None:
        self._counts: dict[str, Counter[str]] = {}

    @classmethod
    def from_history(cls, sites: Iterable[str]) -> "MarkovPredictor":
        """Learn from a sequence of visited sites (e.g. ``["s1", "s2", "s3", "s1"]``)."""
        p = cls()
        p.observe_path(sites)
        return p

    def observe(self, from_site: str, to_site: str) -> None:
        if from_site == to_site:
            return
        self._counts.setdefault(from_site, Counter())[to_site] += 1

    def observe_path(self, sites: Iterable[str]) -> None:
        prev = None
        for site in sites:
            if prev is not None:
                self.observe(prev, site)
            prev = site

    def transitions(self, site: str) -> dict[str, int]:
        """Observed move counts out of ``site``."""
        return dict(self._counts.get(site, {}))

    def probability(self, from_site: str, to_site: str) -> float:
        counts = self._counts.get(from_site)
        if not counts:
            return 0.0
        return counts[to_site] / sum(counts.values())

    def next_sites(self, site: str, k: int = 1) -> list[tuple[str, float]]:
        counts = self._counts.get(site)
        if not counts or k <= 0:
            return []
        total = sum(counts.values())
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        return [(s, n / total) for s, n in ranked[:k]]


# --------------------------------------------------------------------------
# Policies
# --------------------------------------------------------------------------
@dataclass
class PlacementContext:
    """Everything a policy may look at to rank cloudlets for one placement."""

    graph: SiteGraph
    cloudlets: tuple[CloudletStatus, ...]
    spec: ServiceSpec
    ue_site: str
    history: tuple[str, ...] = ()
    predictor: MarkovPredictor = field(default_factory=MarkovPredictor)
    access_delay_ms: float = 0.0
    _cache: dict[str, list[CloudletStatus]] = field(default_factory=dict, repr=False)

    def eligible_for(self, site: str) -> list[CloudletStatus]:
        """Cloudlets eligible to serve a user at ``site``, best first (cached)."""
        if site not in self._cache:
            self._cache[site] = eligible(self.graph, self.cloudlets, self.spec, site, self.access_delay_ms)
        return self._cache[site]

    def rank_by_sites(self, sites: Sequence[str]) -> list[str]:
        """One replica per target site, in the sites' order.

        For each target site: its best eligible cloudlet not taken by an
        earlier site (the cloudlet at the site itself when it qualifies, else
        the nearest one within the SLA bound of that site). Sites without any
        such cloudlet, and sites not in the graph, contribute nothing.
        """
        chosen: list[str] = []
        for site in dict.fromkeys(sites):
            if site not in self.graph:
                continue
            for c in self.eligible_for(site):
                if c.name not in chosen:
                    chosen.append(c.name)
                    break
        return chosen


class Policy:
    """A placement policy: ranks cloudlet names for a :class:`PlacementContext`.

    ``rank`` returns cloudlet names in preference order; the first name that
    is not the primary becomes the backup, the following ones secondaries.
    ``bounded`` False means the policy's list is not cut to ``spec.replicas``.
    """

    name: ClassVar[str] = ""
    bounded: ClassVar[bool] = True

    def rank(self, ctx: PlacementContext) -> Sequence[str]:
        raise NotImplementedError


#: Registered placement policies by name.
POLICIES: dict[str, type[Policy]] = {}

P = TypeVar("P", bound=type[Policy])


def register_policy(name: str) -> Callable[[P], P]:
    """Class decorator adding a :class:`Policy` subclass to :data:`POLICIES` under ``name``."""

    def deco(cls: P) -> P:
        if not (isinstance(cls, type) and issubclass(cls, Policy)):
            raise TypeError(f"{cls!r} is not a Policy subclass")
        if name in POLICIES and POLICIES[name] is not cls:
            raise ValueError(f"placement policy {name!r} is already registered ({POLICIES[name].__name__})")
        cls.name = name
        POLICIES[name] = cls
        return cls

    return deco


@register_policy("neighbours")
class NeighboursPolicy(Policy):
    """Replicas at the user's site and its graph neighbours, nearest first."""

    def rank(self, ctx: PlacementContext) -> Sequence[str]:
        return ctx.rank_by_sites([ctx.ue_site, *ctx.graph.neighbours(ctx.ue_site)])


@register_policy("predictive")
class PredictivePolicy(Policy):
    """Replicas at the most likely next sites (Markov model), then at neighbours."""

    def rank(self, ctx: PlacementContext) -> Sequence[str]:
        predicted = [s for s, _ in ctx.predictor.next_sites(ctx.ue_site, k=len(ctx.graph.sites))]
        return ctx.rank_by_sites([ctx.ue_site, *predicted, *ctx.graph.neighbours(ctx.ue_site)])


@register_policy("all")
class AllPolicy(Policy):
    """Every eligible cloudlet (eligible from some site), nearest to the user first."""

    bounded = False

    def rank(self, ctx: PlacementContext) -> Sequence[str]:
        usable = {c.name: c for site in ctx.graph.sites for c in ctx.eligible_for(site)}
        ranked = sorted(usable.values(), key=lambda c: _preference(
            ctx.spec, latency_ms(ctx.graph, c, ctx.ue_site, ctx.access_delay_ms), c))
        return [c.name for c in ranked]


# --------------------------------------------------------------------------
# Decisions
# --------------------------------------------------------------------------
def place(policy_name: str, graph: SiteGraph | nx.Graph, cloudlets: Iterable[CloudletStatus],
          spec: ServiceSpec, ue_site: str, history: Sequence[str] = (), *,
          predictor: MarkovPredictor | None = None, access_delay_ms: float = 0.0) -> Placement:
    """Decide the placement of ``spec`` for a user now at ``ue_site``.

    ``history`` is the user's sequence of visited sites (oldest first); the
    predictive policy learns from it unless a trained ``predictor`` is given.
    Raises :class:`SchedulingError` (with per-cloudlet reasons) when no
    cloudlet can serve the user at ``ue_site``, and ``KeyError`` for an
    unknown policy.
    """
    if policy_name not in POLICIES:
        raise KeyError(f"unknown placement policy {policy_name!r} (known: {', '.join(sorted(POLICIES))})")
    g = as_site_graph(graph)
    ctx = PlacementContext(
        graph=g,
        cloudlets=tuple(cloudlets),
        spec=spec,
        ue_site=ue_site,
        history=tuple(history),
        predictor=predictor if predictor is not None else MarkovPredictor.from_history(history),
        access_delay_ms=access_delay_ms,
    )
    names = [c.name for c in ctx.cloudlets]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate cloudlet names: {sorted(n for n, k in Counter(names).items() if k > 1)}")
    candidates = ctx.eligible_for(ue_site)
    if not candidates:
        if not ctx.cloudlets:
            raise SchedulingError(f"cannot place {spec.name}: no cloudlets known")
        raise SchedulingError(
            f"cannot place {spec.name} for a user at {ue_site}: no eligible cloudlet",
            explain(g, ctx.cloudlets, spec, ue_site, access_delay_ms),
        )
    primary = candidates[0].name
    policy = POLICIES[policy_name]()
    by_name = {c.name: c for c in ctx.cloudlets}
    others: list[str] = []
    for name in policy.rank(ctx):
        if name == primary or name in others:
            continue
        c = by_name.get(name)
        if c is None or not c.up or resource_shortage(c, spec):
            log.warning("policy %s proposed unusable cloudlet %r; skipped", policy_name, name)
            continue
        others.append(name)
    if policy.bounded:
        others = others[: spec.replicas - 1]
    placement = Placement(primary, others[0] if others else None, tuple(others[1:]))
    if len(placement.replicas) < spec.replicas and policy.bounded:
        log.info("%s: %d of %d replicas placeable with policy %s", spec.name,
                 len(placement.replicas), spec.replicas, policy_name)
    return placement


def choose_promotion(placement: Placement, new_site: str, graph: SiteGraph | nx.Graph,
                     cloudlets: Iterable[CloudletStatus] | Mapping[str, str]) -> str:
    """Which replica of ``placement`` becomes primary after the user moved to ``new_site``.

    The one at (or nearest to) ``new_site``; on equal delay the current
    primary stays (no needless switch), then by name. ``cloudlets`` gives each
    cloudlet's site, either as statuses (then replicas that are down are not
    candidates) or as a ``{name: site}`` mapping.
    """
    g = as_site_graph(graph)
    g._from(new_site)  # unknown site -> SchedulingError
    if isinstance(cloudlets, Mapping):
        sites = dict(cloudlets)
        down: set[str] = set()
    else:
        statuses = list(cloudlets)
        sites = {c.name: c.site for c in statuses}
        down = {c.name for c in statuses if not c.up}
    candidates = [c for c in placement.replicas if c not in down]
    unknown = [c for c in candidates if c not in sites]
    if unknown:
        raise SchedulingError(f"site of replica(s) {', '.join(unknown)} unknown")
    if not candidates:
        raise SchedulingError(f"no replica of the placement is up ({', '.join(placement.replicas)})")

    def key(name: str) -> tuple:
        return (g.delay_ms(new_site, sites[name]), name != placement.primary, name)

    return min(candidates, key=key)
