"""GS MEC 021 Application Mobility Service v1, the model: registrations, subscriptions, notices.

The testbed's terms in MEC 021's: an **application instance** is a service's instance on
a cloudlet (``appInstanceId`` = its instance name, what ``MEC_INSTANCE`` says; ``appDId``
= the service), reached at its cloudlet's IP and the service's port; the **adjacent**
instances are the other replicas in the orchestrator's replica set; a **UE** is named by
``UE_IPv4_ADDRESS`` = its IP.

Mobility procedures are the orchestrator's real work (docs/etsi-mec.md):
``INTERHOST_MOVEOUT_TRIGGERED`` when a relocation (reactive ``migration.start``) or a
promotion (proactive ``proactive.promote.start``) starts for the UE,
``INTERHOST_MOVEOUT_COMPLETED`` when the user is served by the new instance
(``migration.end``, ``proactive.promote.end``), ``INTERHOST_MOVEOUT_FAILED`` when it fails
(``migration.failed``, a promotion that ended with an error). Context transfer is
application-self-controlled: the source instance moves the user's context itself and
then PUTs its registration with ``contextTransferState`` =
``USER_CONTEXT_TRANSFER_COMPLETED``; `AppMobilityService.update_registration` reports when.
Only the platform's event loop thread calls it.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional

from mec.etsi.answers import ApiError, timestamp
from mec.etsi.subscriptions import Outgoing, Subscription, SubscriptionStore

API = "mec021"
TRIGGERED, COMPLETED, FAILED = ("INTERHOST_MOVEOUT_TRIGGERED", "INTERHOST_MOVEOUT_COMPLETED",
                                "INTERHOST_MOVEOUT_FAILED")
MOBILITY, ADJACENT = "MobilityProcedureSubscription", "AdjacentAppInfoSubscription"
#: the GET /subscriptions filter's values (clause 7.5.3.1)
TYPE_QUERY = {"mobility_proc": MOBILITY, "adj_app_info": ADJACENT}
TRANSFERRED, NOT_TRANSFERRED = "USER_CONTEXT_TRANSFER_COMPLETED", "NOT_TRANSFERRED"


@dataclass(frozen=True)
class AppInstance:
    """One running instance of a deployed service, as the orchestrator has it."""

    service: str
    instance: str
    cloudlet: str
    site: str
    host: str  # the cloudlet's IP
    port: int
    role: str
    ue: str
    ue_ip: str

    def comm(self) -> dict[str, Any]:
        return {"ipAddresses": [{"host": self.host, "port": self.port}]}


@dataclass
class Procedure:
    """What the orchestrator reported about one UE's move of one service."""

    status: str
    service: str
    strategy: str  # proactive | reactive (the deployment's)
    ue: str
    ue_ip: str
    source: str  # instance name the user leaves
    target: str  # instance name the user goes to
    target_host: Optional[str]
    port: int
    t_event: float  # monotonic time of the orchestrator's event
    t_move: Optional[float]  # monotonic time the network saw the move (None: unknown)


@dataclass
class Notified:
    """A MobilityProcedureNotification a subscriber acknowledged."""

    app_instance: Optional[str]  # the subscription's appInstanceId filter
    procedure: Procedure
    t_acked: float


def associate(ip: str) -> dict[str, str]:
    return {"type": "UE_IPv4_ADDRESS", "value": ip}


