"""The sections of a credit report: one function per section, each over the views (schema `views`).

Each takes the connection (inside the report's one snapshot) and the report's `Context` and returns
a `document.Section`: Chinese titles and cells as the reader sees them, each row naming the ledger
events it rests on (the records the report then proves) and the cells that a record's own fields
give. `SECTIONS` is their order in the report, that of the national report standard
(docs/domain-notes.md §10.1): registration, double publicity, black lists, red lists, commitments,
the credit evaluation, repairs, objections and repair applications. A new section is one more function here and one more entry there;
the PDF and the verifier take any section.

What is shown is what the public portal shows (docs/domain-notes.md §10.2): penalties and licences
inside their publication window only; list entries of every status; objections and repair
applications with their steps, results and explanations, never what the views leave out (the
contact, the telephone number, the objection's reason, the application's statement).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

import psycopg
from psycopg.rows import dict_row

from ledger.domain import lists
from ledger.domain.model import EntityState, evolve
from ledger.domain.objections import (
    GROUNDS_TITLES,
    OBJECTION,
    RECORD_TITLES,
    REPAIR,
    REQUEST_EVENTS,
    STATUS_TITLES,
)
from ledger.domain.rulebook import RuleBook
from projections import objection_queries, publicity, queries
from projections.audit import reads
from projections.grade import SEVERITY_TITLES
from projections.report.document import Row, Section, masked


@dataclass
class Context:
    """What every section may use: the entity, the issue date, the rules and the entity's ledger copy
    (views.ledger_copy by version, the record with its public id), with the events that changed each
    list entry (the domain's own list changes over the refolded history)."""

    entity_id: str
    today: date
    rules: RuleBook
    history: list[dict[str, Any]]
    changes: dict[tuple[str, str], list[str]]

    def events(self, event_type: str) -> list[dict[str, Any]]:
        return [h for h in self.history if h["event_type"] == event_type]

    def department(self, department: str) -> str:
        known = self.rules.departments.departments.get(department)
        return known.name if known is not None else department

    def event(self, event_id: str) -> dict[str, Any] | None:
        return next((h for h in self.history if h["event_id"] == event_id), None)


def list_change_events(entity_id: str, history: list[dict[str, Any]], rules: RuleBook) -> dict[tuple[str, str], list[str]]:
    """(list kind, ref) -> the events that listed, ended, suspended or revoked it, in ledger order:
    `lists.list_changes` over the history folded again with the domain's `evolve`."""
    out: dict[tuple[str, str], list[str]] = {}
    state = EntityState()
    for r in reads.recorded(entity_id, history):
        after = evolve(state, r.event)
        for change in lists.list_changes(r.event, state, after, rules.publication, rules.catalogue):
            ids = out.setdefault((change.list_kind, change.ref), [])
            if change.event_id not in ids:
                ids.append(change.event_id)
        state = after
    return out


async def _rows(conn: psycopg.AsyncConnection[Any], sql: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
    """The rows as plain values (dates ISO, jsonb as Python values), as the queries give them."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(sql, params)  # type: ignore[arg-type]
        return [queries.plain(r) for r in await cur.fetchall()]


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _yuan(fen: Any) -> str:
    return "" if fen is None else f"{int(fen) / 100:,.2f} 元"


ENTITY_KINDS = {"enterprise": "企业", "individual_business": "个体工商户", "farmers_cooperative": "农民专业合作社",
                "social_organisation": "社会组织", "public_institution": "事业单位", "government_organ": "机关",
                "natural_person": "自然人"}


async def registration(conn: psycopg.AsyncConnection[Any], ctx: Context) -> Section:
    rows = []
    for h in ctx.events("EntityRegistered"):
        r = h["record"]
        rows.append(Row({"authority": _text(r["registration_authority"]), "registered_on": _text(r["registered_on"]),
                         "kind": ENTITY_KINDS.get(r["entity_kind"], r["entity_kind"]),
                         "capital": _yuan(r.get("registered_capital_fen")), "address": _text(r.get("address"))},
                        (h["event_id"],), {"authority": (h["event_id"], "registration_authority"),
                                           "registered_on": (h["event_id"], "registered_on")}))
    return Section("registration", "基本登记信息", (("authority", "登记机关"), ("registered_on", "登记日期"),
                                               ("kind", "主体类型"), ("capital", "注册资本"), ("address", "住所")),
                   tuple(rows), "账本中无该主体的登记记录。")


PUBLICITY_KIND = {"licence": "行政许可", "penalty": "行政处罚"}
PUBLICITY_STATUS = {"published": "公示中", "valid": "有效"}


async def double_publicity(conn: psycopg.AsyncConnection[Any], ctx: Context) -> Section:
    found = await _rows(conn, "select event_id, kind, ref, department, decision_date, window_start, automatic_end, "
                        "status from publicity where entity_id = %s order by decision_date desc, event_id", (ctx.entity_id,))
    shown = [r for r in found if publicity.on_display(r, ctx.today)]
    rows = []
    for r in shown:
        h = ctx.event(r["event_id"])
        record = h["record"] if h else {}
        ref_field = "decision_no" if r["kind"] == "penalty" else "licence_no"
        changes = [c["event_id"] for c in ctx.events("AdministrativeLicenceChanged")
                   if r["kind"] == "licence" and c["record"]["licence_no"] == r["ref"]]
        content = _text(record.get("content"))
        if r["kind"] == "penalty" and record.get("severity"):
            content += f"（{SEVERITY_TITLES.get(record['severity'], record['severity'])}失信行为）"
        rows.append(Row({"kind": PUBLICITY_KIND[r["kind"]], "ref": r["ref"], "department": ctx.department(r["department"]),
                         "decision_date": _text(r["decision_date"]), "content": content,
                         "until": _text(r["automatic_end"]) or "长期", "status": PUBLICITY_STATUS[r["status"]]},
                        (r["event_id"], *changes),
                        {"ref": (r["event_id"], ref_field), "decision_date": (r["event_id"], "decision_date")}))
    hidden = len(found) - len(shown)
    return Section("publicity", "行政许可和行政处罚（双公示）",
                   (("kind", "类别"), ("ref", "文号/许可编号"), ("department", "决定部门"),
                    ("decision_date", "决定日期"), ("content", "内容"), ("until", "公示截止"), ("status", "状态")),
                   tuple(rows), "无公示期内的行政许可或行政处罚记录。",
                   f"另有 {hidden} 条记录已过公示期、已修复或已撤销，依规不再公示，本报告不载。" if hidden else "")


LIST_STATUS = dict(queries.STATUS_TITLES)
_LIST_SQL = ("select list_kind, ref, reason, department, listed_on, legal_end, status, ended_on, event_id "
             "from list_entries where entity_id = %s and colour = %s order by listed_on desc, list_kind, ref")


def _list_row(ctx: Context, x: dict[str, Any], cells: dict[str, str]) -> Row:
    """A list entry's row: the events that changed it, and its reference and listing date as the
    listing event gives them (its family's fields, lists.LIST_EVENTS; a red honour's award)."""
    events = ctx.changes.get((x["list_kind"], x["ref"])) or [x["event_id"]]
    if x["event_id"] not in events:
        events = [x["event_id"], *events]
    listing = ctx.event(x["event_id"])
    proven: dict[str, tuple[str, str]] = {}
    if listing is not None and listing["event_type"] in lists.LIST_EVENTS:
        _, ref_field, date_field, _ = lists.LIST_EVENTS[listing["event_type"]]
        proven = {"ref": (x["event_id"], ref_field), "listed_on": (x["event_id"], date_field)}
    elif listing is not None and listing["event_type"] == "HonourAwarded":
        proven = {"ref": (x["event_id"], "document_no"), "listed_on": (x["event_id"], "awarded_on")}
    return Row(cells, tuple(events), proven)


async def black_lists(conn: psycopg.AsyncConnection[Any], ctx: Context) -> Section:
    list_rules = ctx.rules.publication.list_kinds
    rows = []
    for x in await _rows(conn, _LIST_SQL, (ctx.entity_id, "black")):
        status = LIST_STATUS.get(x["status"], x["status"]) + (f"（{x['ended_on']}）" if x["ended_on"] else "")
        basis = list_rules[x["list_kind"]].legal_source if x["list_kind"] in list_rules else "见认定文书"
        rows.append(_list_row(ctx, x, {
            "list": queries.LIST_KIND_TITLES.get(x["list_kind"], x["list_kind"]), "ref": x["ref"], "reason": x["reason"],
            "department": ctx.department(x["department"]), "listed_on": _text(x["listed_on"]),
            "legal_end": _text(x["legal_end"]) or "无固定期限", "status": status, "basis": basis}))
    return Section("black_lists", "失信名单记录（含已移出）",
                   (("list", "名单"), ("ref", "案号/文号"), ("reason", "列入事由"), ("department", "认定部门"),
                    ("listed_on", "列入日期"), ("legal_end", "法定移出日期"), ("status", "状态"), ("basis", "法律依据")),
                   tuple(rows), "未列入失信名单。")


async def red_lists(conn: psycopg.AsyncConnection[Any], ctx: Context) -> Section:
    rows = []
    for x in await _rows(conn, _LIST_SQL, (ctx.entity_id, "red")):
        status = LIST_STATUS.get(x["status"], x["status"]) + (f"（{x['ended_on']}）" if x["ended_on"] else "")
        rows.append(_list_row(ctx, x, {
            "title": x["reason"], "ref": x["ref"], "department": ctx.department(x["department"]),
            "listed_on": _text(x["listed_on"]), "legal_end": _text(x["legal_end"]) or "无固定期限", "status": status}))
    return Section("red_lists", "守信激励（红名单、荣誉）",
                   (("title", "名称"), ("ref", "文号"), ("department", "认定部门"), ("listed_on", "列入日期"),
                    ("legal_end", "有效期至"), ("status", "状态")),
                   tuple(rows), "无红名单或荣誉记录。")


async def commitments(conn: psycopg.AsyncConnection[Any], ctx: Context) -> Section:
    rows = [Row({"type": _text(h["record"]["commitment_type"]), "content": _text(h["record"]["content"]),
                 "made_on": _text(h["record"]["made_on"]), "ref": _text(h["record"].get("document_no")) or "—"},
                (h["event_id"],), {"type": (h["event_id"], "commitment_type"), "made_on": (h["event_id"], "made_on")})
            for h in ctx.events("CreditCommitmentMade")]
    return Section("commitments", "信用承诺", (("type", "承诺类型"), ("content", "承诺内容"), ("made_on", "承诺日期"),
                                            ("ref", "文号")), tuple(rows), "无信用承诺记录。")


GRADES = {"A": "A 级（守信）", "B": "B 级（基本守信）", "C": "C 级（失信风险）", "D": "D 级（严重失信）"}


async def evaluation(conn: psycopg.AsyncConnection[Any], ctx: Context) -> Section:
    entity = (await _rows(conn, "select score, grade, grade_reasons from entities where entity_id = %s",
                          (ctx.entity_id,)))[0]  # the report's subject exists: issue.py reads it first
    lists_ = await _rows(conn, "select list_kind, ref, event_id, status, colour from list_entries where entity_id = %s",
                         (ctx.entity_id,))
    penalties = await _rows(conn, "select ref, event_id from publicity where entity_id = %s and kind = 'penalty'",
                            (ctx.entity_id,))
    rows = [Row({"reason": r["text"], "ref": _text(r.get("ref")) or "—", "points": f"{r['points']:+d}"},
                tuple(_reason_events(ctx, r, lists_, penalties)))
            for r in entity["grade_reasons"]]
    return Section("evaluation", f"公共信用评价：{GRADES.get(entity['grade'], entity['grade'])}，{entity['score']} 分",
                   (("reason", "评价依据"), ("ref", "文号/年度"), ("points", "分值")), tuple(rows),
                   "无加分或扣分事项。",
                   f"评价方法：信用许昌公共信用评价规则第 {ctx.rules.stamp.get('credit_grade', 1)} 版"
                   "（平台自定的评价方法，非法定评价；起评分加减各项分值）。")


def _reason_events(ctx: Context, reason: dict[str, Any], entries: list[dict[str, Any]],
                   penalties: list[dict[str, Any]]) -> list[str]:
    """The ledger events a grade reason (projections/grade.py) rests on."""
    kind, _, code = reason["code"].partition(".")
    ref = reason.get("ref")
    if kind == "list":
        return [x["event_id"] for x in entries if x["list_kind"] == code and x["ref"] == ref]
    if kind == "penalty":
        return [x["event_id"] for x in penalties if x["ref"] == ref]
    if reason["code"] == "tax.level_D_implied":
        return [x["event_id"] for x in entries if x["list_kind"] == "major_tax_violation" and x["ref"] == ref]
    if kind == "tax":
        rated = [h["event_id"] for h in ctx.events("TaxCreditRated") if str(h["record"]["year"]) == ref]
        return rated[-1:]
    if kind == "honour":
        return [x["event_id"] for x in entries if x["colour"] == "red" and x["status"] == "active"
                and (h := ctx.event(x["event_id"])) is not None and h["event_type"] == "HonourAwarded"]
    if kind == "licence":
        return [h["event_id"] for t in ("AdministrativeLicenceGranted", "AdministrativeLicenceRevoked")
                for h in ctx.events(t) if h["record"]["licence_no"] == ref]
    return []


REPAIR_TARGETS = {"administrative_penalty": "行政处罚信息", **queries.LIST_KIND_TITLES}


async def repairs(conn: psycopg.AsyncConnection[Any], ctx: Context) -> Section:
    rows = []
    for h in ctx.events("CreditRepaired"):
        r = h["record"]
        rows.append(Row({"repair_no": r["repair_no"], "target": REPAIR_TARGETS.get(r["target_kind"], r["target_kind"]),
                         "target_ref": r["target_ref"], "decision_date": _text(r["decision_date"]),
                         "authority": r["authority"]}, (h["event_id"],),
                        {k: (h["event_id"], k) for k in ("repair_no", "target_ref", "decision_date", "authority")}))
    return Section("repairs", "信用修复", (("repair_no", "修复决定文号"), ("target", "修复对象"),
                                       ("target_ref", "对象文号"), ("decision_date", "决定日期"),
                                       ("authority", "作出决定的单位")),
                   tuple(rows), "无信用修复记录。", "信用修复后，相关记录依规停止公示；修复决定本身在此列明。")


MATTER_TITLES = {OBJECTION: "信用信息异议", REPAIR: "信用修复申请"}
# the field of each step's event that gives the step's date
STEP_DATES = {"ObjectionFiled": "received_on", "ObjectionForwarded": "forwarded_on", "ObjectionAnswered": "answered_on",
              "RepairApplied": "received_on", "RepairAccepted": "accepted_on", "RepairRefused": "refused_on",
              "RepairDecided": "decided_on"}
FILINGS = ("ObjectionFiled", "RepairApplied")
MATTER_COLUMNS = (("receipt", "受理编号"), ("matter", "事项"), ("step", "办理环节"), ("done_on", "办理日期"),
                  ("due", "办理期限"), ("result", "结果"), ("explanation", "说明"))


def matter_rows(ctx: Context, kind: str, m: dict[str, Any]) -> list[Row]:
    """The rows of one objection or repair application (`m`: its row of views.objections or
    views.repair_applications, as objection_queries.entity_matters reads it): one per step
    (objection_queries.steps), each resting on the ledger event that did it, whose own fields give the
    receipt number and the step's date; a step not yet done rests on none. The result and its
    explanation (or the reason for refusing) are the views' own; never the contact, the telephone
    number, the objection's reason or the application's statement (the views do not hold them)."""
    receipt = m["receipt_no"]
    done = {h["event_type"]: h for h in ctx.history if h["event_type"] in REQUEST_EVENTS
            and (h["event_id"] == receipt or h["record"].get("receipt_no") == receipt)}
    about = [MATTER_TITLES[kind], f"所涉记录：{RECORD_TITLES.get(m['record_kind'], m['record_kind'])} {m['record_ref']}"]
    if kind == OBJECTION:
        about.append(f"异议类型：{GROUNDS_TITLES.get(m['grounds'], m['grounds'])}")
    about.append(f"当前状态：{STATUS_TITLES[kind][m['status']]}")
    steps = objection_queries.steps(kind, m)
    rows = []
    for i, step in enumerate(steps):
        h = done.get(step["event"]) if step["done_on"] else None
        cells = {"receipt": receipt, "matter": "\n".join(about) if i == 0 else "", "step": step["step"],
                 "done_on": _text(step["done_on"]) or "待办", "result": "", "explanation": "",
                 "due": f"{step['due']}（{objection_queries.timeliness(step, ctx.today.isoformat())}）"
                 if step["due"] else "—"}
        events: tuple[str, ...] = ()
        proven: dict[str, tuple[str, str]] = {}
        if h is not None:
            events = (h["event_id"],)
            proven = {"receipt": (h["event_id"], "envelope.event_id" if step["event"] in FILINGS else "receipt_no"),
                      "done_on": (h["event_id"], STEP_DATES[step["event"]])}
        if h is not None and i == len(steps) - 1:
            said = "reason" if step["event"] == "RepairRefused" else "explanation"
            text = m.get("refusal_reason") if said == "reason" else m.get("explanation")
            if text:
                cells["explanation"] = masked(text)
                proven["explanation"] = (h["event_id"], said)
            cells["result"] = ("不予受理" if step["event"] == "RepairRefused" else
                               objection_queries.RESULT_TITLES.get(m.get("result") or "", ""))
            repair = m.get("repair_event_id")
            carried = ctx.event(repair) if repair else None  # the CreditRepaired that carried a GRANTED decision out
            if carried is not None:
                events = (repair, *events) if carried["version"] < h["version"] else (*events, repair)
        rows.append(Row(cells, events, proven))
    return rows


async def objections(conn: psycopg.AsyncConnection[Any], ctx: Context) -> Section:
    matters = await objection_queries.entity_matters(conn, ctx.entity_id)
    rows = [row for kind, key in ((OBJECTION, "objections"), (REPAIR, "repair_applications"))
            for m in matters[key] for row in matter_rows(ctx, kind, m)]
    return Section("objections", "异议与信用修复申请", MATTER_COLUMNS, tuple(rows), "无信用信息异议或信用修复申请。",
                   "受理编号即异议或修复申请提交时的账本事件编号，可在信用许昌“办理进度查询”页面查询办理进度；各环节期限按"
                   "工作日计算，依据受理日适用的异议处理和信用修复规定。申请人的联系人、联系电话、异议理由、申请说明及内部"
                   "转办、受理说明不予公开：这些账本记录仅附叶哈希。")


SectionFunction = Callable[[psycopg.AsyncConnection[Any], Context], Awaitable[Section]]
SECTIONS: tuple[SectionFunction, ...] = (registration, double_publicity, black_lists, red_lists, commitments,
                                         evaluation, repairs, objections)
