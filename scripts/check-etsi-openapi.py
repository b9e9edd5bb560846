"""Check the testbed's ETSI MEC documents against the OpenAPI documents of MEC 013 and MEC 021.

    .venv/bin/python scripts/check-etsi-openapi.py LOCATION_OPENAPI.yaml AMS_OPENAPI.yaml

The OpenAPI files are not part of the project (nothing is downloaded at run time): fetch
them yourself (docs/etsi-mec.md says which were used). A server on 127.0.0.1 over the
paper topology answers every supported query, takes every subscription and sends one
notification of each kind to a local receiver; each document is validated against the
OpenAPI's data type of the same name. Prints one line per document and the count of
invalid ones (exit status 1 if any).
"""
import sys
import time
from pathlib import Path

import requests
import yaml
from jsonschema import Draft4Validator

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from mec.core.events import EventLog  # noqa: E402 - after the path
from mec.etsi.location import LocationService, User
from mec.etsi.mobility import AppInstance, AppMobilityService, Procedure, TRIGGERED, COMPLETED
from mec.etsi.server import EtsiServer, listener
from mec.etsi.sink import NotificationSink
from mec.etsi.subscriptions import SubscriptionStore
from topologies.loader import load

def fix(node):
    if isinstance(node, dict):
        out = {k: fix(v) for k, v in node.items() if k not in ("example", "discriminator")}
        if "$ref" in out:
            out["$ref"] = out["$ref"].replace("#/components/schemas/", "#/definitions/")
            return {"$ref": out["$ref"]}
        if out.get("nullable"):
            out.pop("nullable")
        return out
    if isinstance(node, list):
        return [fix(v) for v in node]
    return node

def validator(path):
    doc = yaml.safe_load(open(path))
    defs = fix(doc["components"]["schemas"])
    return lambda name, inst: [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in
        Draft4Validator({"$ref": f"#/definitions/{name}", "definitions": defs}).iter_errors(inst)]

loc_v, ams_v = validator(sys.argv[1]), validator(sys.argv[2])
topo = load(ROOT / "topologies" / "paper.yaml"); ip = topo.ue("u1").ip
store, events = SubscriptionStore(), EventLog()
insts = [AppInstance("app", "app-c1", "c1", "s1", "10.0.1.1", 8080, "primary", "u1", ip),
         AppInstance("app", "app-c2", "c2", "s2", "10.0.1.2", 8080, "backup", "u1", ip)]
srv = EtsiServer(LocationService(topo, [User("u1", ip, "s1", time.time())], store),
                 AppMobilityService(lambda: insts, store), store, events,
                 [listener("127.0.0.1", 0)]).start()
base = f"http://127.0.0.1:{srv.sockets[0].getsockname()[1]}"
results = []
def check(v, name, doc, what):
    errs = v(name, doc); results.append((what, name, errs))
L, A = base + "/location/v2", base + "/amsi/v1"
with NotificationSink() as sink:
    check(loc_v, "InlineUserList", requests.get(L + "/queries/users").json(), "GET users")
    check(loc_v, "InlineZoneList", requests.get(L + "/queries/zones").json(), "GET zones")
    check(loc_v, "InlineZoneInfo", requests.get(L + "/queries/zones/s1").json(), "GET zone")
    aps = requests.get(L + "/queries/zones/s1/accessPoints").json()
    check(loc_v, "InlineAccessPointList", aps, "GET aps")
    apid = aps["accessPointList"]["accessPoint"][0]["accessPointId"]
    check(loc_v, "InlineAccessPointInfo", requests.get(f"{L}/queries/zones/s1/accessPoints/{apid}").json(), "GET ap")
    check(loc_v, "InlineTerminalDistance", requests.get(L + "/queries/distance", params={"address": [ip, ip]}).json(), "GET distance")
    check(loc_v, "ProblemDetails", requests.get(L + "/queries/zones/x").json(), "404")
    cb = {"notifyURL": sink.url}
    for kind, inner in (("userTracking", {"address": f"acr:{ip}"}), ("zonalTraffic", {"zoneId": "s2"}),
                        ("zoneStatus", {"zoneId": "s1"})):
        key = f"{kind}Subscription"
        body = {key: dict(inner, callbackReference=cb)}
        check(loc_v, "Inline" + key[0].upper() + key[1:], body, f"POST {kind} request")
        r = requests.post(f"{L}/subscriptions/{kind}", json=body).json()
        check(loc_v, "Inline" + key[0].upper() + key[1:], r, f"POST {kind} answer")
        check(loc_v, "InlineNotificationSubscriptionList", requests.get(f"{L}/subscriptions/{kind}").json(), f"GET {kind} list")
    srv.move("u1", "s2", time.time(), time.monotonic())
    reg_body = {"serviceConsumerId": {"appInstanceId": "app-c1"}, "deviceInformation": [
        {"associateId": {"type": "UE_IPv4_ADDRESS", "value": ip}, "contextTransferState": "NOT_TRANSFERRED"}]}
    check(ams_v, "RegistrationInfo", reg_body, "POST registration request")
    reg = requests.post(A + "/app_mobility_services", json=reg_body).json()
    check(ams_v, "RegistrationInfo", reg, "POST registration answer")
    for st in ("MobilityProcedureSubscription", "AdjacentAppInfoSubscription"):
        body = {"subscriptionType": st, "callbackReference": sink.url, "filterCriteria": {"appInstanceId": "app-c1"}}
        if st.startswith("Mob"):
            body["filterCriteria"]["mobilityStatus"] = [TRIGGERED, COMPLETED]
        check(ams_v, st, body, f"POST {st} request")
        check(ams_v, st, requests.post(A + "/subscriptions", json=body).json(), f"POST {st} answer")
    check(ams_v, "SubscriptionLinkList", requests.get(A + "/subscriptions").json(), "GET subscriptions")
    adj = requests.get(A + "/queries/adjacent_app_instances").json()
    for item in adj:
        check(ams_v, "AdjacentAppInstanceInfo", item, "GET adjacent item")
    srv.procedure(Procedure(TRIGGERED, "app", "proactive", "u1", ip, "app-c1", "app-c2", "10.0.1.2", 8080, time.monotonic(), None))
    srv.replicas_changed("app", time.monotonic())
    time.sleep(1)
    for r in sink.received:
        b = r.body
        name = b.get("notificationType") or ("Inline" + next(iter(b))[0].upper() + next(iter(b))[1:])
        check(ams_v if "notificationType" in b else loc_v, name, b, "notification")
srv.stop()
bad = 0
for what, name, errs in results:
    print(("OK  " if not errs else "ERR ") + f"{what:32} {name}" + ("" if not errs else "  " + "; ".join(errs)))
    bad += bool(errs)
print(f"{len(results)} documents, {bad} not valid against the OpenAPI")
sys.exit(1 if bad else 0)