class AppMobilityService:
    """MEC 021's registrations and subscriptions over INSTANCES (the orchestrator's view)."""

    def __init__(self, instances: Callable[[], list[AppInstance]],
                 store: SubscriptionStore) -> None:
        self.instances = instances
        self.store = store
        self.registrations: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(1)
        #: ue ip -> the acknowledged notifications of its last procedures (context timing)
        self.notified: dict[str, list[Notified]] = {}
        #: service -> the adjacent-instance sets last notified
        self._adjacent_seen: dict[str, frozenset[tuple[str, str, int]]] = {}
        #: source instance -> monotonic time of the procedure it was told to move its
        #: context for, until it reports USER_CONTEXT_TRANSFER_COMPLETED (or the move failed)
        self.awaiting: dict[str, float] = {}

    # ------------------------------------------------------------------ registrations
    def register(self, body: dict[str, Any]) -> dict[str, Any]:
        if "appMobilityServiceId" in body:
            raise ApiError(400, "appMobilityServiceId is set by the service (absent in POST)")
        reg = dict(body)
        reg["appMobilityServiceId"] = f"ams{next(self._ids)}"
        self.registrations[reg["appMobilityServiceId"]] = reg
        return reg

    def registration(self, reg_id: str) -> dict[str, Any]:
        reg = self.registrations.get(reg_id)
        if reg is None:
            raise ApiError(404, f"no application mobility service {reg_id!r}")
        return reg

    def update_registration(self, reg_id: str, body: dict[str, Any]
                            ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Replace REG_ID's registration by BODY; returns it and the context transfers it
        reports done (a device whose state became USER_CONTEXT_TRANSFER_COMPLETED), each
        ``{app_instance, ue_ip, t_completed, notified: Notified | None}``."""
        old = self.registration(reg_id)
        if body.get("appMobilityServiceId", reg_id) != reg_id:
            raise ApiError(400, f"appMobilityServiceId {body['appMobilityServiceId']!r} is not "
                                f"the one of this resource ({reg_id!r})")
        t_completed = time.monotonic()
        before = {d["associateId"].get("value"): d.get("contextTransferState")
                  for d in old.get("deviceInformation", [])}
        reg = dict(body, appMobilityServiceId=reg_id)
        self.registrations[reg_id] = reg
        app = reg["serviceConsumerId"].get("appInstanceId")
        done = []
        for device in reg.get("deviceInformation", []):
            ip = device["associateId"].get("value")
            if device.get("contextTransferState") == TRANSFERRED and before.get(ip) != TRANSFERRED:
                done.append({"app_instance": app, "ue_ip": ip, "t_completed": t_completed,
                             "notified": self._last_notified(app, ip)})
                self.awaiting.pop(app, None)
        return reg, done

    def deregister(self, reg_id: str) -> None:
        self.registration(reg_id)
        del self.registrations[reg_id]

    def _last_notified(self, app: Optional[str], ip: str) -> Optional[Notified]:
        """The acknowledged notification of the latest procedure APP was told of for IP.

        By the procedure's time, not the acknowledgement's: each subscription has its own
        delivery queue, so an earlier procedure's notification (on another subscription of
        the same app) may be acknowledged after a later one's."""
        records = self.notified.get(ip, [])
        mine = [r for r in records if r.app_instance == app] or records
        return max(mine, key=lambda r: (r.procedure.t_event, r.t_acked)) if mine else None

    def acknowledged(self, out: Outgoing, t_acked: float) -> None:
        """A MobilityProcedureNotification was acknowledged (2xx): kept for context timing."""
        proc = out.fields.get("procedure")
        if isinstance(proc, Procedure):
            app = out.sub.doc["filterCriteria"].get("appInstanceId")
            self.notified.setdefault(proc.ue_ip, []).append(Notified(app, proc, t_acked))
            del self.notified[proc.ue_ip][:-20]

    # ------------------------------------------------------------------ subscriptions
    def add_subscription(self, body: dict[str, Any], root: str) -> Subscription:
        if not body.get("callbackReference"):
            raise ApiError(400, "callbackReference is required: this service delivers "
                                "notifications over HTTP only (no Websocket)")
        doc = dict(body)
        if doc["subscriptionType"] == MOBILITY:
            criteria = dict(doc["filterCriteria"])
            # clause 7.3.x: without mobilityStatus the default, TRIGGERED, applies and is shown
            criteria.setdefault("mobilityStatus", [TRIGGERED])
            doc["filterCriteria"] = criteria
        sub_id = self.store.new_id()
        doc["_links"] = {"self": {"href": f"{root}/subscriptions/{sub_id}"}}
        return self.store.add(Subscription(sub_id, API, doc["subscriptionType"],
                                           doc["callbackReference"], doc))

    def replace_subscription(self, sub: Subscription, body: dict[str, Any]) -> Subscription:
        if body["subscriptionType"] != sub.kind:
            raise ApiError(400, f"subscription {sub.id} is a {sub.kind}, not a "
                                f"{body['subscriptionType']}")
        if not body.get("callbackReference"):
            raise ApiError(400, "callbackReference is required")
        doc = dict(body, _links=sub.doc["_links"])
        if sub.kind == MOBILITY:
            doc["filterCriteria"] = dict(doc["filterCriteria"])
            doc["filterCriteria"].setdefault("mobilityStatus", [TRIGGERED])
        sub.doc, sub.callback = doc, doc["callbackReference"]
        return sub

    def link_list(self, root: str, kind: Optional[str]) -> dict[str, Any]:
        return {"_links": {"self": {"href": f"{root}/subscriptions"},
                           "subscription": [{"href": s.doc["_links"]["self"]["href"],
                                             "subscriptionType": s.kind}
                                            for s in self.store.of(API, kind)]}}

    # ------------------------------------------------------------------ adjacent instances
    def adjacent(self, app_instance: Optional[str]) -> list[dict[str, Any]]:
        """AdjacentAppInstanceInfo of every instance (APP_INSTANCE given: of the others of
        its service; 404 when no instance has that name)."""
        everyone = self.instances()
        if app_instance is not None:
            mine = next((i for i in everyone if i.instance == app_instance), None)
            if mine is None:
                raise ApiError(404, f"no application instance {app_instance!r}")
            everyone = [i for i in everyone
                        if i.service == mine.service and i.instance != app_instance]
        return [{"appDId": i.service, "appInstanceId": i.instance,
                 "appInstanceCommLink": [i.comm()],
                 "mecHostInformation": {"hostName": i.cloudlet, "hostId": {
                     "testbed": {"cloudlet": i.cloudlet, "site": i.site}}}}
                for i in everyone]

    def adjacent_changed(self, service: str, t_event: float) -> list[Outgoing]:
        """After SERVICE's replica set changed: AdjacentAppInfoNotifications to the
        subscriptions of its instances (or of none), when the set is not the one last sent."""
        mine = [i for i in self.instances() if i.service == service]
        now = frozenset((i.instance, i.host, i.port) for i in mine)
        if not mine or self._adjacent_seen.get(service) == now:
            return []
        self._adjacent_seen[service] = now
        names = {i.instance for i in mine}
        out = []
        for sub in self.store.of(API, ADJACENT):
            wanted = sub.doc["filterCriteria"].get("appInstanceId")
            if wanted is not None and wanted not in names:
                continue
            others = [i for i in mine if i.instance != wanted]
            body = {"notificationType": "AdjacentAppInfoNotification",
                    "timeStamp": timestamp(),
                    "associateId": [associate(ip) for ip in sorted({i.ue_ip for i in mine})],
                    "adjacentAppInfo": [{"appInstanceId": i.instance, "commInterface": [i.comm()]}
                                        for i in others],
                    "_links": {"subscription": {"href": sub.doc["_links"]["self"]["href"]}}}
            out.append(Outgoing(sub, "AdjacentAppInfoNotification", "AdjacentAppInfo", body,
                                t_event, {"service": service}))
        return out

    # ------------------------------------------------------------------ procedures
    def procedure(self, proc: Procedure) -> list[Outgoing]:
        """The MobilityProcedureNotifications of PROC to the subscriptions it matches."""
        if proc.status == TRIGGERED:
            self._reset_context(proc.ue_ip)
            if self._subscribed(proc.source):
                self.awaiting[proc.source] = proc.t_event
        elif proc.status == FAILED:
            self.awaiting.pop(proc.source, None)
        target: dict[str, Any] = {"appInstanceId": proc.target}
        if proc.target_host is not None and proc.status != FAILED:
            target["commInterface"] = {"ipAddresses": [{"host": proc.target_host,
                                                        "port": proc.port}]}
        out = []
        for sub in self.store.of(API, MOBILITY):
            if not self._matches(sub.doc["filterCriteria"], proc):
                continue
            body = {"notificationType": "MobilityProcedureNotification",
                    "timeStamp": timestamp(),
                    "associateId": [associate(proc.ue_ip)],
                    "mobilityStatus": proc.status, "targetAppInfo": target,
                    "_links": {"subscription": {"href": sub.doc["_links"]["self"]["href"]}}}
            out.append(Outgoing(sub, "MobilityProcedureNotification", proc.status, body,
                                proc.t_event, {"service": proc.service, "ue": proc.ue,
                                               "strategy": proc.strategy,
                                               "source": proc.source, "target": proc.target,
                                               "t_move": proc.t_move, "procedure": proc}))
        return out

    def _subscribed(self, instance: Optional[str]) -> bool:
        """INSTANCE holds a MobilityProcedureSubscription of its own (it moves contexts)."""
        return instance is not None and any(
            sub.doc["filterCriteria"].get("appInstanceId") == instance
            for sub in self.store.of(API, MOBILITY))

    def holds(self, instance: str) -> bool:
        """INSTANCE still has a user's context to move: it was told of a procedure and has
        not reported the transfer (and is still subscribed: a dropped subscriber never
        will). The orchestrator keeps such an instance until then (bounded)."""
        return instance in self.awaiting and self._subscribed(instance)

    @staticmethod
    def _matches(criteria: dict[str, Any], proc: Procedure) -> bool:
        app = criteria.get("appInstanceId")
        if app is not None and app != proc.source:
            return False
        ids = criteria.get("associateId")
        if ids and not any(a.get("value") == proc.ue_ip for a in ids):
            return False
        return proc.status in criteria.get("mobilityStatus", [TRIGGERED])

    def _reset_context(self, ue_ip: str) -> None:
        """A new procedure for the UE: its devices' context is not transferred (yet)."""
        for reg in self.registrations.values():
            for device in reg.get("deviceInformation", []):
                if device["associateId"].get("value") == ue_ip and "contextTransferState" in device:
                    device["contextTransferState"] = NOT_TRANSFERRED
