"""GS MEC 013 Location API v2 over HTTP: the routes under ``/location/v2`` (aiohttp).

Queries: users, zones, a zone, its access points, one access point, the distance of two
users. Subscriptions: ``userTracking``, ``zonalTraffic``, ``zoneStatus`` (create, list,
read, replace, delete). The circle, distance and periodic subscriptions answer 501
(docs/etsi-mec.md lists what is supported).
"""

from __future__ import annotations

from typing import Callable

from aiohttp import web

from mec.etsi.answers import ApiError, answer, body_of, no_content
from mec.etsi.location import API, KINDS, LocationService
from mec.etsi.subscriptions import Subscription

ROOT = "/location/v2"
UNSUPPORTED = ("area/circle", "distance", "periodic")


def root_of(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}{ROOT}"


def many(request: web.Request, name: str) -> list[str]:
    """A query parameter that may repeat (``?a=x&a=y``) or list values (``?a=x,y``)."""
    return [v for raw in request.query.getall(name, []) for v in raw.split(",") if v]


def routes(loc: LocationService, on_subscribed: Callable[[Subscription], None]
           ) -> list[web.RouteDef]:
    """The routes of the Location API over LOC; ON_SUBSCRIBED is told of each new one."""

    async def users(request: web.Request) -> web.Response:
        doc = loc.users_doc(root_of(request), many(request, "zoneId"),
                            many(request, "accessPointId"), many(request, "address"))
        return answer(API, "InlineUserList", doc)

    async def zones(request: web.Request) -> web.Response:
        return answer(API, "InlineZoneList", loc.zones_doc(root_of(request)))

    async def zone(request: web.Request) -> web.Response:
        doc = {"zoneInfo": loc.zone_info(request.match_info["zoneId"], root_of(request))}
        return answer(API, "InlineZoneInfo", doc)

    async def access_points(request: web.Request) -> web.Response:
        doc = loc.aps_doc(request.match_info["zoneId"], root_of(request),
                          request.query.get("interestRealm"))
        return answer(API, "InlineAccessPointList", doc)

    async def access_point(request: web.Request) -> web.Response:
        site = loc.site_of_ap(request.match_info["zoneId"], request.match_info["accessPointId"])
        return answer(API, "InlineAccessPointInfo",
                      {"accessPointInfo": loc.ap_info(site, root_of(request))})

    async def distance(request: web.Request) -> web.Response:
        if "latitude" in request.query or "longitude" in request.query:
            raise ApiError(400, "a latitude/longitude reference is not supported: give two "
                                "addresses")
        return answer(API, "InlineTerminalDistance", loc.distance_doc(many(request, "address")))

    def kind_routes(kind: str) -> list[web.RouteDef]:
        type_name, key = KINDS[kind]
        inline = "Inline" + type_name

        def find(request: web.Request) -> Subscription:
            sub = loc.store.get(request.match_info["subscriptionId"], API, kind)
            if sub is None:
                raise ApiError(404, f"no {kind} subscription "
                                    f"{request.match_info['subscriptionId']!r}")
            return sub

        async def create(request: web.Request) -> web.Response:
            sub = loc.add_subscription(kind, await body_of(request, API, inline),
                                       root_of(request))
            on_subscribed(sub)
            return answer(API, inline, loc.subscription_doc(sub), status=201,
                          headers={"Location": sub.doc["resourceURL"]})

        async def listing(request: web.Request) -> web.Response:
            return answer(API, "InlineNotificationSubscriptionList",
                          loc.list_doc(kind, root_of(request)))

        async def read(request: web.Request) -> web.Response:
            return answer(API, inline, loc.subscription_doc(find(request)))

        async def replace(request: web.Request) -> web.Response:
            sub = find(request)
            body = (await body_of(request, API, inline))[key]
            if body.get("resourceURL", sub.doc["resourceURL"]) != sub.doc["resourceURL"]:
                raise ApiError(400, "resourceURL does not name this subscription")
            if kind == "userTracking":
                loc.user_by_address(body["address"])
            else:
                loc.sites_of_zone(body["zoneId"])
            sub.doc = dict(body, resourceURL=sub.doc["resourceURL"])
            sub.callback = sub.doc["callbackReference"]["notifyURL"]
            return answer(API, inline, loc.subscription_doc(sub))

        async def delete(request: web.Request) -> web.Response:
            loc.store.remove(find(request).id)
            return no_content()

        base = f"{ROOT}/subscriptions/{kind}"
        return [web.get(base, listing), web.post(base, create),
                web.get(base + "/{subscriptionId}", read),
                web.put(base + "/{subscriptionId}", replace),
                web.delete(base + "/{subscriptionId}", delete)]

    async def unsupported(request: web.Request) -> web.Response:
        raise ApiError(501, f"{request.method} {request.path} is not supported by this testbed "
                            "(docs/etsi-mec.md)")

    table = [web.get(f"{ROOT}/queries/users", users),
             web.get(f"{ROOT}/queries/zones", zones),
             web.get(f"{ROOT}/queries/zones/{{zoneId}}", zone),
             web.get(f"{ROOT}/queries/zones/{{zoneId}}/accessPoints", access_points),
             web.get(f"{ROOT}/queries/zones/{{zoneId}}/accessPoints/{{accessPointId}}",
                     access_point),
             web.get(f"{ROOT}/queries/distance", distance)]
    for kind in KINDS:
        table += kind_routes(kind)
    for path in UNSUPPORTED:
        table.append(web.route("*", f"{ROOT}/subscriptions/{path}", unsupported))
        table.append(web.route("*", f"{ROOT}/subscriptions/{path}/{{subscriptionId}}",
                               unsupported))
    return table
