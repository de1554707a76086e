"""The portal's county pages: one per county, district and zone of the city (and the city level, 市外).

    /counties               every place with its entities, listings and penalties on display
    /county/{county}        the place's own figures: entities by credit database, listings in force by
                            list, double publicity, coverage of legal persons and key natural persons
                            against the targets, the lists' trend month by month (a table of the series
                            ``projections.counties.list_trend``), its newest listings and its entries in
                            the approved 红黑榜 releases

A county is the place an entity's code gives it (docs/domain-notes.md §2.3); the figures are reads of
the views' county columns (projections/counties.py).
"""

from __future__ import annotations

from aiohttp import web

from ledger.platform.web import Handler
from projections import counties
from projections.web import api
from projections.web.pages import RULES, render
from projections.web.params import Params
from projections.web.pool import POOL

__all__ = ["ROUTES"]


async def county_index(request: web.Request) -> web.Response:
    Params(request)
    async with request.app[POOL].connection() as conn:
        rows = await counties.overview(conn, request.app[RULES].divisions)
    return render(request, "counties.html", places=rows, city=request.app[RULES].divisions.city)


async def county_page(request: web.Request) -> web.Response:
    Params(request)
    rules = request.app[RULES]
    county = request.match_info["county"]
    place = rules.divisions.by_id.get(county)
    if place is None:
        return render(request, "error.html", status=404, title="没有这个县（市、区）",
                      message="请从县区列表中选择。")
    today = request.app[api.CLOCK].today()
    async with request.app[POOL].connection() as conn:
        figures = await counties.figures(conn, county, today, rules)
    return render(request, "county.html", place=place, f=figures, coverage=figures["coverage"], today=today,
                  city=rules.divisions.city)


ROUTES: tuple[tuple[str, Handler], ...] = (
    ("/counties", county_index),
    ("/county/{county}", county_page),
)
