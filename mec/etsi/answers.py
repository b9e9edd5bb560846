"""HTTP answers of the ETSI APIs: JSON bodies checked against their schema, ProblemDetails errors.

A handler returns `answer(api, type, doc)`; a bad request raises `ApiError`, which the
middleware (`problem_middleware`) turns into an ``application/problem+json``
ProblemDetails with the status (4xx), as both specifications ask; a route that does not
exist is a 404 ProblemDetails, a method a route does not have a 405. An answer that does
not validate against its own schema is a defect of the testbed: it becomes a 500
ProblemDetails naming the failed check (never a silently wrong document).
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any, Awaitable, Callable, Optional

from aiohttp import web

from mec.etsi import schema

log = logging.getLogger(__name__)

PROBLEM_TYPE = "application/problem+json"


class ApiError(Exception):
    """A request the API refuses: STATUS (4xx) with a human-readable DETAIL."""

    def __init__(self, status: int, detail: str, title: Optional[str] = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.title = title or web.Response(status=status).reason or "Error"


def problem(status: int, detail: str, instance: str = "", title: Optional[str] = None
            ) -> web.Response:
    """A ProblemDetails answer (RFC 7807 as MEC 009 uses it)."""
    doc = {"type": "about:blank", "title": title or web.Response(status=status).reason or "Error",
           "status": status, "detail": detail}
    if instance:
        doc["instance"] = instance
    return web.Response(status=status, text=json.dumps(doc), content_type=PROBLEM_TYPE)


def answer(api: str, type_name: str, doc: Any, status: int = 200,
           headers: Optional[dict[str, str]] = None) -> web.Response:
    """DOC as JSON after checking it is a valid TYPE_NAME of API (else a 500 naming why)."""
    bad = schema.problem(api, type_name, doc)
    if bad is not None:
        log.error("answer is not a valid %s %s: %s", api, type_name, bad)
        return problem(500, f"the testbed built an invalid {type_name}: {bad}")
    return web.Response(status=status, text=json.dumps(doc), content_type="application/json",
                        headers=headers)


def no_content() -> web.Response:
    return web.Response(status=204)


async def body_of(request: web.Request, api: str, type_name: str) -> Any:
    """The request's JSON body, checked as TYPE_NAME of API; ApiError 400 when it is not."""
    try:
        doc = await request.json()
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"the body is not JSON: {exc}") from None
    bad = schema.problem(api, type_name, doc)
    if bad is not None:
        raise ApiError(400, bad)
    return doc


def timestamp(wall: Optional[float] = None) -> dict[str, int]:
    """A TimeStamp (seconds, nanoSeconds since the Unix epoch) of WALL (default: now)."""
    ns = int(round((time.time() if wall is None else wall) * 1e9))
    return {"seconds": ns // 1_000_000_000, "nanoSeconds": ns % 1_000_000_000}


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def problem_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error of the ETSI routes as a ProblemDetails."""
    try:
        return await handler(request)
    except ApiError as exc:
        return problem(exc.status, exc.detail, request.path, exc.title)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return problem(exc.status, exc.reason or exc.text or "", request.path)
