"""Unit tests of mec.orchestrator.scheduler: eligibility, policies, prediction, promotion."""

from __future__ import annotations

import networkx as nx
import pytest

from mec.orchestrator.scheduler import (
    POLICIES,
    CloudletStatus,
    MarkovPredictor,
    Placement,
    Policy,
    SchedulingError,
    ServiceSpec,
    SiteGraph,
    changes,
    choose_promotion,
    eligible,
    place,
    register_policy,
)

IMAGE = "mec/httpd:1"


def line_graph() -> SiteGraph:
    """s1 -10- s2 -10- s3 -10- s4, and s2 -20- s5 (round-trip delays in ms)."""
    return SiteGraph.from_edges([("s1", "s2", 10), ("s2", "s3", 10), ("s3", "s4", 10), ("s2", "s5", 20)])


def cloudlets(**overrides) -> list[CloudletStatus]:
    """c1..c5 at s1..s5, 4 CPUs / 4096 MB free each; overrides: name -> dict of fields."""
    out = []
    for i in range(1, 6):
        kw = dict(name=f"c{i}", site=f"s{i}", free_cpus=4.0, free_memory_mb=4096)
        kw.update(overrides.get(f"c{i}", {}))
        out.append(CloudletStatus(**kw))
    return out


def spec(replicas=3, bound=25.0, cpus=1.0, memory_mb=256) -> ServiceSpec:
    return ServiceSpec("svc", IMAGE, cpus=cpus, memory_mb=memory_mb, latency_bound_ms=bound, replicas=replicas)


def names(cs):
    return [c.name for c in cs]


# --- site graph -------------------------------------------------------------
def test_path_delay_is_sum_over_min_delay_path():
    g = SiteGraph.from_edges([("a", "b", 10), ("b", "c", 10), ("a", "c", 50)], sites=["lonely"])
    assert g.delay_ms("a", "c") == 20  # via b, not the direct 50 ms link
    assert g.delay_ms("a", "a") == 0
    assert g.delay_ms("a", "lonely") == float("inf")
    assert g.neighbours("a") == ["b", "c"]  # b at 10 ms, c at 20 ms (path), nearest first


# --- eligibility --------------------------------------------------------------
def test_eligible_filters_by_latency_bound_and_orders_nearest_first():
    g = line_graph()
    assert names(eligible(g, cloudlets(), spec(bound=25), "s2")) == ["c2", "c1", "c3", "c4", "c5"]
    assert names(eligible(g, cloudlets(), spec(bound=15), "s2")) == ["c2", "c1", "c3"]
    assert names(eligible(g, cloudlets(), spec(bound=15), "s4")) == ["c4", "c3"]
    # an access-link delay counts too: 5 + 10 > 12
    assert names(eligible(g, cloudlets(), spec(bound=12), "s2", access_delay_ms=5)) == ["c2"]


def test_eligible_filters_resources_and_down_cloudlets():
    g = line_graph()
    cs = cloudlets(c1={"free_cpus": 0.5}, c3={"free_memory_mb": 100}, c4={"up": False},
                   c5={"free_cpus": None, "free_memory_mb": None})  # unreported = not checked
    assert names(eligible(g, cs, spec(bound=100), "s2")) == ["c2", "c5"]


def test_cached_image_then_name_break_latency_ties():
    g = line_graph()
    cs = cloudlets(c3={"cached_images": frozenset({IMAGE})})
    assert names(eligible(g, cs, spec(bound=15), "s2")) == ["c2", "c3", "c1"]
    two_at_one_site = [CloudletStatus("cb", "s1"), CloudletStatus("ca", "s1")]
    assert place("neighbours", g, two_at_one_site, spec(replicas=2), "s1").primary == "ca"


# --- policies -----------------------------------------------------------------
def test_neighbours_policy_places_at_user_site_then_nearest_neighbours():
    g = line_graph()
    assert place("neighbours", g, cloudlets(), spec(replicas=1), "s2") == Placement("c2")
    assert place("neighbours", g, cloudlets(), spec(replicas=3), "s2") == Placement("c2", "c1", ("c3",))
    # bounded by its target sites: s2 and its neighbours s1, s3, s5 (not s4)
    assert place("neighbours", g, cloudlets(), spec(replicas=10), "s2") == Placement("c2", "c1", ("c3", "c5"))


