"""What every server-rendered page of the portal shares: the Jinja environment's key, rendering, the
request without a form's empty fields, the pager. The portal's own pages (portal.py), its releases
(release_pages.py) and its counties (county_pages.py) render through here."""

from __future__ import annotations

from typing import Any

import jinja2
from aiohttp import web

from ledger.domain.rulebook import RuleBook

__all__ = ["JINJA", "RULES", "form_request", "pages", "render"]

JINJA = web.AppKey("jinja", jinja2.Environment)
RULES = web.AppKey("rules", RuleBook)  # the rules the portal was started with


def render(request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
    env = request.app[JINJA]
    body = env.get_template(template).render(request_path=request.path, **context)
    return web.Response(text=body, status=status, content_type="text/html", charset="utf-8")


def form_request(request: web.Request) -> web.Request:
    """The request without empty query parameters (an HTML form sends every field, filled or not)."""
    empty = [k for k, v in request.query.items() if not v.strip()]
    return request.clone(rel_url=request.rel_url.without_query_params(*empty)) if empty else request


def pages(total: int, page: int, size: int) -> dict[str, Any]:
    last = max(1, -(-total // size))
    return {"page": page, "size": size, "total": total, "last": last,
            "prev": page - 1 if page > 1 else None, "next": page + 1 if page < last else None}
