"""Replica roles: exactly one primary, at most one backup, whatever the order of events."""

import threading

import pytest

from mec.orchestrator.replicas import BACKUP, PRIMARY, SECONDARY, InvariantError, ReplicaSet


def three() -> ReplicaSet:
    rs = ReplicaSet("svc")
    rs.add("c1", "s1", "svc-c1", PRIMARY)
    rs.add("c2", "s2", "svc-c2", BACKUP)
    rs.add("c3", "s3", "svc-c3", SECONDARY)
    return rs


def test_roles_after_deploy():
    assert three().roles() == {"c1": PRIMARY, "c2": BACKUP, "c3": SECONDARY}


def test_a_second_primary_is_refused():
    rs = three()
    with pytest.raises(InvariantError, match="already has primary c1"):
        rs.add("c4", "s4", "svc-c4", PRIMARY)
    assert rs.roles()["c1"] == PRIMARY and "c4" not in rs


def test_a_second_backup_becomes_a_secondary():
    rs = three()
    rs.add("c4", "s4", "svc-c4", BACKUP)
    assert rs.roles()["c4"] == SECONDARY and rs.backup.cloudlet == "c2"


def test_promotion_demotes_the_old_primary_and_rechooses_the_backup_by_order():
    rs = three()
    old = rs.promote("c3", backup_order=["c2", "c1"])
    assert old.cloudlet == "c1"
    assert rs.roles() == {"c1": SECONDARY, "c2": BACKUP, "c3": PRIMARY}
    rs.promote("c2", backup_order=["c1", "c3"])
    assert rs.roles() == {"c1": BACKUP, "c2": PRIMARY, "c3": SECONDARY}


def test_promoting_the_primary_changes_nothing_but_the_backup_choice():
    rs = three()
    assert rs.promote("c1", backup_order=["c3"]) is None
    assert rs.roles() == {"c1": PRIMARY, "c2": SECONDARY, "c3": BACKUP}


def test_an_unhealthy_replica_is_never_chosen_as_backup():
    rs = three()
    rs.mark("c2", healthy=False)
    rs.promote("c1", backup_order=["c2", "c3"])
    assert rs.backup.cloudlet == "c3"


def test_the_primary_cannot_be_removed_while_others_exist():
    rs = three()
    with pytest.raises(InvariantError, match="promote another replica"):
        rs.remove("c1")
    rs.promote("c2")
    rs.remove("c1")
    assert rs.roles() == {"c2": PRIMARY, "c3": BACKUP}


def test_removing_the_backup_chooses_another():
    rs = three()
    rs.remove("c2")
    assert rs.roles() == {"c1": PRIMARY, "c3": BACKUP}


def test_unknown_cloudlet_names_the_replicas():
    with pytest.raises(KeyError, match="replicas: c1, c2, c3"):
        three().promote("c9")


def test_racing_promotions_never_break_the_invariant():
    rs = three()
    errors = []

    def churn(order):
        try:
            for _ in range(300):
                for c in order:
                    rs.promote(c, backup_order=order)
                    rs.check()
        except Exception as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=churn, args=(o,)) for o in
               (["c1", "c2", "c3"], ["c3", "c2", "c1"], ["c2", "c3", "c1"])]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    roles = list(rs.roles().values())
    assert roles.count(PRIMARY) == 1 and roles.count(BACKUP) == 1
