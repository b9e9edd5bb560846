"""The network's identity of each probe request: joined by source port, checked against
the body when the service names itself, unknown when the ledger cannot say."""

from __future__ import annotations

from mec.measure.identity import from_network
from mec.measure.probelog import ProbeRecord

OFFSET = 1000.0  # monotonic -> wall clock


def rec(seq, sport, t, replica=None, status="200"):
    return ProbeRecord(seq, t, t + 0.01, status, 10.0, replica, sport)


def entry(port, replica, t):
    return {"ue": "u1", "ue_port": port, "replica": replica, "learned_at": t + OFFSET,
            "protocol": "tcp", "service": "svc", "switch": 1}


INSTANCE = {"c1": "svc-c1", "c2": "svc-c2"}.get


def test_each_request_gets_the_instance_its_connection_reached():
    records = [rec(0, 40000, 1.0), rec(1, 40001, 2.0), rec(2, 40002, 3.0)]
    ledger = [entry(40000, "c1", 1.005), entry(40001, "c2", 2.005), entry(40002, "c2", 3.004)]
    joined = from_network(records, ledger, INSTANCE, ue="u1", offset=OFFSET)
    assert [r.replica for r in joined.records] == ["svc-c1", "svc-c2", "svc-c2"]
    assert joined.counts_in(0, 10) == {"unattributed": 0, "body_mismatch": None}


def test_a_reply_the_ledger_does_not_know_is_unattributed_not_guessed():
    records = [rec(0, 40000, 1.0), rec(1, 40001, 2.0), rec(2, None, 3.0, status="timeout")]
    joined = from_network(records, [entry(40000, "c1", 1.005)], INSTANCE, offset=OFFSET)
    assert [r.replica for r in joined.records] == ["svc-c1", None, None]
    assert joined.counts_in(0, 10)["unattributed"] == 1  # the timeout is not a reply
    assert joined.counts_in(1.5, 10)["unattributed"] == 1
    assert joined.counts_in(0, 1.5)["unattributed"] == 0


def test_a_body_that_names_another_instance_is_counted():
    records = [rec(0, 40000, 1.0, replica="svc-c1"), rec(1, 40001, 2.0, replica="svc-c1")]
    ledger = [entry(40000, "c1", 1.005), entry(40001, "c2", 2.005)]
    joined = from_network(records, ledger, INSTANCE, check_body=True, offset=OFFSET)
    assert [r.replica for r in joined.records] == ["svc-c1", "svc-c2"]
    assert joined.counts_in(0, 10) == {"unattributed": 0, "body_mismatch": 1}


def test_a_host_that_is_no_replica_of_the_service_names_nothing():
    joined = from_network([rec(0, 40000, 1.0)], [entry(40000, "cloud", 1.005)], INSTANCE,
                          offset=OFFSET)
    assert joined.records[0].replica is None