def test_neighbours_policy_skips_full_neighbour_and_checks_sla_from_the_target_site():
    g = line_graph()
    cs = cloudlets(c1={"free_cpus": 0.0})
    # s1 has no usable cloudlet of its own; the best one for a user at s1 is c2 (taken), then c3 (20 ms)
    assert place("neighbours", g, cs, spec(replicas=3, bound=25), "s2") == Placement("c2", "c3", ("c4",))
    # paper-like backbone: 50 ms between edges, SLA 20 ms. The secondary at s2 is out of the
    # SLA as seen from s1, but it is what serves the user once at s2.
    paper = SiteGraph.from_edges([("s1", "s2", 50), ("s2", "s3", 50)])
    cs = [CloudletStatus("c1", "s1"), CloudletStatus("c2", "s2"), CloudletStatus("c3", "s3")]
    assert names(eligible(paper, cs, spec(bound=20), "s1")) == ["c1"]
    assert place("neighbours", paper, cs, spec(replicas=3, bound=20), "s1") == Placement("c1", "c2")


def test_predictive_policy_follows_learned_path_and_falls_back_to_neighbours():
    g = line_graph()
    cs = cloudlets()
    # no history: same as neighbours
    assert place("predictive", g, cs, spec(replicas=2), "s2") == Placement("c2", "c1")
    # the user keeps going s1 -> s2 -> s5: from s2 the replica goes to s5 despite its 20 ms
    history = ["s1", "s2", "s5", "s1", "s2", "s5", "s1", "s2"]
    assert place("predictive", g, cs, spec(replicas=2), "s2", history) == Placement("c2", "c5")
    # more replicas than predictions: then the neighbours, nearest first
    assert place("predictive", g, cs, spec(replicas=4), "s2", history) == Placement("c2", "c5", ("c1", "c3"))
    # a trained predictor can be passed instead of a history
    pred = MarkovPredictor()
    pred.observe("s2", "s3")
    assert place("predictive", g, cs, spec(replicas=2), "s2", predictor=pred) == Placement("c2", "c3")


def test_all_policy_places_every_eligible_cloudlet_regardless_of_replicas():
    g = line_graph()
    cs = cloudlets(c4={"up": False})
    assert place("all", g, cs, spec(replicas=1), "s2") == Placement("c2", "c1", ("c3", "c5"))


def test_policy_added_through_the_registry():
    @register_policy("test-farthest")
    class Farthest(Policy):
        """Deliberately odd: the replicas as far from the user as possible."""

        def rank(self, ctx):
            return sorted((c.name for c in ctx.cloudlets),
                          key=lambda n: (-ctx.graph.delay_ms(ctx.ue_site, f"s{n[1:]}"), n))

    try:
        assert POLICIES["test-farthest"] is Farthest and Farthest.name == "test-farthest"
        assert place("test-farthest", line_graph(), cloudlets(), spec(replicas=3), "s1") == \
            Placement("c1", "c4", ("c5",))
        with pytest.raises(ValueError, match="already registered"):
            register_policy("test-farthest")(type("Other", (Policy,), {}))
    finally:
        POLICIES.pop("test-farthest", None)
    with pytest.raises(KeyError, match="unknown placement policy 'test-farthest'"):
        place("test-farthest", line_graph(), cloudlets(), spec(), "s1")


def test_raw_networkx_graph_is_accepted():
    g = nx.Graph()
    g.add_edge("s1", "s2", delay_ms=10)
    cs = [CloudletStatus("c1", "s1"), CloudletStatus("c2", "s2")]
    assert place("neighbours", g, cs, spec(replicas=2), "s1") == Placement("c1", "c2")


