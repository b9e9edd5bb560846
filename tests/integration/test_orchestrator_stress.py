"""Stress of the Edge Orchestrator: many users moving fast under probes on ring6.yaml.

UEs alternate between proactive (2 replicas) and reactive (image cached everywhere)
deployments, each with its own service and a user probe; every PERIOD seconds each UE
moves to a random neighbouring site, for DURATION seconds. Checked throughout and after:

* the one-primary invariant never breaks (every ``roles`` event and a check of every
  replica set after each round of moves);
* every move has an outcome: the orchestrator's record of its location event ended
  ``ok`` or ``failed`` with a cause (none left pending once idle); a move without a
  location event is counted ``no_location``;
* at the end every replica the orchestrator keeps has its container running, every
  engine's containers of a service are exactly its replicas there (listed by the service
  label through the engine's own Docker client: no leaked container), and a
  request from each UE to its service's virtual IP is answered by its primary (the
  controller never steers to a retired container).

The suite runs a SHORT version (4 UEs, a move every 1 s for 15 s); ``MEC_STRESS=long``
runs the one of issue 11 (10 UEs moving every 0.5 s for 60 s).
"""

from __future__ import annotations

import json
import os
import random
import time
from collections import Counter
from pathlib import Path

import pytest

from mec.core import config
from mec.core.events import EventLog
from mec.measure.probe import ProbeProcess
from mec.orchestrator import EdgeOrchestrator
from mec.orchestrator.scheduler import ServiceSpec
from mec.testbed import Testbed
from topologies.loader import load

from replica_engines import assert_engines_hold_the_replica_set

pytestmark = pytest.mark.integration
TOPO = Path(__file__).resolve().parents[2] / "topologies" / "ring6.yaml"
LONG = os.environ.get("MEC_STRESS") == "long"
UES = 10 if LONG else 4
PERIOD_S = 0.5 if LONG else 1.0
DURATION_S = 60.0 if LONG else 15.0
PROBE_RATE = 20.0


def outcomes_of_moves(made: list[tuple[str, str]], records: list) -> list[str]:
    """Each move (from, to) made, matched in order to the orchestrator's records of its
    location events: the record's outcome, or ``no_location`` when none came for it."""
    out, i = [], 0
    for move in made:
        j = next((k for k in range(i, len(records))
                  if (records[k].from_site, records[k].site) == move), None)
        if j is None:
            out.append("no_location")
            continue
        out.append(records[j].outcome)
        i = j + 1
    return out


def diagnose(tb, orch, dep, events, path: Path) -> Path:
    """What the Network Manager and the orchestrator say about DEP's user, written to PATH."""
    ue, primary = dep.ue, dep.replicas.primary
    host = tb.network.hosts[ue]
    node = host.node
    path.write_text(json.dumps({
        "ue_site": tb.network.ue_site[ue], "dep_site": dep.site, "roles": dep.replicas.roles(),
        "moves": [vars(r) for r in dep.moves],
        "direct": node.cmd(["curl", "-s", "-m", "3",
                            f"http://{orch.edges[primary.cloudlet].ip}:{dep.port}/"]),
        "ping": node.cmd(["ping", "-c", "2", "-W", "1", orch.edges[primary.cloudlet].ip]),
        "locations": tb.nm.locations(), "steering": tb.nm.steering(),
        "flows": {sw["dpid"]: [f for f in tb.nm.flows(sw["dpid"])
                               if host.ip in json.dumps(f) or host.mac in json.dumps(f)]
                  for sw in tb.nm.switches()},
        "nm_events": [e for e in tb.nm.events() if e.get("host") == ue],
        "events": [e.to_dict() for e in events.events()
                   if e.get("service") == dep.name or e.get("ue") == ue]},
        default=str, indent=1))
    return path


