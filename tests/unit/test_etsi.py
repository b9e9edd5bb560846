"""The ETSI MEC APIs (mec.etsi) without a testbed: the paper topology's model, a server on
127.0.0.1, moves and orchestrator steps handed in as the platform hands them in, and a
real subscriber (or a dead one) on the host."""

import socket
import time
from pathlib import Path

import pytest
import requests

from mec.core.events import EventLog
from mec.core.proc import wait_until
from mec.etsi import schema
from mec.etsi.location import LocationService, User
from mec.etsi.mobility import (COMPLETED, FAILED, TRIGGERED, AppInstance, AppMobilityService,
                               Notified, Procedure)
from mec.etsi.server import EtsiServer, listener
from mec.etsi.sink import NotificationSink
from mec.etsi.subscriptions import SubscriptionStore
from topologies.loader import load

TOPO = Path(__file__).resolve().parents[2] / "topologies" / "paper.yaml"
UE_IP = "10.0.2.1"


def instances():
    return [AppInstance("app", "app-c1", "c1", "s1", "10.0.1.1", 8080, "primary", "u1", UE_IP),
            AppInstance("app", "app-c2", "c2", "s2", "10.0.1.2", 8080, "backup", "u1", UE_IP)]


@pytest.fixture
def platform():
    topo = load(TOPO)
    ip = topo.ue("u1").ip
    store, events = SubscriptionStore(), EventLog()
    loc = LocationService(topo, [User("u1", ip, "s1", time.time())], store,
                          ap_status=lambda s: "Serviceable")
    ams = AppMobilityService(lambda: [i.__class__(**{**i.__dict__, "ue_ip": ip})
                                      for i in instances()], store)
    server = EtsiServer(loc, ams, store, events, [listener("127.0.0.1", 0)],
                        attempts=3, timeout_s=0.3, backoff_s=0.05).start()
    server.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    server.ue_ip = ip
    server.events = events
    try:
        yield server
    finally:
        server.stop()


def get(server, path, **params):
    return requests.get(server.url + path, params=params, timeout=5)


def valid(api, type_name, doc):
    bad = schema.problem(api, type_name, doc)
    assert bad is None, bad
    return doc


def problem_of(resp, status):
    assert resp.status_code == status, resp.text
    assert resp.headers["Content-Type"].startswith("application/problem+json")
    doc = valid("mec013", "ProblemDetails", resp.json())
    assert doc["status"] == status and doc["detail"]
    return doc


# ---------------------------------------------------------------------- MEC 013 queries
def test_location_queries_answer_valid_documents_with_the_topologys_zones(platform):
    zones = valid("mec013", "InlineZoneList", get(platform, "/location/v2/queries/zones").json())
    assert [z["zoneId"] for z in zones["zoneList"]["zone"]] == ["s1", "s2", "s3"]
    assert [z["numberOfUsers"] for z in zones["zoneList"]["zone"]] == [1, 0, 0]
    zone = valid("mec013", "InlineZoneInfo",
                 get(platform, "/location/v2/queries/zones/s2").json())["zoneInfo"]
    assert zone["numberOfAccessPoints"] == 1 and zone["numberOfUsers"] == 0
    aps = valid("mec013", "InlineAccessPointList",
                get(platform, "/location/v2/queries/zones/s1/accessPoints").json())
    ap = aps["accessPointList"]["accessPoint"][0]
    assert ap["accessPointId"].endswith("-s1") and ap["numberOfUsers"] == 1
    assert ap["operationStatus"] == "Serviceable"
    one = get(platform, f"/location/v2/queries/zones/s1/accessPoints/{ap['accessPointId']}")
    assert valid("mec013", "InlineAccessPointInfo", one.json())["accessPointInfo"] == ap
    users = valid("mec013", "InlineUserList", get(platform, "/location/v2/queries/users").json())
    user = users["userList"]["user"][0]
    assert user["address"] == f"acr:{platform.ue_ip}" and user["zoneId"] == "s1"


