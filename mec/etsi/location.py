"""GS MEC 013 Location API v2, the model: zones, access points, users, and what a move notifies.

The testbed's terms in MEC 013's: a **zone** is a site (``zoneId`` = the site's name); its
**access point** is the site's switch (``accessPointId`` = the bridge name, one per zone),
with a location where the topology gives the site a longitude/latitude, and
``operationStatus`` from the Network Manager (switch connected: Serviceable); a **user**
is a UE (``address`` = ``acr:`` + its IP, as the specification's examples write it), at
the access point where the Network Manager last located it, since then (``timestamp``).

`LocationService.move` is called once per location event of the Network Manager; it
updates the users and returns the notifications it causes (`Outgoing`), each carrying
the event time the network saw the move at: ``userTracking`` (a user's events),
``zonalTraffic`` (a zone's users entering, leaving, transferring within it) and
``zoneStatus`` (a zone's or access point's user count crossing a threshold).
Only the platform's event loop thread calls it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Optional

from mec.etsi.answers import ApiError, timestamp
from mec.etsi.subscriptions import Outgoing, Subscription, SubscriptionStore

API = "mec013"
EVENTS = ("Entering", "Leaving", "Transferring")
#: subscription kind (URL segment) -> (its data type, the key that wraps it)
KINDS = {"userTracking": ("UserTrackingSubscription", "userTrackingSubscription"),
         "zonalTraffic": ("ZonalTrafficSubscription", "zonalTrafficSubscription"),
         "zoneStatus": ("ZoneStatusSubscription", "zoneStatusSubscription")}


@dataclass
class User:
    name: str
    ip: str
    site: str
    since: float  # wall clock of the location the network reported (or of the first read)

    @property
    def address(self) -> str:
        return f"acr:{self.ip}"


def plain_address(address: str) -> str:
    """An address as the API takes it (``acr:10.0.0.1`` or ``10.0.0.1``) -> the IP."""
    return address[4:] if address.startswith("acr:") else address


class LocationService:
    """MEC 013's view of a topology (`topologies.model.Topology`) and its users."""

    def __init__(self, topology: Any, users: Iterable[User], store: SubscriptionStore,
                 ap_status: Callable[[str], str] = lambda site: "Unknown") -> None:
        self.topology = topology
        self.users: dict[str, User] = {u.name: u for u in users}
        self.store = store
        self.ap_status = ap_status  # site -> Serviceable | Unserviceable | Unknown

    # ------------------------------------------------------------------ names
    def zone_of(self, site: str) -> str:
        return site

    def sites_of_zone(self, zone: str) -> list[str]:
        sites = [s for s in self.topology.site_names if self.zone_of(s) == zone]
        if not sites:
            raise ApiError(404, f"no zone {zone!r} (zones: "
                                f"{', '.join(self.zone_ids())})")
        return sites

    def zone_ids(self) -> list[str]:
        return list(dict.fromkeys(self.zone_of(s) for s in self.topology.site_names))

    def ap_of(self, site: str) -> str:
        return self.topology.switch_name(site)

    def site_of_ap(self, zone: str, ap: str) -> str:
        for site in self.sites_of_zone(zone):
            if self.ap_of(site) == ap:
                return site
        raise ApiError(404, f"zone {zone!r} has no access point {ap!r} (its access points: "
                            f"{', '.join(self.ap_of(s) for s in self.sites_of_zone(zone))})")

    def user_by_address(self, address: str) -> User:
        ip = plain_address(address)
        for user in self.users.values():
            if user.ip == ip:
                return user
        raise ApiError(404, f"no user has address {address!r}")

    # ------------------------------------------------------------------ queries
    def user_info(self, user: User, root: str) -> dict[str, Any]:
        doc = {"address": user.address, "accessPointId": self.ap_of(user.site),
               "zoneId": self.zone_of(user.site),
               "resourceURL": f"{root}/queries/users?address={user.address}",
               "timestamp": timestamp(user.since)}
        where = self._location(user.site)
        if where is not None:
            doc["locationInfo"] = where
        return doc

    def users_doc(self, root: str, zones: list[str], aps: list[str],
                  addresses: list[str]) -> dict[str, Any]:
        for zone in zones:
            self.sites_of_zone(zone)  # 404 for an unknown zone
        wanted_ips = {plain_address(a) for a in addresses}
        found = [u for u in self.users.values()
                 if (not zones or self.zone_of(u.site) in zones)
                 and (not aps or self.ap_of(u.site) in aps)
                 and (not wanted_ips or u.ip in wanted_ips)]
        missing = wanted_ips - {u.ip for u in self.users.values()}
        if missing:
            raise ApiError(404, f"no user has address {', '.join(sorted(missing))}")
        return {"userList": {"resourceURL": f"{root}/queries/users",
                             "user": [self.user_info(u, root) for u in found]}}

    def zone_info(self, zone: str, root: str) -> dict[str, Any]:
        sites = self.sites_of_zone(zone)
        down = [s for s in sites if self.ap_status(s) == "Unserviceable"]
        return {"zoneId": zone, "numberOfAccessPoints": len(sites),
                "numberOfUnserviceableAccessPoints": len(down),
                "numberOfUsers": sum(1 for u in self.users.values() if u.site in sites),
                "resourceURL": f"{root}/queries/zones/{zone}"}

    def zones_doc(self, root: str) -> dict[str, Any]:
        return {"zoneList": {"resourceURL": f"{root}/queries/zones",
                             "zone": [self.zone_info(z, root) for z in self.zone_ids()]}}

    def ap_info(self, site: str, root: str) -> dict[str, Any]:
        zone = self.zone_of(site)
        doc = {"accessPointId": self.ap_of(site), "connectionType": "Unknown",
               "operationStatus": self.ap_status(site),
               "numberOfUsers": sum(1 for u in self.users.values() if u.site == site),
               "interestRealm": site,
               "resourceURL": f"{root}/queries/zones/{zone}/accessPoints/{self.ap_of(site)}"}
        where = self._location(site)
        if where is not None:
            doc["locationInfo"] = where
        return doc

    def aps_doc(self, zone: str, root: str, realm: Optional[str]) -> dict[str, Any]:
        sites = [s for s in self.sites_of_zone(zone) if realm is None or s == realm]
        return {"accessPointList": {"zoneId": zone,
                                    "resourceURL": f"{root}/queries/zones/{zone}/accessPoints",
                                    "accessPoint": [self.ap_info(s, root) for s in sites]}}

    def _location(self, site: str) -> Optional[dict[str, Any]]:
        """A LocationInfo (a point, shape 2) where the topology has the site's lon/lat."""
        lonlat = self.topology.site(site).lonlat
        if lonlat is None:
            return None
        return {"longitude": [float(lonlat[0])], "latitude": [float(lonlat[1])], "shape": 2}

    def distance_doc(self, addresses: list[str]) -> dict[str, Any]:
        """TerminalDistance between two users: between their access points' positions (m)."""
        if len(addresses) != 2:
            raise ApiError(400, "give exactly two addresses (a user and a reference user; "
                                "latitude/longitude references are not supported)")
        a, b = (self.user_by_address(x) for x in addresses)
        pa, pb = (self.topology.site(u.site).position for u in (a, b))
        if pa is None or pb is None:
            raise ApiError(404, "the topology gives no position for the access point of "
                                f"{a.address if pa is None else b.address}")
        return {"terminalDistance": {"distance": int(round(math.dist(pa, pb))),
                                     "timestamp": timestamp(max(a.since, b.since))}}

    # ------------------------------------------------------------------ subscriptions
    def subscription_doc(self, sub: Subscription) -> dict[str, Any]:
        return {KINDS[sub.kind][1]: sub.doc}

    def add_subscription(self, kind: str, body: dict[str, Any], root: str) -> Subscription:
        """Create a subscription of KIND from BODY (already checked against its schema)."""
        inner = dict(body[KINDS[kind][1]])
        if kind == "userTracking":
            self.user_by_address(inner["address"])
        else:
            self.sites_of_zone(inner["zoneId"])
        sub_id = self.store.new_id()
        inner["resourceURL"] = f"{root}/subscriptions/{kind}/{sub_id}"
        return self.store.add(Subscription(sub_id, API, kind,
                                           inner["callbackReference"]["notifyURL"], inner))

    def list_doc(self, kind: str, root: str) -> dict[str, Any]:
        return {"notificationSubscriptionList": {
            "resourceURL": f"{root}/subscriptions/{kind}",
            KINDS[kind][1]: [s.doc for s in self.store.of(API, kind)]}}

    # ------------------------------------------------------------------ moves
    def move(self, ue: str, site: str, wall: float, t_event: Optional[float]) -> list[Outgoing]:
        """UE was located at SITE at WALL (the network's time): update, and what it notifies."""
        user = self.users.get(ue)
        if user is None or user.site == site:
            if user is not None:
                user.since = wall
            return []
        old_site = user.site
        counts_before = self._counts()
        user.site, user.since = site, wall
        counts_after = self._counts()
        old_zone, new_zone = self.zone_of(old_site), self.zone_of(site)
        if old_zone == new_zone:
            events = [("Transferring", new_zone)]
        else:
            events = [("Leaving", old_zone), ("Entering", new_zone)]
        out: list[Outgoing] = []
        common = dict(ue=ue, from_zone=old_zone, to_zone=new_zone)
        for event, zone in events:
            doc = {"zoneId": zone, "address": user.address, "userEventType": event,
                   "currentAccessPointId": self.ap_of(site),
                   "previousAccessPointId": self.ap_of(old_site),
                   "timestamp": timestamp(wall)}
            for sub in self._presence_subs(user, zone, event):
                body = dict(doc)
                if "callbackData" in sub.doc["callbackReference"]:
                    body["callbackData"] = sub.doc["callbackReference"]["callbackData"]
                body["link"] = [{"rel": sub.kind, "href": sub.doc["resourceURL"]}]
                out.append(Outgoing(sub, "InlineZonalPresenceNotification", event,
                                    {"zonalPresenceNotification": body}, t_event, dict(common)))
        out += self._zone_status(counts_before, counts_after, wall, t_event, common)
        return out

    def _presence_subs(self, user: User, zone: str, event: str) -> list[Subscription]:
        subs = []
        for sub in self.store.of(API):
            wanted = sub.doc.get("userEventCriteria") or list(EVENTS)
            if event not in wanted:
                continue
            if sub.kind == "userTracking" and plain_address(sub.doc["address"]) == user.ip:
                subs.append(sub)
            elif sub.kind == "zonalTraffic" and sub.doc["zoneId"] == zone:
                subs.append(sub)
        return subs

    def _counts(self) -> dict[str, int]:
        """Users per zone and per access point (keys ``zone:Z`` and ``ap:SITE``)."""
        counts: dict[str, int] = {}
        for u in self.users.values():
            for key in (f"zone:{self.zone_of(u.site)}", f"ap:{u.site}"):
                counts[key] = counts.get(key, 0) + 1
        return counts

    def _zone_status(self, before: dict[str, int], after: dict[str, int], wall: float,
                     t_event: Optional[float], common: dict[str, Any]) -> list[Outgoing]:
        """zoneStatus: a zone's (or one of its access points') user count that crossed the
        subscription's threshold, either way; with no threshold, any change of the count."""
        out = []
        for sub in self.store.of(API, "zoneStatus"):
            zone = sub.doc["zoneId"]
            key = f"zone:{zone}"
            zone_thr = sub.doc.get("numberOfUsersZoneThreshold")
            ap_thr = sub.doc.get("numberOfUsersAPThreshold")
            n0, n1 = before.get(key, 0), after.get(key, 0)
            hits = []
            if _crossed(n0, n1, zone_thr) or (zone_thr is None and ap_thr is None and n0 != n1):
                hits.append(None)
            for site in self.sites_of_zone(zone):
                a0, a1 = before.get(f"ap:{site}", 0), after.get(f"ap:{site}", 0)
                if _crossed(a0, a1, ap_thr):
                    hits.append(site)
            for site in hits:
                body = {"zoneId": zone, "numberOfUsersInZone": n1, "timestamp": timestamp(wall),
                        "link": [{"rel": "zoneStatus", "href": sub.doc["resourceURL"]}]}
                if site is not None:
                    body.update(accessPointId=self.ap_of(site),
                                numberOfUsersInAP=after.get(f"ap:{site}", 0),
                                operationStatus=self.ap_status(site))
                if "callbackData" in sub.doc["callbackReference"]:
                    body["callbackData"] = sub.doc["callbackReference"]["callbackData"]
                out.append(Outgoing(sub, "InlineZoneStatusNotification", "zoneStatus",
                                    {"zoneStatusNotification": body}, t_event, dict(common)))
        return out


def _crossed(before: int, after: int, threshold: Optional[int]) -> bool:
    """Whether a count went from below THRESHOLD to at least it, or back."""
    if threshold is None:
        return False
    return (before < threshold) != (after < threshold)