# --- errors -------------------------------------------------------------------
def test_scheduling_error_says_why_each_cloudlet_was_rejected():
    g = line_graph()
    cs = [CloudletStatus("c1", "s1", free_cpus=0.25), CloudletStatus("c3", "s3", free_memory_mb=64),
          CloudletStatus("c4", "s4", up=False), CloudletStatus("cx", "nowhere")]
    with pytest.raises(SchedulingError) as info:
        place("neighbours", g, cs, spec(bound=5), "s2")
    err = info.value
    assert "latency 10 ms > bound 5 ms" in err.reasons["c1"]
    assert "needs 1 CPUs, 0.25 free" in err.reasons["c1"]
    assert "needs 256 MB, 64 MB free" in err.reasons["c3"]
    assert "down" in err.reasons["c4"]
    assert "site nowhere unreachable" in err.reasons["cx"]
    assert "c4: down" in str(err)
    with pytest.raises(SchedulingError, match="unknown site 's9'"):
        place("neighbours", g, cloudlets(), spec(), "s9")
    with pytest.raises(SchedulingError, match="no cloudlets"):
        place("neighbours", g, [], spec(), "s2")


# --- Markov predictor ---------------------------------------------------------
def test_markov_predictor_learns_a_repeated_path():
    p = MarkovPredictor.from_history(["s1", "s2", "s3"] * 5)
    assert p.next_sites("s2", 1) == [("s3", 1.0)]
    assert p.next_sites("s3", 3) == [("s1", 1.0)]
    assert p.next_sites("s9", 2) == []
    p.observe("s2", "s1")
    p.observe("s2", "s2")  # not a move: ignored
    assert p.transitions("s2") == {"s3": 5, "s1": 1}
    assert p.next_sites("s2", 2) == [("s3", 5 / 6), ("s1", 1 / 6)]
    assert p.probability("s2", "s1") == pytest.approx(1 / 6)


def test_markov_predictor_ties_are_broken_by_name():
    p = MarkovPredictor()
    for to in ("s4", "s1", "s3"):
        p.observe("s2", to)
    assert p.next_sites("s2", 2) == [("s1", 1 / 3), ("s3", 1 / 3)]


# --- promotion ----------------------------------------------------------------
def test_choose_promotion_picks_replica_at_or_nearest_the_new_site():
    g = line_graph()
    cs = cloudlets()
    pl = Placement("c1", "c2", ("c3",))
    assert choose_promotion(pl, "s3", g, cs) == "c3"
    assert choose_promotion(pl, "s4", g, cs) == "c3"  # no replica at s4: nearest
    assert choose_promotion(pl, "s5", g, cs) == "c2"
    assert choose_promotion(pl, "s4", g, cloudlets(c3={"up": False})) == "c2"  # down: skipped
    assert choose_promotion(pl, "s3", g, {"c1": "s1", "c2": "s2", "c3": "s3"}) == "c3"


def test_choose_promotion_keeps_primary_on_ties_then_uses_names():
    g = SiteGraph.from_edges([("s1", "s2", 10), ("s2", "s3", 10)])
    sites = {"c1": "s1", "c3": "s3", "c3b": "s3"}
    assert choose_promotion(Placement("c3", "c1"), "s2", g, sites) == "c3"
    assert choose_promotion(Placement("c1", "c3"), "s2", g, sites) == "c1"
    assert choose_promotion(Placement("c1", "c3b", ("c3",)), "s3", g, sites) == "c3"
    with pytest.raises(SchedulingError, match="no replica"):
        choose_promotion(Placement("c1"), "s2", g, [CloudletStatus("c1", "s1", up=False)])


def test_placement_roles_and_changes():
    old = Placement("c1", "c2", ("c3",))
    new = Placement("c2", "c3", ("c4",))
    assert old.replicas == ("c1", "c2", "c3")
    assert [new.role_of(c) for c in ("c2", "c3", "c4", "c1")] == ["primary", "backup", "secondary", None]
    assert changes(old, new) == (["c4"], ["c1"])
    with pytest.raises(ValueError):
        ServiceSpec("s", IMAGE, replicas=0)