def test_location_user_filters_and_distance(platform):
    ip = platform.ue_ip
    by_zone = get(platform, "/location/v2/queries/users", zoneId="s2").json()
    assert by_zone["userList"]["user"] == []
    by_addr = get(platform, "/location/v2/queries/users", address=ip).json()
    assert [u["zoneId"] for u in by_addr["userList"]["user"]] == ["s1"]
    both = get(platform, "/location/v2/queries/users", zoneId="s1,s3").json()
    assert len(both["userList"]["user"]) == 1
    d = get(platform, "/location/v2/queries/distance", address=[f"acr:{ip}", ip])
    assert valid("mec013", "InlineTerminalDistance", d.json())["terminalDistance"]["distance"] == 0


def test_location_errors_are_problem_details(platform):
    problem_of(get(platform, "/location/v2/queries/zones/nowhere"), 404)
    problem_of(get(platform, "/location/v2/queries/users", zoneId="nowhere"), 404)
    problem_of(get(platform, "/location/v2/queries/users", address="10.9.9.9"), 404)
    problem_of(get(platform, "/location/v2/queries/zones/s1/accessPoints/nope"), 404)
    problem_of(get(platform, "/location/v2/queries/distance", address=platform.ue_ip), 400)
    problem_of(get(platform, "/location/v2/no/such/thing"), 404)
    problem_of(requests.post(platform.url + "/location/v2/subscriptions/area/circle", json={},
                             timeout=5), 501)
    bad = requests.post(platform.url + "/location/v2/subscriptions/userTracking",
                        json={"userTrackingSubscription": {"callbackReference": {
                            "notifyURL": "http://127.0.0.1:1/"}}}, timeout=5)
    assert "address" in problem_of(bad, 400)["detail"]
    wrong_enum = requests.post(platform.url + "/location/v2/subscriptions/zonalTraffic",
                               json={"zonalTrafficSubscription": {
                                   "callbackReference": {"notifyURL": "http://127.0.0.1:1/"},
                                   "zoneId": "s1", "userEventCriteria": ["Arriving"]}},
                               timeout=5)
    problem_of(wrong_enum, 400)
    not_json = requests.post(platform.url + "/location/v2/subscriptions/zoneStatus",
                             data="{", timeout=5)
    problem_of(not_json, 400)
    problem_of(requests.delete(platform.url + "/location/v2/subscriptions/zoneStatus/sub99",
                               timeout=5), 404)


# ---------------------------------------------------------------------- MEC 013 notifications
def subscribe(server, kind, inner):
    r = requests.post(f"{server.url}/location/v2/subscriptions/{kind}",
                      json={f"{kind}Subscription": inner}, timeout=5)
    assert r.status_code == 201, r.text
    doc = valid("mec013", f"Inline{kind[0].upper()}{kind[1:]}Subscription", r.json())
    assert r.headers["Location"] == doc[f"{kind}Subscription"]["resourceURL"]
    return doc[f"{kind}Subscription"]


