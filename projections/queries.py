"""The read side's queries: one plain async function per question the query API answers.

Every function takes a psycopg ``AsyncConnection`` whose search_path is the live schema ("views")
and returns plain dicts and lists (dates as ISO strings, hashes as hex, jsonb as Python values),
ready for JSON. SQL is parameterised only; orderings are total (a unique key ends every ORDER BY),
so pages never overlap or skip a row. Paged functions take ``page`` (1-based) and ``size`` and
return ``{"items": [...], "page", "size", "total"}``.

No natural person's clear ID number can come out of here: the tables hold only the masked form
(``411002********0012``) and the pseudonymous entity id (``ric:<hmac>``); nothing is selected
from elsewhere.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from projections.rows import shown_record
from schemas import registry

EVENTS_TOPIC = registry.EVENTS.name
DEFAULT_SIZE, MAX_SIZE = 50, 500

# The five credit databases, in the order reports list them (coverage: projections/coverage.py).
CATEGORIES: tuple[str, ...] = ("government", "public_institution", "social_organisation", "enterprise",
                               "individual")
LEGAL_PERSON_CATEGORIES: tuple[str, ...] = CATEGORIES[:4]

LIST_STATUSES = ("active", "delisted", "repaired", "expired", "suspended", "revoked")  # the last two: red list
PUBLICITY_KINDS = ("licence", "penalty")
PUBLICITY_STATUSES = ("published", "repaired", "expired", "revoked", "valid")

# CSV export of /lists: column -> Chinese header (the public page's wording).
LIST_CSV_COLUMNS: tuple[tuple[str, str], ...] = (
    ("subject_name", "主体名称"),
    ("public_id", "统一社会信用代码/身份证号码（脱敏）"),
    ("category", "信用主体类别"),
    ("county", "县（市、区）"),
    ("list_kind", "名单类型"),
    ("colour", "红黑名单"),
    ("ref", "案号/文号"),
    ("reason", "列入事由"),
    ("department", "认定部门"),
    ("listed_on", "列入日期"),
    ("legal_end", "法定移出日期"),
    ("status", "状态"),
    ("ended_on", "移出日期"),
    ("entity_id", "主体标识"),
    ("event_id", "事件编号"),
)
CATEGORY_TITLES = {"government": "政府机构", "public_institution": "事业单位", "social_organisation": "社会组织",
                   "enterprise": "企业", "individual": "自然人"}
LIST_KIND_TITLES = {
    "dishonest_debtor": "失信被执行人名单", "major_tax_violation": "重大税收违法失信主体名单",
    "wage_arrears": "拖欠农民工工资失信联合惩戒对象名单", "procurement_ban": "政府采购禁止参加名单",
    "serious_dishonesty": "严重违法失信名单", "red": "守信激励（红名单）",
}
COLOUR_TITLES = {"black": "黑名单", "red": "红名单"}
STATUS_TITLES = {"active": "有效", "delisted": "已移出", "repaired": "已信用修复", "expired": "已到期",
                 "suspended": "已暂停（列入失信名单，待认定单位决定）", "revoked": "已撤销"}


def plain(v: Any) -> Any:
    """A database value as JSON-ready Python: dates ISO, bytes hex, containers recursively."""
    if isinstance(v, dict):
        return {k: plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    if isinstance(v, (date, datetime)):
        return v.isoformat()
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v).hex()
    return v


async def _all(conn: psycopg.AsyncConnection[Any], sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(sql, params)  # type: ignore[arg-type]
        return [plain(r) for r in await cur.fetchall()]


async def _one(conn: psycopg.AsyncConnection[Any], sql: str, params: Sequence[Any] = ()) -> dict[str, Any] | None:
    rows = await _all(conn, sql, params)
    return rows[0] if rows else None


# for the other read models of projections (coverage, counties, releases): the same plain rows
fetch_all, fetch_one = _all, _one


async def _count(conn: psycopg.AsyncConnection[Any], sql: str, params: Sequence[Any]) -> int:
    cur = await conn.execute(sql, params)  # type: ignore[arg-type]
    row = await cur.fetchone()
    return int(row[0]) if row else 0


def _page(items: list[dict[str, Any]], page: int, size: int, total: int) -> dict[str, Any]:
    return {"items": items, "page": page, "size": size, "total": total}


def _limits(page: int, size: int) -> tuple[int, int]:
    if page < 1 or not 1 <= size <= MAX_SIZE:
        raise ValueError(f"page must be >= 1 and size in 1..{MAX_SIZE}")
    return size, (page - 1) * size


# ----------------------------------------------------------------------------- positions


async def positions(conn: psycopg.AsyncConnection[Any]) -> dict[int, int]:
    """How far the views are in credit.events: partition -> next offset to apply (0 if none yet)."""
    cur = await conn.execute("select partition, next_offset from positions where topic = %s", (EVENTS_TOPIC,))
    stored = {int(p): int(o) for p, o in await cur.fetchall()}
    return {p: stored.get(p, 0) for p in range(registry.EVENTS.partitions)} | stored


async def positions_detail(conn: psycopg.AsyncConnection[Any]) -> dict[str, Any]:
    """The positions with the ledger time of the last record applied per partition."""
    rows = await _all(conn, "select partition, next_offset, last_append from positions where topic = %s "
                      "order by partition", (EVENTS_TOPIC,))
    by_partition = {r["partition"]: r for r in rows}
    return {
        "topic": EVENTS_TOPIC,
        "positions": {p: (by_partition[p]["next_offset"] if p in by_partition else 0)
                      for p in sorted(set(range(registry.EVENTS.partitions)) | set(by_partition))},
        "last_append": {p: r["last_append"] for p, r in by_partition.items()},
    }


# ----------------------------------------------------------------------------- entities

_ENTITY_SQL = ("select entity_id, category, id_type, public_id, name, version, first_seen, last_change, "
               "last_event_type, counts, black_lists, red_listed, registered_on, score, grade, grade_reasons, county, "
               "key_persons from entities where entity_id = %s")


async def entity_exists(conn: psycopg.AsyncConnection[Any], entity_id: str) -> bool:
    cur = await conn.execute("select 1 from entities where entity_id = %s", (entity_id,))
    return await cur.fetchone() is not None


async def entity_profile(conn: psycopg.AsyncConnection[Any], entity_id: str) -> dict[str, Any] | None:
    """The entity's row (identity, version, counts of events by type, grade with its reasons), its
    list entries (every status) and its double-publicity records (without the national fields:
    /publicity?entity= has them). None if the entity is unknown."""
    profile = await _one(conn, _ENTITY_SQL, (entity_id,))
    if profile is None:
        return None
    profile["lists"] = _marked(await _all(
        conn, "select list_kind, colour, ref, reason, department, listed_on, legal_end, status, ended_on, event_id, "
        f"{UNDER_OBJECTION} from list_entries r where entity_id = %s order by listed_on desc, list_kind, ref",
        (entity_id,)))
    profile["publicity"] = _marked(await _all(
        conn, "select event_id, kind, ref, department, decision_date, ledger_date, deadline, working_days, late, "
        "provisional, window_start, earliest_repair, automatic_end, status, ended_on, "
        f"{UNDER_OBJECTION} from publicity r where entity_id = %s order by decision_date desc, event_id", (entity_id,)))
    return profile


# Whether the record of a row `r` (list_entries or publicity: its event_id made it) has an open objection:
# it is then shown marked 异议处理中 wherever it is shown (河南省社会信用条例 art. 41(2); docs/domain-notes.md §9)
OBJECTION_MARK = "异议处理中"
UNDER_OBJECTION = ("exists (select 1 from objections o where o.target_event_id = r.event_id and o.entity_id = "
                   "r.entity_id and o.status <> 'answered') as under_objection")


def _marked(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for r in rows:
        r["objection_mark"] = OBJECTION_MARK if r["under_objection"] else None
    return rows


async def entity_history(conn: psycopg.AsyncConnection[Any], entity_id: str, page: int = 1,
                         size: int = DEFAULT_SIZE) -> dict[str, Any]:
    """The entity's ledger entries from the ledger copy, by version: ledger position, hash (hex),
    ledger time (``sequenced_at``) and the submitted record (subject id in its public form; `shown_record`).

    Page p is the version range ((p-1)*size, p*size], read from the primary key: no OFFSET, so a later
    page costs what the first does. It is the same page as ``order by version limit .. offset ..``
    because an entity's versions in the ledger copy run 1, 2, 3 ... without a gap (the projector applies
    version v only right after v-1, in the same transaction as the state that says so)."""
    limit, offset = _limits(page, size)
    total = await _count(conn, "select count(*) from ledger_copy where entity_id = %s", (entity_id,))
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "select entity_version as version, event_id, event_type, category, department, valid_from, "
            "sequenced_at, kafka_partition as partition, kafka_offset as offset, hash, record, rules_versions "
            "from ledger_copy where entity_id = %s and entity_version > %s and entity_version <= %s "
            "order by entity_version",
            (entity_id, offset, offset + limit))
        rows = await cur.fetchall()
    # the record as submitted (decoded from the copy's bytes), under the name the API has always given it
    items = [{**plain({k: v for k, v in r.items() if k not in ("record", "rules_versions")}),
              "payload": shown_record(r["record"], r["rules_versions"])} for r in rows]
    return {"entity_id": entity_id, **_page(items, page, size, total)}


# ----------------------------------------------------------------------------- lists


@dataclass(frozen=True)
class ListFilter:
    kind: str | None = None
    colour: str | None = None
    department: str | None = None
    category: str | None = None
    status: str | None = None
    entity: str | None = None
    listed_from: date | None = None  # listed_on >= listed_from
    listed_to: date | None = None  # listed_on <= listed_to (inclusive)
    county: str | None = None  # the entity's county (ledger/rules/divisions)

    def where(self) -> tuple[str, list[Any]]:
        clauses, params = [], []
        for column, value in (("list_kind", self.kind), ("colour", self.colour), ("department", self.department),
                              ("category", self.category), ("status", self.status), ("entity_id", self.entity),
                              ("county", self.county)):
            if value is not None:
                clauses.append(f"{column} = %s")
                params.append(value)
        if self.listed_from is not None:
            clauses.append("listed_on >= %s")
            params.append(self.listed_from)
        if self.listed_to is not None:
            clauses.append("listed_on <= %s")
            params.append(self.listed_to)
        return (" where " + " and ".join(clauses)) if clauses else "", params


_LIST_COLS = ("entity_id, subject_name, public_id, category, county, list_kind, colour, ref, reason, department, "
              "listed_on, legal_end, status, ended_on, event_id")
_LIST_ORDER = " order by listed_on desc, entity_id, list_kind, ref"


async def list_entries(conn: psycopg.AsyncConnection[Any], f: ListFilter, page: int = 1,
                       size: int = DEFAULT_SIZE) -> dict[str, Any]:
    """Red and black list entries matching the filter, newest listing first."""
    limit, offset = _limits(page, size)
    where, params = f.where()
    total = await _count(conn, "select count(*) from list_entries" + where, params)
    items = await _all(conn, f"select {_LIST_COLS}, {UNDER_OBJECTION} from list_entries r{where}{_LIST_ORDER} "
                       "limit %s offset %s", [*params, limit, offset])
    return _page(_marked(items), page, size, total)


async def list_entries_csv_rows(conn: psycopg.AsyncConnection[Any], f: ListFilter,
                                counties: Mapping[str, str] | None = None,
                                batch: int = 2000) -> AsyncIterator[list[str]]:
    """Every entry matching the filter (no paging), as CSV rows in LIST_CSV_COLUMNS order with
    Chinese labels for the coded columns (``counties``: county id -> name), streamed through a
    server-side cursor (the caller's connection must not be in another transaction)."""
    where, params = f.where()
    columns = ", ".join(c for c, _ in LIST_CSV_COLUMNS)
    labels = {"category": CATEGORY_TITLES, "list_kind": LIST_KIND_TITLES, "colour": COLOUR_TITLES,
              "status": STATUS_TITLES, "county": counties or {}}
    async with conn.transaction():
        async with conn.cursor(name="list_entries_csv", row_factory=dict_row) as cur:
            cur.itersize = batch
            await cur.execute(f"select {columns} from list_entries{where}{_LIST_ORDER}", params)
            async for row in cur:
                out = []
                for column, _ in LIST_CSV_COLUMNS:
                    value = plain(row[column])
                    if column in labels:
                        value = labels[column].get(value, value)
                    out.append("" if value is None else str(value))
                yield out


# ----------------------------------------------------------------------------- double publicity


@dataclass(frozen=True)
class PublicityFilter:
    entity: str | None = None
    department: str | None = None
    kind: str | None = None
    status: str | None = None
    late: str | None = None  # "true", "false" or "unknown" (the calendar does not cover the dates)
    decided_from: date | None = None
    decided_to: date | None = None

    def where(self) -> tuple[str, list[Any]]:
        clauses, params = [], []
        for column, value in (("entity_id", self.entity), ("department", self.department), ("kind", self.kind),
                              ("status", self.status)):
            if value is not None:
                clauses.append(f"{column} = %s")
                params.append(value)
        if self.late == "unknown":
            clauses.append("late is null")
        elif self.late is not None:
            clauses.append("late = %s")
            params.append(self.late == "true")
        if self.decided_from is not None:
            clauses.append("decision_date >= %s")
            params.append(self.decided_from)
        if self.decided_to is not None:
            clauses.append("decision_date <= %s")
            params.append(self.decided_to)
        return (" where " + " and ".join(clauses)) if clauses else "", params


async def publicity_records(conn: psycopg.AsyncConnection[Any], f: PublicityFilter, page: int = 1,
                            size: int = DEFAULT_SIZE) -> dict[str, Any]:
    """Double-publicity records (licences and penalties) in the national XK_/CF_ fields, with the
    publication window and the 7-working-day deadline; latest decision first."""
    limit, offset = _limits(page, size)
    where, params = f.where()
    total = await _count(conn, "select count(*) from publicity" + where, params)
    items = await _all(
        conn, "select event_id, entity_id, kind, ref, subject_name, public_id, category, department, decision_date, "
        "ledger_date, deadline, working_days, late, provisional, window_start, earliest_repair, automatic_end, status, "
        f"ended_on, national, {UNDER_OBJECTION} from publicity r{where} order by decision_date desc, event_id "
        "limit %s offset %s", [*params, limit, offset])
    return _page(_marked(items), page, size, total)


async def lateness_report(conn: psycopg.AsyncConnection[Any], kind: str | None = None,
                          decided_from: date | None = None, decided_to: date | None = None) -> dict[str, Any]:
    """Per department: records, on time, late, unknown (the calendar does not cover the dates),
    provisional (the deadline was computed over a year whose holiday notice is not in the calendar
    yet: docs/domain-notes.md §16.1) and the share late among the records whose lateness is known;
    with the totals."""
    f = PublicityFilter(kind=kind, decided_from=decided_from, decided_to=decided_to)
    where, params = f.where()
    rows = await _all(
        conn, "select department, count(*) as records, count(*) filter (where late = false) as on_time, "
        "count(*) filter (where late) as late, count(*) filter (where late is null) as unknown, "
        "count(*) filter (where provisional) as provisional "
        f"from publicity{where} group by department order by department", params)
    totals = {"records": 0, "on_time": 0, "late": 0, "unknown": 0, "provisional": 0}
    for r in rows:
        for k in totals:
            totals[k] += r[k]
        r["share_late"] = share(r["late"], r["late"] + r["on_time"])
    return {"departments": rows, "total": {**totals, "share_late": share(totals["late"],
                                                                          totals["late"] + totals["on_time"])},
            "deadline_working_days": 7}


async def short_deadline_report(conn: psycopg.AsyncConnection[Any], rule: str | None = None,
                                department: str | None = None) -> dict[str, Any]:
    """The short working-day deadlines (docs/domain-notes.md §15.2) per department and rule: acts,
    on time, late, unknown, provisional, share late; the totals per rule; and the late acts
    themselves (newest first, at most 200), each with its trigger date, deadline and the date it was done."""
    clauses, params = [], []
    for column, value in (("rule", rule), ("department", department)):
        if value is not None:
            clauses.append(f"{column} = %s")
            params.append(value)
    where = (" where " + " and ".join(clauses)) if clauses else ""
    rows = await _all(
        conn, "select department, rule, min(allowed) as working_days_allowed, count(*) as records, "
        "count(*) filter (where late = false) as on_time, count(*) filter (where late) as late, "
        "count(*) filter (where late is null) as unknown, count(*) filter (where provisional) as provisional "
        f"from short_deadlines{where} group by department, rule order by department, rule", params)
    totals: dict[str, dict[str, Any]] = {}
    for r in rows:
        r["share_late"] = share(r["late"], r["late"] + r["on_time"])
        t = totals.setdefault(r["rule"], {"rule": r["rule"], "records": 0, "on_time": 0, "late": 0, "unknown": 0,
                                          "provisional": 0})
        for k in ("records", "on_time", "late", "unknown", "provisional"):
            t[k] += r[k]
    for t in totals.values():
        t["share_late"] = share(t["late"], t["late"] + t["on_time"])
    late = await _all(
        conn, "select event_id, entity_id, subject_name, public_id, department, rule, ref, trigger_date, deadline, "
        f"done_date, working_days, allowed, provisional from short_deadlines{where}{' and' if where else ' where'} late "
        "order by done_date desc, event_id limit 200", params)
    return {"departments": rows, "rules": sorted(totals.values(), key=lambda t: t["rule"]), "late": late}


def share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


# ----------------------------------------------------------------------------- search (the public portal)

_SEARCH_COLS = "entity_id, category, county, public_id, name, black_lists, red_listed, grade"


def _like_pattern(text: str) -> str:
    """`text` as a literal ILIKE substring pattern (``%``, ``_`` and ``\\`` escaped)."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


async def search_entities(conn: psycopg.AsyncConnection[Any], text: str, page: int = 1,
                          size: int = DEFAULT_SIZE) -> dict[str, Any]:
    """Entities whose name contains `text` (any part of a Chinese name; the trigram index
    ``entities_name_trgm`` serves it from three characters on) or whose public identifier is `text`
    (a unified social credit code, upper case). Ordered by name, then entity id."""
    limit, offset = _limits(page, size)
    where = " where name ilike %s or public_id = %s"
    params = [_like_pattern(text), text.upper()]
    total = await _count(conn, "select count(*) from entities" + where, params)
    items = await _all(conn, f"select {_SEARCH_COLS} from entities{where} order by name, entity_id limit %s offset %s",
                       [*params, limit, offset])
    return _page(items, page, size, total)
