"""Trigger and feedback on the read side: "may entity X do Y?" and the report of measures applied.

``trigger_answer`` answers a sector system's question from the live views and the joint-punishment
catalogue (ledger/domain/punishment.py): the entity's lists in force, the measures that concern the
action (``Catalogue.applicable``) with their legal basis and implementing departments, the red-list
incentives for it, the listings the answer rests on, and the ledger position it rests on (the
views' positions, the entity's partition and version). ``measures_report`` counts the feedback
sector systems reported (PunishmentFeedbackReported, in views.punishment_feedback) per department
and measure. Both take an ``AsyncConnection`` whose search_path is the live schema, like
projections/queries.py, and return plain JSON-ready values.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import psycopg

from ledger.domain.punishment import Catalogue, Measure
from projections import queries

FEEDBACK_ACTIONS = ("applied", "lifted", "not_applicable")
REPORT_CSV_COLUMNS: tuple[tuple[str, str], ...] = (
    ("department", "实施部门"),
    ("measure_code", "惩戒措施编号"),
    ("measure_name", "惩戒措施"),
    ("applied", "已实施"),
    ("lifted", "已解除"),
    ("not_applicable", "不适用"),
    ("entities", "涉及主体数"),
    ("first_acted_on", "最早实施日期"),
    ("last_acted_on", "最近实施日期"),
    ("legal_basis", "法律依据"),
)


def _measure(m: Measure, active: set[str]) -> dict[str, Any]:
    return {"id": m.id, "kind": m.kind, "name": m.name, "name_en": m.name_en, "legal_basis": m.legal_basis,
            "departments": list(m.departments), "because_of": sorted(m.list_kinds & active),
            "confidence": m.confidence}


async def trigger_answer(conn: psycopg.AsyncConnection[Any], entity_id: str, action: str, catalogue: Catalogue,
                         today: date) -> dict[str, Any]:
    """Whether the entity may do `action` now: ``restricted`` when a punishment measure of the
    catalogue applies to it (an active black listing brings it and the entity's credit database is
    among the measure's), else ``allowed``; an entity the views do not know is allowed, with
    ``record: false`` saying so."""
    ledger_positions = await queries.positions(conn)
    cur = await conn.execute("select category, public_id, name, version from entities where entity_id = %s",
                             (entity_id,))
    row = await cur.fetchone()
    base = {"action": action, "catalogue_version": catalogue.version, "today": today.isoformat()}
    if row is None:
        return {**base, "decision": "allowed", "record": False,
                "note": "no record: the ledger has no event about this entity as of the positions below, so no "
                        "measure applies (无记录)",
                "entity": {"entity_id": entity_id}, "measures": [], "incentives": [], "listings": [],
                "lists_in_force": [],
                "as_of": {"positions": ledger_positions}}
    category, public_id, name, version = row
    listings = await queries._all(
        conn, "select list_kind, colour, ref, department, listed_on, legal_end, event_id from list_entries "
        "where entity_id = %s and status = 'active' order by listed_on, list_kind, ref", (entity_id,))
    # A black listing stays in force until the ledger records its end (past its legal end it is
    # flagged: the scheduler's expiry is pending); a red-list honour only until it is valid.
    in_force = []
    for x in listings:
        over = x["legal_end"] is not None and date.fromisoformat(x["legal_end"]) <= today
        if x["colour"] == "black":
            in_force.append({**x, "period_over_expiry_pending": over})
        elif not over:
            in_force.append(x)
    active = {x["list_kind"] for x in in_force}
    applicable = catalogue.applicable(active, category, action)
    punishments = [_measure(m, active) for m in applicable if m.kind == "punishment"]
    incentives = [_measure(m, active) for m in applicable if m.kind == "incentive"]
    concerned = set().union(*(m.list_kinds for m in applicable)) if applicable else set()
    cur = await conn.execute("select kafka_partition from ledger_copy where entity_id = %s "
                             "order by entity_version desc limit 1", (entity_id,))
    partition_row = await cur.fetchone()
    partition = partition_row[0] if partition_row else None
    return {
        **base, "decision": "restricted" if punishments else "allowed", "record": True,
        "entity": {"entity_id": entity_id, "public_id": public_id, "name": name, "category": category},
        "measures": punishments, "incentives": incentives,
        "listings": [x for x in in_force if x["list_kind"] in concerned],
        "lists_in_force": sorted(active),
        "as_of": {"positions": ledger_positions, "entity_partition": partition, "entity_version": version,
                  "entity_partition_position": None if partition is None else ledger_positions.get(partition)},
    }


def _report_filter(start: date | None, end: date | None, department: str | None,
                   measure: str | None) -> tuple[str, list[Any]]:
    clauses, params = [], []
    for clause, value in (("acted_on >= %s", start), ("acted_on <= %s", end), ("department = %s", department),
                          ("measure_code = %s", measure)):
        if value is not None:
            clauses.append(clause)
            params.append(value)
    return (" where " + " and ".join(clauses)) if clauses else "", params


async def measures_report(conn: psycopg.AsyncConnection[Any], catalogue: Catalogue, start: date | None = None,
                          end: date | None = None, department: str | None = None,
                          measure: str | None = None) -> dict[str, Any]:
    """Per implementing department and measure: feedback reports by action (applied, lifted, not
    applicable), distinct entities, first and last date acted on; totals per department and overall.
    Filters on the date acted on (inclusive), the department and the measure."""
    where, params = _report_filter(start, end, department, measure)
    rows = await queries._all(
        conn, "select department, measure_code, "
        "count(*) filter (where action = 'applied') as applied, count(*) filter (where action = 'lifted') as lifted, "
        "count(*) filter (where action = 'not_applicable') as not_applicable, count(distinct entity_id) as entities, "
        "min(acted_on) as first_acted_on, max(acted_on) as last_acted_on "
        f"from punishment_feedback{where} group by department, measure_code order by department, measure_code",
        params)
    departments: dict[str, dict[str, Any]] = {}
    for r in rows:
        m = catalogue.measures.get(r["measure_code"])
        r["measure_name"] = m.name if m else None
        r["legal_basis"] = m.legal_basis if m else None
        d = departments.setdefault(r["department"], {"department": r["department"], "measures": [],
                                                     **dict.fromkeys(FEEDBACK_ACTIONS, 0)})
        d["measures"].append(r)
        for a in FEEDBACK_ACTIONS:
            d[a] += r[a]
    total = {a: sum(d[a] for d in departments.values()) for a in FEEDBACK_ACTIONS}
    return {"departments": list(departments.values()), "total": total, "catalogue_version": catalogue.version,
            "filters": {"from": start, "to": end, "department": department, "measure": measure}}


def report_csv_rows(report: dict[str, Any]) -> list[list[str]]:
    """The report's rows (one per department and measure) in REPORT_CSV_COLUMNS order."""
    return [["" if r[c] is None else str(queries.plain(r[c])) for c, _ in REPORT_CSV_COLUMNS]
            for d in report["departments"] for r in d["measures"]]


__all__ = ["FEEDBACK_ACTIONS", "REPORT_CSV_COLUMNS", "measures_report", "report_csv_rows",
           "trigger_answer"]
