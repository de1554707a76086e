"""The counties' own figures: every county, district and zone of the city (ledger/rules/divisions), the
city level and 市外, each with its entities, lists, double publicity, coverage and the lists' trend.

An entity's county comes from its code (docs/domain-notes.md §2.3) and the fold writes it into
``entities``, ``list_entries`` and ``publicity``; every figure here is a read of those columns.
``list_trend`` is the one series of the lists' trend (the county page shows it as a table).
"""

from __future__ import annotations

from datetime import date
from typing import Any

import psycopg

from ledger.domain.divisions import Divisions
from ledger.domain.rulebook import RuleBook
from ledger.domain.rules import add_months
from projections import coverage as coverage_reads
from projections.queries import CATEGORIES, fetch_all, share

__all__ = ["figures", "list_trend", "overview"]

TREND_MONTHS = 12


async def overview(conn: psycopg.AsyncConnection[Any], divisions: Divisions) -> list[dict[str, Any]]:
    """One row per place (in the rules file's order): its entities, active black listings, red-list
    entries in force and penalties on display; places with nothing show zeros."""
    entities = {r["county"]: r for r in await fetch_all(
        conn, "select county, count(*) as entities, count(*) filter (where cardinality(black_lists) > 0) as blacklisted, "
        "count(*) filter (where red_listed) as red_listed from entities group by county")}
    listings = {r["county"]: r for r in await fetch_all(
        conn, "select county, count(*) filter (where colour = 'black') as black, count(*) filter (where colour = 'red') "
        "as red from list_entries where status = 'active' group by county")}
    penalties = {r["county"]: r for r in await fetch_all(
        conn, "select county, count(*) as penalties from publicity where kind = 'penalty' and status = 'published' "
        "group by county")}
    out = []
    for place in divisions.counties:
        e, lst, p = (entities.get(place.id, {}), listings.get(place.id, {}), penalties.get(place.id, {}))
        out.append({"county": place.id, "name": place.name, "title": place.title, "kind": place.kind,
                    "entities": e.get("entities", 0), "blacklisted": e.get("blacklisted", 0),
                    "red_listed": e.get("red_listed", 0), "black_entries": lst.get("black", 0),
                    "red_entries": lst.get("red", 0), "penalties": p.get("penalties", 0)})
    return out


async def list_trend(conn: psycopg.AsyncConnection[Any], county: str | None, today: date,
                     months: int = TREND_MONTHS) -> list[dict[str, Any]]:
    """The lists' trend over the last ``months`` calendar months up to today's (oldest first): per month
    the black and red entries listed in it and the black entries that ended in it (delisted, repaired,
    expired), for one county or (``None``) the whole city."""
    first = add_months(date(today.year, today.month, 1), -(months - 1))
    where, params = ("county = %s and ", [county]) if county is not None else ("", [])
    listed = await fetch_all(
        conn, "select to_char(listed_on, 'YYYY-MM') as month, colour, count(*) as n from list_entries "
        f"where {where}listed_on between %s and %s group by 1, 2", [*params, first, today])
    ended = await fetch_all(
        conn, "select to_char(ended_on, 'YYYY-MM') as month, count(*) as n from list_entries "
        f"where {where}colour = 'black' and ended_on between %s and %s group by 1", [*params, first, today])
    series = {(m := add_months(first, i)).strftime("%Y-%m"): {"month": m.strftime("%Y-%m"), "black_listed": 0,
                                                            "red_listed": 0, "black_ended": 0}
              for i in range(months)}
    for r in listed:
        series[r["month"]]["black_listed" if r["colour"] == "black" else "red_listed"] = r["n"]
    for r in ended:
        series[r["month"]]["black_ended"] = r["n"]
    return list(series.values())


async def figures(conn: psycopg.AsyncConnection[Any], county: str, today: date, rules: RuleBook) -> dict[str, Any]:
    """Everything a county's page shows: its entities by credit database, its active listings by list,
    its double publicity (records, penalties on display, lateness), its coverage (legal persons and key
    natural persons against the targets), the lists' trend, its newest listings and its entries in the
    approved releases."""
    by_category = {r["category"]: r["n"] for r in await fetch_all(
        conn, "select category, count(*) as n from entities where county = %s group by category", [county])}
    by_kind = await fetch_all(
        conn, "select list_kind, colour, count(*) as n from list_entries where county = %s and status = 'active' "
        "group by list_kind, colour order by colour, list_kind", [county])
    publicity = (await fetch_all(
        conn, "select count(*) as records, count(*) filter (where kind = 'penalty' and status = 'published') as penalties, "
        "count(*) filter (where kind = 'licence' and status = 'valid') as licences, "
        "count(*) filter (where late) as late, count(*) filter (where late = false) as on_time "
        "from publicity where county = %s", [county]))[0]
    publicity["share_late"] = share(publicity["late"], publicity["late"] + publicity["on_time"])
    latest = await fetch_all(
        conn, "select entity_id, subject_name, public_id, category, list_kind, colour, ref, reason, department, "
        "listed_on, status from list_entries where county = %s order by listed_on desc, entity_id, list_kind, ref "
        "limit 20", [county])
    in_releases = await fetch_all(
        conn, "select r.release_no, r.title, r.approved_on, count(*) as entries from release_entries e "
        "join releases r using (release_no) where e.county = %s group by r.release_no, r.title, r.approved_on "
        "order by r.release_no desc", [county])
    groups = {c.id: c.name for c in rules.key_persons.categories.values()}
    return {
        "county": county,
        "entities": {"total": sum(by_category.values()),
                     "by_category": [{"category": c, "entities": by_category.get(c, 0)} for c in CATEGORIES]},
        "active_listings": by_kind, "publicity": publicity,
        "coverage": await coverage_reads.coverage(conn, county, groups, rules.key_persons.target),
        "trend": await list_trend(conn, county, today), "latest_listings": latest, "releases": in_releases,
    }