def test_a_move_notifies_user_tracking_zonal_traffic_and_zone_status(platform):
    ip = platform.ue_ip
    with NotificationSink() as sink:
        cb = {"notifyURL": sink.url + "/loc", "callbackData": "mine"}
        tracking = subscribe(platform, "userTracking", {"callbackReference": cb, "address": f"acr:{ip}"})
        subscribe(platform, "zonalTraffic", {"callbackReference": cb, "zoneId": "s2",
                                             "userEventCriteria": ["Entering"]})
        subscribe(platform, "zoneStatus", {"callbackReference": cb, "zoneId": "s1",
                                           "numberOfUsersZoneThreshold": 1})
        listed = get(platform, "/location/v2/subscriptions/userTracking").json()
        valid("mec013", "InlineNotificationSubscriptionList", listed)
        assert listed["notificationSubscriptionList"]["userTrackingSubscription"] == [tracking]
        wall, t_event = time.time(), time.monotonic()
        platform.move("u1", "s2", wall, t_event)
        def presence(event, zone):
            return lambda b: (b.get("zonalPresenceNotification", {}).get("userEventType") == event
                              and b["zonalPresenceNotification"]["zoneId"] == zone)
        leaving = sink.wait(presence("Leaving", "s1"))
        entering = sink.wait(presence("Entering", "s2"))
        status = sink.wait(lambda b: "zoneStatusNotification" in b)
        time.sleep(0.2)  # anything else would have come by now
    for r in [leaving, entering, status]:
        key = next(iter(r.body))
        valid("mec013", "Inline" + key[0].upper() + key[1:], r.body)
    note = leaving.body["zonalPresenceNotification"]
    assert note["callbackData"] == "mine" and note["address"] == f"acr:{ip}"
    assert note["currentAccessPointId"].endswith("-s2")
    assert note["previousAccessPointId"].endswith("-s1")
    ts = note["timestamp"]
    assert abs(ts["seconds"] + ts["nanoSeconds"] / 1e9 - wall) < 1e-6  # the network's time
    # userTracking: Leaving + Entering; zonalTraffic(s2, Entering): Entering; zoneStatus: 1
    kinds = sorted(next(iter(r.body)) for r in sink.received)
    assert kinds == ["zonalPresenceNotification"] * 3 + ["zoneStatusNotification"]
    assert status.body["zoneStatusNotification"]["numberOfUsersInZone"] == 0
    sent = [e for e in platform.events.events("etsi.notify")]
    assert len(sent) == 4 and all(e["ok"] and e["attempts"] == 1 for e in sent)
    assert all(e["t_event"] == t_event and e["t_acked"] >= e["t_sent"] >= t_event for e in sent)
    assert all(0 <= e["delay_s"] < 2 for e in sent)


def test_a_dead_subscriber_is_retried_then_dropped_without_holding_up_the_others(platform):
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    dead_url = f"http://127.0.0.1:{dead.getsockname()[1]}/gone"
    dead.close()  # nobody listens there: connection refused
    with NotificationSink(delay_s=5) as hung, NotificationSink() as alive:
        ip = platform.ue_ip
        for url in (dead_url, hung.url, alive.url):
            subscribe(platform, "userTracking", {"callbackReference": {"notifyURL": url},
                                                 "address": ip, "userEventCriteria": ["Entering"]})
        t0 = time.monotonic()
        platform.move("u1", "s2", time.time(), t0)
        got = alive.wait(lambda b: True, timeout=5)
        assert got.t - t0 < 0.5  # not behind the dead or the hung one
        deadline = time.monotonic() + 10
        while len(platform.events.events("etsi.subscription.dropped")) < 2:
            assert time.monotonic() < deadline, "the hung subscriber was never dropped"
            time.sleep(0.05)
        drops = platform.events.events("etsi.subscription.dropped")
    assert {d["callback"] for d in drops} == {dead_url, hung.url}
    failed = [e for e in platform.events.events("etsi.notify") if not e["ok"]]
    assert len(failed) == 2 and all(e["attempts"] == 3 and e["error"] for e in failed)
    left = get(platform, "/location/v2/subscriptions/userTracking").json()
    assert [s["callbackReference"]["notifyURL"]
            for s in left["notificationSubscriptionList"]["userTrackingSubscription"]] == [alive.url]
    assert len(hung.received) == 3  # one try per attempt, each cut at the timeout


# ---------------------------------------------------------------------- MEC 021
def ams_post(server, path, body):
    return requests.post(f"{server.url}/amsi/v1{path}", json=body, timeout=5)


def proc(server, status, t=None):
    return Procedure(status, "app", "proactive", "u1", server.ue_ip, "app-c1", "app-c2", "10.0.1.2", 8080,
                     t or time.monotonic(), (t or time.monotonic()) - 0.01)


