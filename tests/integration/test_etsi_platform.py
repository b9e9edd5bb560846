"""The ETSI MEC platform on a real testbed (paper.yaml): MEC 013 and MEC 021 notifications
at the moment of real moves, reactive and proactive, to a subscriber on the host and to one
inside a cloudlet (reached over the emulated network from the cloud node).

``MEC_PREFIX=mxa .venv/bin/python -m pytest tests/integration/test_etsi_platform.py -q -s``
prints the notification delays (network move -> subscriber's acknowledgement) per API,
strategy and status (medians over the moves)."""

import json
from pathlib import Path

import pytest

from mec.core.events import EventLog
from mec.core.netns import NamespaceThread
from mec.etsi import schema
from mec.etsi.delays import notification_delays, table
from mec.etsi.mobility import COMPLETED, FAILED, TRIGGERED
from mec.etsi.platform import MecPlatform
from mec.etsi.sink import NotificationSink
from mec.orchestrator import EdgeOrchestrator
from mec.orchestrator.scheduler import ServiceSpec
from mec.testbed import Testbed
import requests
from topologies.loader import load

pytestmark = pytest.mark.integration
TOPO = Path(__file__).resolve().parents[2] / "topologies" / "paper.yaml"


@pytest.fixture
def testbed():
    tb = Testbed(load(TOPO), controller="os-ken", events=EventLog())
    try:
        tb.start()
        yield tb
    finally:
        tb.stop()


def ok(api, type_name, doc):
    bad = schema.problem(api, type_name, doc)
    assert bad is None, bad
    return doc


def move_and_check(tb, orch, sink, far, dep, to_site):
    """Move u1 to TO_SITE; the user-tracking notes (host and cloudlet subscribers) and the
    AMS's TRIGGERED then COMPLETED for DEP's new primary arrive."""
    from_site = tb.network.ue_site["u1"]
    marks = {id(s): len(s.received) for s in (sink, far)}
    move = tb.network.move("u1", to_site)
    orch.wait_for_site("u1", to_site, timeout=60)
    new = dep.replicas.primary.cloudlet
    for s in (sink, far):
        for event, zone in (("Leaving", from_site), ("Entering", to_site)):
            got = s.wait(lambda b: b.get("zonalPresenceNotification", {}).get("zoneId") == zone
                         and b["zonalPresenceNotification"]["userEventType"] == event,
                         timeout=15, since=marks[id(s)])
            ok("mec013", "InlineZonalPresenceNotification", got.body)
            assert got.t > move.t_request
    done = sink.wait(lambda b: b.get("mobilityStatus") == COMPLETED, timeout=60,
                     since=marks[id(sink)])
    mine = [r for r in sink.received[marks[id(sink)]:] if r.path == "/ams"]
    statuses = [r.body["mobilityStatus"] for r in mine]
    assert statuses == [TRIGGERED, COMPLETED], statuses
    for r in mine:
        ok("mec021", "MobilityProcedureNotification", r.body)
        assert r.t > move.t_request
        assert r.body["targetAppInfo"]["appInstanceId"] == dep.instance(new)
    assert done.body["targetAppInfo"]["commInterface"]["ipAddresses"] == [
        {"host": orch.edges[new].ip, "port": dep.port}]


def test_notifications_follow_reactive_and_proactive_moves(testbed):
    tb = testbed
    with EdgeOrchestrator(tb, events=tb.events) as orch, MecPlatform(tb, orch) as mec, \
            NotificationSink() as sink:
        c1 = tb.network.host("c1")
        # the platform on the emulated network, from a cloudlet
        out = c1.node.cmd(["curl", "-s", "-m", "5", f"{mec.emulated_url}/location/v2/queries/zones"])
        zones = ok("mec013", "InlineZoneList", json.loads(out))["zoneList"]
        assert [z["zoneId"] for z in zones["zone"]] == ["s1", "s2", "s3"]
        assert zones["resourceURL"].startswith(mec.emulated_url)
        users = requests.get(f"{mec.host_url}/location/v2/queries/users", timeout=5).json()
        ue_ip = tb.topology.ue("u1").ip
        assert [(u["address"], u["zoneId"]) for u in users["userList"]["user"]] == \
            [(f"acr:{ue_ip}", "s1")]
        # a subscriber inside cloudlet c1 (its socket made in c1's namespace)
        ns = NamespaceThread(c1.netns_path, name="far-sink")
        far = ns.call(NotificationSink, host=c1.ip)
        with far:
            for url in (sink.url + "/loc", far.url + "/loc"):
                r = requests.post(f"{mec.host_url}/location/v2/subscriptions/userTracking",
                                  json={"userTrackingSubscription": {
                                      "callbackReference": {"notifyURL": url},
                                      "address": f"acr:{ue_ip}"}}, timeout=5)
                assert r.status_code == 201, r.text
            r = requests.post(f"{mec.host_url}/amsi/v1/subscriptions", json={
                "subscriptionType": "MobilityProcedureSubscription",
                "callbackReference": sink.url + "/ams",
                "filterCriteria": {"associateId": [{"type": "UE_IPv4_ADDRESS", "value": ue_ip}],
                                   "mobilityStatus": [TRIGGERED, COMPLETED, FAILED]}},
                timeout=5)
            assert r.status_code == 201, r.text
            dep = orch.deploy(ServiceSpec("svp", "busybox", replicas=2), "u1", "proactive")
            for site in ("s2", "s1", "s2"):
                move_and_check(tb, orch, sink, far, dep, site)
            orch.undeploy("svp")
            dep = orch.deploy(ServiceSpec("svr", "busybox"), "u1", "reactive",
                              image_source="cached")
            for site in ("s3", "s2"):
                move_and_check(tb, orch, sink, far, dep, site)
        ns.close()
        rows = notification_delays(mec.events.events())
    print("\n" + table(rows))
    by = {(r["api"], r["strategy"], r["status"], r["reach"]): r for r in rows}
    for reach in ("host", "emulated"):  # the subscriber on the host, the one in c1
        for event in ("Entering", "Leaving"):
            row = by[("mec013", "-", event, reach)]
            assert row["n"] == 5 and row["failed"] == 0, row
    for strategy, moves in (("proactive", 3), ("reactive", 2)):
        for status in (TRIGGERED, COMPLETED):
            row = by[("mec021", strategy, status, "host")]
            assert row["n"] == moves and row["failed"] == 0, row
            assert 0 < row["median_s"] < 30, row
    # the network's move comes first, then the orchestrator's work
    assert by[("mec021", "reactive", COMPLETED, "host")]["median_s"] > \
        by[("mec021", "reactive", TRIGGERED, "host")]["median_s"]
