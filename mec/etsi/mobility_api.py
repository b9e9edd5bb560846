"""GS MEC 021 Application Mobility Service API v1 over HTTP: the routes under ``/amsi/v1``.

Registrations (``app_mobility_services``: create, list, read, replace, delete,
``deregister_task``), subscriptions (MobilityProcedureSubscription and
AdjacentAppInfoSubscription: create, list, read, replace, delete) and the adjacent
application instances query. A PUT of a registration that marks a device's context
USER_CONTEXT_TRANSFER_COMPLETED is timed (``on_context``).
"""

from __future__ import annotations

import re
from typing import Any, Callable, Optional

from aiohttp import web

from mec.etsi.answers import ApiError, answer, body_of, no_content
from mec.etsi.mobility import API, TYPE_QUERY, AppMobilityService
from mec.etsi.subscriptions import Subscription

ROOT = "/amsi/v1"
#: the one attribute filter of MEC 009 (clause 6.19) this query takes
FILTER_RE = re.compile(r"\(eq,appInstanceId,([^,()]+)\)")


def root_of(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}{ROOT}"


def routes(ams: AppMobilityService, on_subscribed: Callable[[Subscription], None],
           on_context: Callable[[list[dict[str, Any]]], None]) -> list[web.RouteDef]:
    """The routes of the AMS over AMS; ON_SUBSCRIBED is told of each new subscription,
    ON_CONTEXT of the context transfers a registration's update reports done."""

    async def registrations(request: web.Request) -> web.Response:
        return answer(API, "RegistrationInfoList", list(ams.registrations.values()))

    async def register(request: web.Request) -> web.Response:
        reg = ams.register(await body_of(request, API, "RegistrationInfo"))
        href = f"{root_of(request)}/app_mobility_services/{reg['appMobilityServiceId']}"
        return answer(API, "RegistrationInfo", reg, status=201, headers={"Location": href})

    async def registration(request: web.Request) -> web.Response:
        return answer(API, "RegistrationInfo",
                      ams.registration(request.match_info["appMobilityServiceId"]))

    async def update(request: web.Request) -> web.Response:
        reg, done = ams.update_registration(request.match_info["appMobilityServiceId"],
                                            await body_of(request, API, "RegistrationInfo"))
        if done:
            on_context(done)
        return answer(API, "RegistrationInfo", reg)

    async def deregister(request: web.Request) -> web.Response:
        ams.deregister(request.match_info["appMobilityServiceId"])
        return no_content()

    def find(request: web.Request) -> Subscription:
        sub = ams.store.get(request.match_info["subscriptionId"], API)
        if sub is None:
            raise ApiError(404, f"no subscription {request.match_info['subscriptionId']!r}")
        return sub

    async def subscriptions(request: web.Request) -> web.Response:
        wanted = request.query.get("subscriptionType")
        if wanted is not None and wanted not in TYPE_QUERY:
            raise ApiError(400, f"subscriptionType {wanted!r}: use "
                                f"{' or '.join(TYPE_QUERY)}")
        kind = TYPE_QUERY[wanted] if wanted else None
        return answer(API, "SubscriptionLinkList", ams.link_list(root_of(request), kind))

    async def subscribe(request: web.Request) -> web.Response:
        sub = ams.add_subscription(await body_of(request, API, "Subscription"),
                                   root_of(request))
        on_subscribed(sub)
        return answer(API, sub.kind, sub.doc, status=201,
                      headers={"Location": sub.doc["_links"]["self"]["href"]})

    async def subscription(request: web.Request) -> web.Response:
        sub = find(request)
        return answer(API, sub.kind, sub.doc)

    async def resubscribe(request: web.Request) -> web.Response:
        sub = ams.replace_subscription(find(request),
                                       await body_of(request, API, "Subscription"))
        return answer(API, sub.kind, sub.doc)

    async def unsubscribe(request: web.Request) -> web.Response:
        ams.store.remove(find(request).id)
        return no_content()

    async def adjacent(request: web.Request) -> web.Response:
        raw: Optional[str] = request.query.get("filter")
        app = None
        if raw is not None:
            m = FILTER_RE.fullmatch(raw)
            if m is None:
                raise ApiError(400, f"filter {raw!r}: only (eq,appInstanceId,ID) is supported")
            app = m.group(1)
        return answer(API, "AdjacentAppInstanceList", ams.adjacent(app))

    reg = f"{ROOT}/app_mobility_services/{{appMobilityServiceId}}"
    return [web.get(f"{ROOT}/app_mobility_services", registrations),
            web.post(f"{ROOT}/app_mobility_services", register),
            web.get(reg, registration), web.put(reg, update), web.delete(reg, deregister),
            web.post(reg + "/deregister_task", deregister),
            web.get(f"{ROOT}/subscriptions", subscriptions),
            web.post(f"{ROOT}/subscriptions", subscribe),
            web.get(f"{ROOT}/subscriptions/{{subscriptionId}}", subscription),
            web.put(f"{ROOT}/subscriptions/{{subscriptionId}}", resubscribe),
            web.delete(f"{ROOT}/subscriptions/{{subscriptionId}}", unsubscribe),
            web.get(f"{ROOT}/queries/adjacent_app_instances", adjacent)]