def test_registration_crud_and_errors(platform):
    body = {"serviceConsumerId": {"appInstanceId": "app-c1"},
            "deviceInformation": [{"associateId": {"type": "UE_IPv4_ADDRESS",
                                                   "value": platform.ue_ip},
                                   "appMobilityServiceLevel": "APP_MOBILITY_WITHOUT_CONFIRMATION",
                                   "contextTransferState": "NOT_TRANSFERRED"}]}
    r = ams_post(platform, "/app_mobility_services", body)
    assert r.status_code == 201
    reg = valid("mec021", "RegistrationInfo", r.json())
    rid = reg["appMobilityServiceId"]
    assert r.headers["Location"].endswith(f"/app_mobility_services/{rid}")
    listed = requests.get(f"{platform.url}/amsi/v1/app_mobility_services", timeout=5).json()
    assert valid("mec021", "RegistrationInfoList", listed) == [reg]
    bad = ams_post(platform, "/app_mobility_services", {"deviceInformation": []})
    problem_of(bad, 400)
    problem_of(ams_post(platform, "/app_mobility_services", dict(body, appMobilityServiceId="x")),
               400)
    wrong = dict(body, deviceInformation=[{"associateId": {"type": "IMSI", "value": "1"}}])
    problem_of(ams_post(platform, "/app_mobility_services", wrong), 400)
    problem_of(requests.get(f"{platform.url}/amsi/v1/app_mobility_services/nope", timeout=5), 404)
    r = ams_post(platform, f"/app_mobility_services/{rid}/deregister_task", None)
    assert r.status_code == 204
    problem_of(requests.delete(f"{platform.url}/amsi/v1/app_mobility_services/{rid}",
                               timeout=5), 404)


