"""Coverage against the register feed: legal persons per credit database, and key natural persons per
group (docs/domain-notes.md §12.2), for the whole city or one county.

The seed's targets: legal persons (the four organisation databases) at least 90 %, key natural persons
at least 80 % (the share comes from ``ledger/rules/key_persons.v<N>.json``). An entity is registered
when the register feed named it (``registered_on`` set); it has a credit record when any event other
than a registration is about it. The natural persons' database is shown without a target: the 80 %
applies to the key persons, measured against the groups' registers, not to every person with a record.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import psycopg

from projections.queries import CATEGORIES, LEGAL_PERSON_CATEGORIES, share
from projections.queries import fetch_all as _all

__all__ = ["LEGAL_PERSONS_TARGET", "REGISTERED_EVENT", "coverage"]

LEGAL_PERSONS_TARGET = 0.90
REGISTERED_EVENT = "EntityRegistered"
# per entity: has it a credit record (an event of a type other than the registration)?
_HAS_RECORDS = ("exists (select 1 from jsonb_each_text(counts) c where c.key <> %s and c.value::bigint > 0)")


async def coverage(conn: psycopg.AsyncConnection[Any], county: str | None = None,
                   key_groups: Mapping[str, str] | None = None, key_target: float = 0.80) -> dict[str, Any]:
    """Per credit database: registered entities, those with a credit record, the share and the target;
    the legal persons together; the key natural persons in all (a person counted once) and per group
    (``key_groups``: id -> name, in the order shown; a group nobody is registered in shows zeros).
    ``unregistered_with_records``: entities with records the register feed does not know. ``county``
    restricts every figure to the entities of that county (entities.county)."""
    where, params = (" where county = %s", [county]) if county is not None else ("", [])
    rows = await _all(
        conn, "select category, "
        "count(*) filter (where registered_on is not null) as registered, "
        "count(*) filter (where registered_on is not null and has_records) as with_records, "
        "count(*) filter (where registered_on is null and has_records) as unregistered_with_records "
        f"from (select category, registered_on, {_HAS_RECORDS} as has_records from entities{where}) e "
        "group by category", [REGISTERED_EVENT, *params])
    by_category = {r["category"]: r for r in rows}
    databases = []
    for category in sorted(set(CATEGORIES) | set(by_category), key=_category_order):
        r = by_category.get(category, {"registered": 0, "with_records": 0, "unregistered_with_records": 0})
        target = LEGAL_PERSONS_TARGET if category in LEGAL_PERSON_CATEGORIES else None
        databases.append(_coverage_row(category, r["registered"], r["with_records"], r["unregistered_with_records"],
                                       target))
    legal = [d for d in databases if d["category"] in LEGAL_PERSON_CATEGORIES]
    legal_persons = _coverage_row("legal_persons", sum(d["registered"] for d in legal),
                                  sum(d["with_records"] for d in legal),
                                  sum(d["unregistered_with_records"] for d in legal), LEGAL_PERSONS_TARGET)
    return {"county": county, "databases": databases, "legal_persons": legal_persons,
            "key_natural_persons": await _key_persons(conn, where, params, key_groups or {}, key_target),
            "targets": {"legal_persons": LEGAL_PERSONS_TARGET, "key_natural_persons": key_target}}


async def _key_persons(conn: psycopg.AsyncConnection[Any], where: str, params: list[Any],
                       groups: Mapping[str, str], target: float) -> dict[str, Any]:
    people = f"select key_persons, {_HAS_RECORDS} as has_records from entities" + (
        f"{where} and cardinality(key_persons) > 0" if where else " where cardinality(key_persons) > 0")
    total = await _all(conn, f"select count(*) as registered, count(*) filter (where has_records) as with_records "
                       f"from ({people}) p", [REGISTERED_EVENT, *params])
    per_group = await _all(conn, "select g as category, count(*) as registered, "
                           "count(*) filter (where has_records) as with_records "
                           f"from ({people}) p, unnest(p.key_persons) g group by g", [REGISTERED_EVENT, *params])
    found = {r["category"]: r for r in per_group}
    rows = []
    for category in [*groups, *sorted(set(found) - set(groups))]:
        r = found.get(category, {"registered": 0, "with_records": 0})
        rows.append({**_coverage_row(category, r["registered"], r["with_records"], 0, target),
                     "name": groups.get(category, category)})
    t = total[0] if total else {"registered": 0, "with_records": 0}
    return {**_coverage_row("key_natural_persons", t["registered"], t["with_records"], 0, target), "groups": rows}


def _category_order(category: str) -> tuple[int, str]:
    return (CATEGORIES.index(category) if category in CATEGORIES else len(CATEGORIES), category)


def _coverage_row(category: str, registered: int, with_records: int, unregistered: int,
                  target: float | None) -> dict[str, Any]:
    part = share(with_records, registered)
    return {"category": category, "registered": registered, "with_records": with_records, "share": part,
            "target": target, "meets_target": None if part is None or target is None else part >= target,
            "unregistered_with_records": unregistered}
