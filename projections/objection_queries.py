"""Reads of objections and repair applications (the tables `objections` and `repair_applications`,
written by projections/objection_rows.py): one matter by its receipt number with each step's date and
deadline, an entity's matters, and the steps overdue today.

As projections/queries.py: plain async functions over a connection whose search_path is the live
schema; dates as ISO text. Neither table holds a telephone number, an objection's reason or an ID
number: what a receipt number shows is the record, the steps, their dates and the answer.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import psycopg

from ledger.domain.objections import RECORD_TITLES, STATUS_TITLES
from projections.queries import _all, _one

__all__ = ["OVERDUE_RULES", "RESULT_TITLES", "entity_matters", "matter", "overdue", "steps", "timeliness"]

_OBJECTION = ("receipt_no, target_event_id, record_kind, record_ref, grounds, status, result, correcting_event_id, "
              "filed_by, received_on, forward_due, forwarded_on, forwarded_to, forward_late, source_due, answer_due, "
              "answered_on, answered_by, answer_late, source_late, explanation, provisional, subject_name, public_id, "
              "entity_id")
_REPAIR = ("receipt_no, target_event_id, record_kind, record_ref, status, result, repair_event_id, filed_by, "
           "received_on, regime, accept_due, accepted_on, refused_on, refusal_reason, accept_late, decide_due, decided_on, "
           "decide_late, explanation, provisional, subject_name, public_id, entity_id")
RESULT_TITLES = {"CORRECTED": "已更正", "PARTLY_CORRECTED": "部分更正", "UPHELD": "维持原记录",
                 "GRANTED": "予以修复", "NOT_GRANTED": "不予修复"}
# an open matter's pending steps: (rule id, table, status, deadline column, who must act: a column or the office)
_PENDING = (
    ("objection_forward", "objections", "filed", "forward_due", None),
    ("objection_source_answer", "objections", "forwarded", "source_due", "forwarded_to"),
    ("objection_answer", "objections", "forwarded", "answer_due", None),
    ("repair_accept", "repair_applications", "applied", "accept_due", None),
    ("repair_decide", "repair_applications", "accepted", "decide_due", None),
)
OVERDUE_RULES = tuple(rule for rule, *_ in _PENDING)


async def matter(conn: psycopg.AsyncConnection[Any], receipt: str) -> dict[str, Any] | None:
    """The objection or repair application with this receipt number: its row, `kind`, the titles of
    its record, status and result, and its `steps`; None if there is none."""
    if receipt.startswith("XF"):
        row = await _one(conn, f"select {_REPAIR} from repair_applications where receipt_no = %s", (receipt,))
        kind = "repair"
    else:
        row = await _one(conn, f"select {_OBJECTION} from objections where receipt_no = %s", (receipt,))
        kind = "objection"
    if row is None:
        return None
    return {**row, "kind": kind, "record_title": RECORD_TITLES.get(row["record_kind"], row["record_kind"]),
            "status_title": STATUS_TITLES[kind][row["status"]], "result_title": RESULT_TITLES.get(row["result"] or ""),
            "steps": steps(kind, row)}


def steps(kind: str, row: dict[str, Any]) -> list[dict[str, Any]]:
    """Each step of a matter in order: its name, the date it was done (None: not yet), its deadline,
    whether it was late (None: not done, or no deadline) and the event family that does it."""
    def step(name: str, event: str, done: Any, due: Any = None, late: Any = None) -> dict[str, Any]:
        return {"step": name, "done_on": done, "due": due, "late": late, "event": event}

    if kind == "objection":
        out = [step("受理（异议标注）", "ObjectionFiled", row["received_on"])]
        if row["forwarded_on"] or row["status"] == "filed":
            out.append(step("转办信息提供单位", "ObjectionForwarded", row["forwarded_on"], row["forward_due"],
                            row["forward_late"]))
        if row["forwarded_on"]:
            out.append(step("信息提供单位核实反馈", "ObjectionAnswered", row["answered_on"], row["source_due"],
                            row["source_late"]))
        out.append(step("答复申请人", "ObjectionAnswered", row["answered_on"], row["answer_due"], row["answer_late"]))
        return out
    out = [step("提交申请", "RepairApplied", row["received_on"])]
    if row["refused_on"]:
        return [*out, step("不予受理", "RepairRefused", row["refused_on"], row["accept_due"], row["accept_late"])]
    return [*out, step("受理", "RepairAccepted", row["accepted_on"], row["accept_due"], row["accept_late"]),
            step("作出修复决定", "RepairDecided", row["decided_on"], row["decide_due"], row["decide_late"])]


def timeliness(step: dict[str, Any], today: str) -> str:
    """A step against its deadline, as the follow page and the credit report say it (`today` ISO)."""
    if step["late"] is not None:
        return "超期" if step["late"] else "按期"
    if step["due"] and not step["done_on"]:
        return "超期未办" if step["due"] < today else "未到期"
    return "—"


async def entity_matters(conn: psycopg.AsyncConnection[Any], entity_id: str) -> dict[str, list[dict[str, Any]]]:
    """The entity's objections and repair applications, newest first."""
    return {
        "objections": await _all(conn, f"select {_OBJECTION} from objections where entity_id = %s "
                                       "order by received_on desc, receipt_no", (entity_id,)),
        "repair_applications": await _all(conn, f"select {_REPAIR} from repair_applications where entity_id = %s "
                                                "order by received_on desc, receipt_no", (entity_id,)),
    }


async def overdue(conn: psycopg.AsyncConnection[Any], today: date, office: str,
                  department: str | None = None) -> dict[str, Any]:
    """The steps of open matters whose deadline passed before `today` (the China date of the caller's
    clock): each with its rule, receipt number, record, deadline and the department that must act (the
    department an objection was forwarded to, else the credit office `office`); and the counts per
    department and rule. `department` keeps one department's."""
    parts = []
    for rule, table, status, due, who in _PENDING:
        actor = who or "%(office)s"
        parts.append(f"select '{rule}' as rule, receipt_no, entity_id, subject_name, public_id, record_kind, record_ref, "
                     f"received_on, {due} as due, {actor} as department, provisional from {table} "
                     f"where status = '{status}' and {due} < %(today)s")
    sql = " union all ".join(parts)
    where = " where department = %(department)s" if department is not None else ""
    items = await _all(conn, f"select * from ({sql}) o{where} order by due, receipt_no, rule",
                       {"today": today, "office": office, "department": department})
    counts: dict[tuple[str, str], int] = {}
    for item in items:
        counts[(item["department"], item["rule"])] = counts.get((item["department"], item["rule"]), 0) + 1
    return {"today": today.isoformat(), "items": items,
            "departments": [{"department": d, "rule": r, "overdue": n} for (d, r), n in sorted(counts.items())]}
