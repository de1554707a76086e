"""What every HTTP service of the ledger shares: the submission gateway, the query API and the
public portal are built on this scaffold.

`observe` makes the middleware each service installs first. It answers what a handler raised (the
service says how, in its `answer`), then records the request: the service's two request metrics
(a duration histogram by route, a response counter by route and status) and one log line with the
method, the path (anything like an ID number masked), the route, the status and the milliseconds;
never the query string, a body or a token. An exception the service does not answer is logged
with its traceback ("request failed") and answered by the service's `failed`.

Also here: the JSON answers, the Prometheus page of the process, the one `BadParameter` and the
masked path for logs.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Collection
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest

from ledger.domain import identity

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Middleware = Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]
# How a service answers an exception its handler raised (given the request, the exception and the
# route label); None: not one it answers, so a logged internal error.
Answer = Callable[[web.Request, Exception, str], web.StreamResponse | None]


class BadParameter(Exception):
    """A query parameter that cannot be used; answered 400 naming it and why."""

    def __init__(self, name: str, why: str, **extra: Any) -> None:
        super().__init__(f"{name}: {why}")
        self.name, self.why, self.extra = name, why, extra


def loggable_path(path: str) -> str:
    """The request path with anything that could be an ID number masked (logs never hold one)."""
    return identity.mask_id_numbers(path)


def route_of(request: web.Request) -> str:
    """The route a request matched, as its metrics label ("unmatched" when none did)."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None,
                  default: Callable[[Any], Any] | None = None) -> web.Response:
    """`data` as UTF-8 JSON (Chinese text as it is); `default` turns what json cannot write."""
    return web.Response(body=json.dumps(data, ensure_ascii=False, default=default).encode("utf-8"), status=status,
                        content_type="application/json", charset="utf-8", headers=headers)


def error(status: int, message: str, **extra: Any) -> web.Response:
    """A JSON error: {"error": message, ...extra}."""
    return json_response({"error": message, **extra}, status)


def metrics_response() -> web.Response:
    """The Prometheus metrics of this process."""
    return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})


async def metrics(request: web.Request) -> web.Response:
    return metrics_response()


def observe(log: Any, seconds: Histogram, responses: Counter, answer: Answer,
            failed: Callable[[web.Request], web.StreamResponse], *, unlogged: Collection[str] = (),
            quiet: Collection[str] = (), fields: Callable[[web.Request], dict[str, Any]] | None = None) -> Middleware:
    """The middleware of one service: its logger, its two metrics (labels route; route and status),
    how it answers exceptions (`answer`) and internal errors (`failed`). Requests to the routes in
    `unlogged` get no log line, those to the routes in `quiet` (a hot path: the metrics count them)
    only when the answer is not a success; `fields` adds the service's own fields to it (before the status)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.monotonic()
        route = route_of(request)
        try:
            response = await handler(request)
        except Exception as exc:
            answered = answer(request, exc, route)
            if answered is None:
                log.exception("request failed", method=request.method, path=loggable_path(request.path),
                              route=route)
                answered = failed(request)
            response = answered
        elapsed = time.monotonic() - started
        seconds.labels(route).observe(elapsed)
        responses.labels(route, str(response.status)).inc()
        if route not in unlogged and (response.status >= 300 or route not in quiet):
            log.info("request", method=request.method, path=loggable_path(request.path), route=route,
                     **(fields(request) if fields is not None else {}), status=response.status,
                     ms=round(elapsed * 1000, 1))
        return response

    return middleware