def test_mobility_procedure_notifications_follow_the_filters_and_time_the_context(platform):
    ip = platform.ue_ip
    with NotificationSink() as sink:
        def sub(filters, path):
            r = ams_post(platform, "/subscriptions", {
                "subscriptionType": "MobilityProcedureSubscription",
                "callbackReference": sink.url + path, "filterCriteria": filters})
            assert r.status_code == 201, r.text
            return valid("mec021", "MobilityProcedureSubscription", r.json())
        default = sub({"appInstanceId": "app-c1"}, "/default")
        assert default["filterCriteria"]["mobilityStatus"] == [TRIGGERED]  # the spec's default
        every = sub({"appInstanceId": "app-c1",
                     "associateId": [{"type": "UE_IPv4_ADDRESS", "value": ip}],
                     "mobilityStatus": [TRIGGERED, COMPLETED, FAILED]}, "/all")
        sub({"appInstanceId": "app-c3", "mobilityStatus": [TRIGGERED]}, "/other-app")
        sub({"associateId": [{"type": "UE_IPv4_ADDRESS", "value": "10.9.9.9"}],
             "mobilityStatus": [TRIGGERED]}, "/other-ue")
        links = requests.get(f"{platform.url}/amsi/v1/subscriptions",
                             params={"subscriptionType": "mobility_proc"}, timeout=5).json()
        assert len(valid("mec021", "SubscriptionLinkList", links)["_links"]["subscription"]) == 4
        problem_of(requests.get(f"{platform.url}/amsi/v1/subscriptions",
                                params={"subscriptionType": "everything"}, timeout=5), 400)
        reg = ams_post(platform, "/app_mobility_services", {
            "serviceConsumerId": {"appInstanceId": "app-c1"},
            "deviceInformation": [{"associateId": {"type": "UE_IPv4_ADDRESS", "value": ip},
                                   "contextTransferState": "NOT_TRANSFERRED"}]}).json()
        platform.procedure(proc(platform, TRIGGERED))
        platform.procedure(proc(platform, COMPLETED))
        last = sink.wait(lambda b: b.get("mobilityStatus") == COMPLETED)
        time.sleep(0.2)  # anything else would have come by now
        # the platform has the three acknowledgements (the sink answered; on a loaded
        # machine the platform may read an answer later than the sink sent it)
        wait_until(lambda: len([e for e in platform.events.events("etsi.notify")
                                if e.get("type") == "MobilityProcedureNotification"
                                and e.get("ok")]) == 3,
                   timeout=5, interval=0.01, what="the platform's three acknowledgements")
        # app-c1 was told to move the user's context: the orchestrator must keep it until
        # it says it did; app-c3 (subscribed, no procedure) and app-c2 (not subscribed) not
        holds = lambda instance: platform.call(platform.mobility.holds, instance)  # noqa: E731
        assert (holds("app-c1"), holds("app-c3"), holds("app-c2")) == (True, False, False)
        paths = sorted((r.path, r.body["mobilityStatus"]) for r in sink.received)
        assert paths == [("/all", COMPLETED), ("/all", TRIGGERED), ("/default", TRIGGERED)]
        order = [r.body["mobilityStatus"] for r in sink.received if r.path == "/all"]
        assert order == [TRIGGERED, COMPLETED]
        for r in sink.received:
            valid("mec021", "MobilityProcedureNotification", r.body)
        assert last.body["targetAppInfo"] == {"appInstanceId": "app-c2", "commInterface": {
            "ipAddresses": [{"host": "10.0.1.2", "port": 8080}]}}
        assert last.body["associateId"] == [{"type": "UE_IPv4_ADDRESS", "value": ip}]
        assert last.body["_links"]["subscription"]["href"] == every["_links"]["self"]["href"]
        # the source instance moved the context and says so
        reg["deviceInformation"][0]["contextTransferState"] = "USER_CONTEXT_TRANSFER_COMPLETED"
        r = requests.put(f"{platform.url}/amsi/v1/app_mobility_services/"
                         f"{reg['appMobilityServiceId']}", json=reg, timeout=5)
        assert r.status_code == 200, r.text
        assert holds("app-c1") is False
    done = platform.events.wait_for("etsi.context_transfer", timeout=5)
    assert done["app_instance"] == "app-c1" and done["ue"] == "u1"
    assert done["status"] == COMPLETED and 0 < done["transfer_s"] < 5
    assert done["t_completed"] > done["t_notified"] > done["t_event"] > done["t_move"]


def test_a_context_transfer_is_timed_from_the_latest_procedure_whatever_order_acks_came():
    """Each subscription has its own delivery queue: an app's TRIGGERED notification on one
    subscription can be acknowledged after its COMPLETED one on another. The transfer the
    app then reports belongs to the latest procedure (CI: it was taken for the TRIGGERED)."""
    ams = AppMobilityService(instances, SubscriptionStore())
    reg = ams.register({"serviceConsumerId": {"appInstanceId": "app-c1"},
                        "deviceInformation": [{"associateId": {"type": "UE_IPv4_ADDRESS",
                                                               "value": UE_IP},
                                               "contextTransferState": "NOT_TRANSFERRED"}]})
    t = time.monotonic()
    triggered = Procedure(TRIGGERED, "app", "proactive", "u1", UE_IP, "app-c1", "app-c2",
                          "10.0.1.2", 8080, t, t - 0.01)
    completed = Procedure(COMPLETED, "app", "proactive", "u1", UE_IP, "app-c1", "app-c2",
                          "10.0.1.2", 8080, t + 0.1, t - 0.01)
    ams.notified[UE_IP] = [Notified("app-c1", completed, t + 0.2),
                           Notified("app-c1", triggered, t + 0.3)]  # acks in reverse order
    body = {**reg, "deviceInformation": [
        {**reg["deviceInformation"][0], "contextTransferState": "USER_CONTEXT_TRANSFER_COMPLETED"}]}
    _, done = ams.update_registration(reg["appMobilityServiceId"], body)
    assert [d["notified"].procedure.status for d in done] == [COMPLETED]


