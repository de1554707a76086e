"""The portal's county pages: one per county, district and zone of the city (and the city level, 市外).

    /counties               every place with its entities, listings and penalties on display
    /county/{county}        the place's own figures: entities by credit database, listings in force by
                            list, double publicity, coverage of legal persons and key natural persons
                            against the targets, the lists' trend month by month (a server-rendered
                            SVG chart of the series ``projections.counties.list_trend``, and the same
                            figures as a table), its newest listings and its entries in the approved
                            红黑榜 releases

A county is the place an entity's code gives it (docs/domain-notes.md §2.3); the figures are reads of
the views' county columns (projections/counties.py).
"""

from __future__ import annotations

from aiohttp import web

from ledger.platform.web import Handler
from projections import counties
from projections.web import api, charts
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
                  city=rules.divisions.city, trend_chart=trend_chart(place.name, figures["trend"]))


def trend_chart(name: str, trend: list[dict[str, object]]) -> str:
    """The lists' trend of a place as an SVG line chart: entries listed (black, red) and black entries
    ended, per month (projections.counties.list_trend)."""
    return charts.line_chart(
        [str(m["month"]) for m in trend],
        [charts.Series("列入黑名单", [float(m["black_listed"]) for m in trend]),  # type: ignore[arg-type]
         charts.Series("列入红名单", [float(m["red_listed"]) for m in trend]),  # type: ignore[arg-type]
         charts.Series("移出黑名单", [float(m["black_ended"]) for m in trend])],  # type: ignore[arg-type]
        title=f"{name}名单趋势（每月条目数）", unit="条", label_every=2)


ROUTES: tuple[tuple[str, Handler], ...] = (
    ("/counties", county_index),
    ("/county/{county}", county_page),
)