def test_many_users_moving_fast_keep_one_primary_and_every_move_has_an_outcome(tmp_path):
    topo = load(TOPO)
    ues = [u.name for u in topo.ues][:UES]
    rng = random.Random(11)
    broken: list[str] = []
    events = EventLog(tmp_path / "events.jsonl")

    def check_roles(ev) -> None:
        roles = list(ev["roles"].values())
        if roles and roles.count("primary") != 1:
            broken.append(f"{ev['service']}: {ev['roles']}")

    events.subscribe(check_roles, "roles")
    with Testbed(topo, controller="os-ken", events=events) as tb, \
            EdgeOrchestrator(tb, events=events) as orch:
        deps = {}
        for i, ue in enumerate(ues):
            strategy = "proactive" if i % 2 == 0 else "reactive"
            spec = ServiceSpec(f"svc{i}", "busybox", replicas=2 if strategy == "proactive" else 1)
            deps[ue] = orch.deploy(spec, ue, strategy, image_source="cached",
                                   port=config.SERVICE_PORT + i)  # services share cloudlets
        orch.wait_idle()
        probes = [ProbeProcess(tb.network.hosts[ue].node,
                               f"http://{deps[ue].vip}:{deps[ue].port}/",
                               tmp_path / f"probe-{ue}.csv", rate=PROBE_RATE, timeout=1.0)
                  for ue in ues]
        for p in probes:
            p.start()
        made: dict[str, list[tuple[str, str]]] = {ue: [] for ue in ues}
        t_end = time.monotonic() + DURATION_S
        try:
            while time.monotonic() < t_end:
                t_round = time.monotonic()
                for ue in ues:
                    here = tb.network.ue_site[ue]
                    there = rng.choice(topo.neighbours(here))
                    tb.network.move(ue, there)
                    made[ue].append((here, there))
                for dep in deps.values():
                    dep.replicas.check()  # raises InvariantError if it ever broke
                time.sleep(max(0.0, PERIOD_S - (time.monotonic() - t_round)))
            time.sleep(2.0)  # let the last location events come in
            orch.wait_idle(timeout=300)
        finally:
            logs = [p.stop() for p in probes]
        assert not broken, broken
        errors = [e.to_dict() for e in events.events("error")]
        assert not errors, errors
        per_move, causes = Counter(), Counter()
        for ue, dep in deps.items():
            dep.replicas.check()
            with dep.lock:
                records = list(dep.moves)
            assert all(r.outcome in ("ok", "failed") for r in records), records
            assert all(r.cause for r in records if r.outcome == "failed"), records
            per_move.update(outcomes_of_moves(made[ue], records))
            causes.update(r.cause[:120] for r in records if r.outcome == "failed")
            # the orchestrator's bookkeeping matches the engines: nothing it counts is gone
            for r in dep.replicas.all():
                names = {inst.name for inst in orch.edges[r.cloudlet].instances()
                         if inst.state == "running"}
                assert r.instance in names, (ue, r, names)
            # ... and the engines hold nothing of it outside the set (no leaked container)
            assert_engines_hold_the_replica_set(orch, dep)
        total = sum(len(m) for m in made.values())
        answered = sum(sum(r.ok for r in log) for log in logs)
        leftovers = Counter(e["action"] for e in events.events("replica.leftover"))
        print(f"stress: {len(ues)} UEs, {total} moves, outcomes {dict(per_move)}, "
              f"{answered}/{sum(len(l) for l in logs)} probe requests answered; causes of "
              f"failed moves: {dict(causes)}; leftover containers met: {dict(leftovers)}")
        assert sum(per_move.values()) == total  # every move has an outcome
        assert per_move["ok"] >= 0.8 * total, per_move
        for ue, dep in deps.items():  # each user is served by its primary, end to end
            body = tb.network.hosts[ue].node.cmd(
                ["curl", "-s", "-m", "3", f"http://{dep.vip}:{dep.port}/"]).strip()
            if body != dep.replicas.primary.instance:
                # a UE without any connectivity here was a delay hop's learning bridge
                # dropping the replies to it (test_links.py: a hop is a wire)
                diag = diagnose(tb, orch, dep, events, tmp_path / f"diag-{ue}.json")
                pytest.fail(f"{ue} answered by {body!r}, primary "
                            f"{dep.replicas.primary.instance} ({diag})")