def test_adjacent_instances_query_and_notification(platform):
    r = requests.get(f"{platform.url}/amsi/v1/queries/adjacent_app_instances", timeout=5)
    assert [i["appInstanceId"] for i in valid("mec021", "AdjacentAppInstanceList", r.json())] \
        == ["app-c1", "app-c2"]
    r = requests.get(f"{platform.url}/amsi/v1/queries/adjacent_app_instances",
                     params={"filter": "(eq,appInstanceId,app-c1)"}, timeout=5)
    only = valid("mec021", "AdjacentAppInstanceList", r.json())
    assert [(i["appInstanceId"], i["appInstanceCommLink"][0]["ipAddresses"][0]["host"])
            for i in only] == [("app-c2", "10.0.1.2")]
    problem_of(requests.get(f"{platform.url}/amsi/v1/queries/adjacent_app_instances",
                            params={"filter": "(gt,port,1)"}, timeout=5), 400)
    problem_of(requests.get(f"{platform.url}/amsi/v1/queries/adjacent_app_instances",
                            params={"filter": "(eq,appInstanceId,ghost)"}, timeout=5), 404)
    with NotificationSink() as sink:
        r = ams_post(platform, "/subscriptions", {
            "subscriptionType": "AdjacentAppInfoSubscription", "requestTestNotification": True,
            "callbackReference": sink.url, "filterCriteria": {"appInstanceId": "app-c1"}})
        assert r.status_code == 201
        valid("mec021", "AdjacentAppInfoSubscription", r.json())
        test = sink.wait(lambda b: b.get("notificationType") == "TestNotification")
        valid("mec021", "TestNotification", test.body)
        platform.replicas_changed("app", time.monotonic())
        platform.replicas_changed("app", time.monotonic())  # same set: not sent again
        note = sink.wait(lambda b: b.get("notificationType") == "AdjacentAppInfoNotification")
        time.sleep(0.2)
    valid("mec021", "AdjacentAppInfoNotification", note.body)
    assert [a["appInstanceId"] for a in note.body["adjacentAppInfo"]] == ["app-c2"]
    assert len(sink.received) == 2


def test_subscription_errors(platform):
    base = {"subscriptionType": "MobilityProcedureSubscription", "filterCriteria": {}}
    problem_of(ams_post(platform, "/subscriptions", base), 400)  # no callbackReference
    problem_of(ams_post(platform, "/subscriptions", dict(base, subscriptionType="Other",
                                                         callbackReference="http://x/")), 400)
    problem_of(ams_post(platform, "/subscriptions", dict(base, callbackReference="http://x/",
               filterCriteria={"mobilityStatus": ["MOVED"]})), 400)
    r = ams_post(platform, "/subscriptions", dict(base, callbackReference="http://x/"))
    sid = r.json()["_links"]["self"]["href"].rsplit("/", 1)[1]
    changed = dict(r.json(), callbackReference="http://y/")
    r2 = requests.put(f"{platform.url}/amsi/v1/subscriptions/{sid}", json=changed, timeout=5)
    assert r2.status_code == 200 and r2.json()["callbackReference"] == "http://y/"
    kind = dict(changed, subscriptionType="AdjacentAppInfoSubscription")
    problem_of(requests.put(f"{platform.url}/amsi/v1/subscriptions/{sid}", json=kind,
                            timeout=5), 400)
    assert requests.delete(f"{platform.url}/amsi/v1/subscriptions/{sid}",
                           timeout=5).status_code == 204
    problem_of(requests.get(f"{platform.url}/amsi/v1/subscriptions/{sid}", timeout=5), 404)


def test_every_schema_type_compiles():
    for api in schema.APIS:
        for name in schema.names(api):
            schema.validator(api, name)
