"""The query API: read-only HTTP/JSON over the PostgreSQL views (schema "views"), on 127.0.0.1. The
one thing it writes is each credit report it issues, kept as issued (schema "reports").

Routes (all GET; JSON unless said otherwise; paged routes take page (1-based, default 1) and size
(default 50, at most 500) and answer {"items": [...], "page", "size", "total"}):

  /entities/{entity_id}            profile: identity (USCC, or the masked ID number), version,
                                   events by type, black lists, red list, grade with its reasons,
                                   list entries and double-publicity records; 404 if unknown
  /entities/{entity_id}/history    the entity's ledger entries by version: event id and type,
                                   department, valid_from, ledger time, partition, offset, hash
                                   (hex) and the record (subject id in its public form); paged
  /lookup?id=<USCC or ID number>   the profile of the subject with that identifier (normalised and
                                   checked; the ID number is turned into the pseudonymous entity
                                   id and never logged); optional type=USCC|RIC; 400 with the
                                   identity check's message when malformed
  /lists                           red and black list entries; filters kind, colour, department,
                                   category, status, entity, county, from, to (listed_on, inclusive);
                                   paged; format=csv: every matching row as CSV (UTF-8 with BOM,
                                   Chinese header row)
  /publicity                       double-publicity records (national XK_/CF_ fields, window,
                                   deadline, lateness); filters entity, department, kind, status,
                                   late=true|false|unknown, from, to (decision date); paged
  /publicity/lateness              per department: records, on_time, late, unknown, provisional
                                   (deadline computed over a year whose holiday notice is not in the
                                   calendar yet), share_late (among records whose lateness is known);
                                   filters kind, from, to
  /publicity/short-deadlines       the short working-day deadlines (withdrawal of a revoked penalty
                                   3, court deletion 3, wage-list removal 10, repair 1, the steps of
                                   objections and repair applications) per department and rule, the
                                   totals per rule, the late acts, and the steps overdue today (open
                                   objections and applications past a deadline); filters rule,
                                   department
  /objections/{receipt_no}         an objection by its receipt number: the record, the status, each step's
  /repair-applications/{receipt_no} date and deadline, the result (no telephone number, no reason text)
  /coverage                        per credit database: registered entities, those with credit
                                   records, share, target (legal persons 90 %); the key natural
                                   persons in all and per group (target 80 %); filter county
  /positions                       how far the views are in credit.events (partition -> next offset)
  /trigger?entity=&action=         may the entity do this now? allowed / restricted, the joint-
                                   punishment measures with legal basis and implementing
                                   departments, red-list incentives, the listings it rests on and
                                   the ledger position; entity: entity id, USCC or ID number
                                   (pseudonymised; optional type=USCC|RIC); unknown action: 400
                                   with the known actions; unknown entity: allowed, "no record"
  /reports/measures                feedback of sector systems per department and measure (applied,
                                   lifted, not applicable, entities); filters from, to (acted on),
                                   department, measure; format=csv
  /health                          200 when the database answers, 503 otherwise
  /metrics                         Prometheus metrics of this process
  /audit/...                       auditors: history checked against the log, as-of state, Merkle
                                   proofs, signed tree heads (projections/audit/http.py)
  /entities/{entity_id}/report.json|pdf, /reports/{number}.json|pdf, /reports/issuer-key
                                   credit reports that verify offline (projections/report/http.py)

Read-your-writes, on every route: after=<partition>:<offset> (the ledger position of a
submission's outcome) makes the request wait until the views have applied that record, at most
wait=<seconds> (default 5, at most 30); if they do not get there in time the answer is 409 with the
wanted and the current positions. Details and examples: docs/query-api.md.

Run: python -m ops.run query-api [--port 8080] [--metrics-port 9103]
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncGenerator
from typing import Any

import psycopg
import psycopg_pool
from aiohttp import web
from prometheus_client import Counter, Histogram

from ledger.domain import identity
from ledger.domain.key_persons import KeyPersonRules
from ledger.domain.punishment import Catalogue
from ledger.domain.rulebook import RuleBook
from ledger.domain.rules import LIST_KINDS
from ledger.platform import config, logs
from ledger.platform.clock import Clock
from ledger.platform.web import BadParameter, Handler, json_response, loggable_path, metrics_response, observe
from projections import coverage, objection_queries, queries, trigger
from projections.audit import http as audit_http
from projections.report import http as report_http
from projections.web.params import PAGE_PARAMS, Params, identify, parse_after, parse_wait, primary_rejection
from projections.web.pool import POOL, database, wait_for_position
from schemas import registry

log = logs.get("query-api")

REQUEST_SECONDS = Histogram("ledger_query_api_request_seconds", "Query API request durations, by route",
                            ["route"], buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
RESPONSES = Counter("ledger_query_api_responses_total", "Query API responses, by route and status",
                    ["route", "status"])
READ_YOUR_WRITES = Counter("ledger_query_api_read_your_writes_total",
                           "Requests with after=: reached (answered) or timed_out (409)", ["result"])

LIST_KIND_CHOICES = tuple(sorted(LIST_KINDS | {"red"}))

SETTINGS = web.AppKey("settings", config.Settings)
DEPARTMENTS = web.AppKey("departments", frozenset)
CATALOGUE = web.AppKey("catalogue", Catalogue)
CLOCK = web.AppKey("clock", Clock)  # every "today" of an answer: the China Standard Time date
OFFICE = web.AppKey("office", str)  # the credit office's department id (objections.v<N>.json)
COUNTIES = web.AppKey("counties", dict)  # county id -> name (ledger/rules/divisions), in the file's order
KEY_PERSONS = web.AppKey("key_persons", KeyPersonRules)  # the key-person groups and the coverage target
PUBLISHER = web.AppKey("publisher", str)  # who publishes the 红黑榜 releases (ledger/rules/releases)


# ============================================================================ responses


def _default(v: Any) -> Any:
    plain = queries.plain(v)
    if plain is v:
        raise TypeError(f"{type(v).__name__} is not JSON serialisable")
    return plain


def dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, default=_default)


def ok(data: Any, status: int = 200) -> web.Response:
    return json_response(data, status, default=_default)


def error(status: int, message: str, **extra: Any) -> web.Response:
    return json_response({"error": message, **extra}, status, default=_default)


def _known_entity_id(entity_id: str) -> str | None:
    """The entity id if it has the form of one (so it may be echoed), else None."""
    return entity_id if identity.ENTITY_ID.fullmatch(entity_id) else None


# ============================================================================ handlers


async def get_entity(request: web.Request) -> web.Response:
    Params(request)
    entity_id = request.match_info["entity_id"]
    async with request.app[POOL].connection() as conn:
        profile = await _profile(conn, entity_id)
    if profile is None:
        return error(404, "unknown entity", entity_id=_known_entity_id(entity_id))
    return ok(profile)


async def _profile(conn: Any, entity_id: str) -> dict[str, Any] | None:
    """The entity's profile with its objections and repair applications (None if unknown)."""
    profile = await queries.entity_profile(conn, entity_id)
    if profile is not None:
        profile.update(await objection_queries.entity_matters(conn, entity_id))
    return profile


def _get_matter(kind: str) -> Handler:
    async def get_matter(request: web.Request) -> web.Response:
        Params(request)
        receipt = request.match_info["receipt_no"]
        async with request.app[POOL].connection() as conn:
            found = await objection_queries.matter(conn, receipt)
        if found is None or found["kind"] != kind:
            return error(404, f"no {kind} with this receipt number")
        return ok(found)
    return get_matter


async def get_history(request: web.Request) -> web.Response:
    p = Params(request, PAGE_PARAMS)
    page, size = p.paging()
    entity_id = request.match_info["entity_id"]
    async with request.app[POOL].connection() as conn:
        if not await queries.entity_exists(conn, entity_id):
            return error(404, "unknown entity", entity_id=_known_entity_id(entity_id))
        return ok(await queries.entity_history(conn, entity_id, page, size))


async def get_lookup(request: web.Request) -> web.Response:
    p = Params(request, frozenset({"id", "type"}))
    raw = p.q.get("id")
    if raw is None or not raw.strip():
        raise BadParameter("id", "missing: give a unified social credit code or a resident ID number")
    if len(raw) > 64:
        raise BadParameter("id", "longer than 64 characters")
    id_type = p.choice("type", ("USCC", "RIC"))
    found, refused = identify(raw, id_type)
    if not found:
        r = primary_rejection(raw, refused)
        return error(400, r.message, parameter="id", code=r.code,
                     not_valid_as={k: {"code": x.code, "message": x.message} for k, x in refused.items()})
    settings = request.app[SETTINGS]
    async with request.app[POOL].connection() as conn:
        for _kind, ident in found:
            profile = await _profile(conn, identity.entity_key(ident, settings.id_pepper))
            if profile is not None:
                return ok(profile)
    return error(404, "no entity with this identifier in the views", checked_as=[k for k, _ in found],
                 warnings=sorted({w for _, i in found for w in i.warnings}),
                 not_valid_as={k: {"code": x.code, "message": x.message} for k, x in refused.items()})


def _list_filter(request: web.Request, p: Params) -> queries.ListFilter:
    department = _department(request, p)
    start, end = p.period()
    return queries.ListFilter(
        kind=p.choice("kind", LIST_KIND_CHOICES), colour=p.choice("colour", ("black", "red")),
        department=department, category=p.choice("category", queries.CATEGORIES),
        status=p.choice("status", queries.LIST_STATUSES), entity=p.text("entity", 64),
        listed_from=start, listed_to=end, county=p.choice("county", tuple(request.app[COUNTIES])))


async def get_lists(request: web.Request) -> web.StreamResponse:
    p = Params(request, PAGE_PARAMS | {"kind", "colour", "department", "category", "status", "entity", "county",
                                       "from", "to", "format"})
    f = _list_filter(request, p)
    page, size = p.paging()
    fmt = p.choice("format", ("json", "csv")) or "json"
    if fmt == "csv":
        return await stream_lists_csv(request, f, f"credit-lists-{request.app[CLOCK].today().isoformat()}.csv")
    async with request.app[POOL].connection() as conn:
        return ok(await queries.list_entries(conn, f, page, size))


async def stream_lists_csv(request: web.Request, f: queries.ListFilter, filename: str) -> web.StreamResponse:
    """Every matching list entry, streamed as the CSV download `filename` (the query API, the portal)."""
    async with request.app[POOL].connection() as conn:
        return await _stream_csv(request, filename, [title for _, title in queries.LIST_CSV_COLUMNS],
                                 queries.list_entries_csv_rows(conn, f, request.app[COUNTIES]))


async def _stream_csv(request: web.Request, filename: str, header: list[str],
                      rows: AsyncGenerator[list[str], None]) -> web.StreamResponse:
    """Every row (page and size do not apply), streamed. UTF-8 with a byte-order mark, so that
    Excel opens the Chinese text correctly; CRLF line ends (RFC 4180)."""
    response = web.StreamResponse(headers={
        "Content-Type": "text/csv; charset=utf-8", "Content-Disposition": f'attachment; filename="{filename}"'})
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    buffer.write("\ufeff")
    writer.writerow(header)
    try:
        first = await anext(rows, None)  # a database error here still gets a proper error status
        await response.prepare(request)
        if first is not None:
            writer.writerow(first)
            async for row in rows:
                writer.writerow(row)
                if buffer.tell() > 64 * 1024:
                    await response.write(buffer.getvalue().encode("utf-8"))
                    buffer.seek(0)
                    buffer.truncate()
        await response.write(buffer.getvalue().encode("utf-8"))
    except ConnectionResetError:  # the client went away mid-download: nothing more to send
        return response
    finally:
        await rows.aclose()
    await response.write_eof()
    return response


async def get_publicity(request: web.Request) -> web.Response:
    p = Params(request, PAGE_PARAMS | {"entity", "department", "kind", "status", "late", "from", "to"})
    department = _department(request, p)
    start, end = p.period()
    f = queries.PublicityFilter(
        entity=p.text("entity", 64), department=department, kind=p.choice("kind", queries.PUBLICITY_KINDS),
        status=p.choice("status", queries.PUBLICITY_STATUSES), late=p.choice("late", ("true", "false", "unknown")),
        decided_from=start, decided_to=end)
    page, size = p.paging()
    async with request.app[POOL].connection() as conn:
        return ok(await queries.publicity_records(conn, f, page, size))


async def get_lateness(request: web.Request) -> web.Response:
    p = Params(request, frozenset({"kind", "from", "to"}))
    kind = p.choice("kind", queries.PUBLICITY_KINDS)
    start, end = p.period()
    async with request.app[POOL].connection() as conn:
        return ok(await queries.lateness_report(conn, kind, start, end))


async def get_short_deadlines(request: web.Request) -> web.Response:
    p = Params(request, frozenset({"rule", "department"}))
    department = _department(request, p)
    rule = p.choice("rule", SHORT_DEADLINE_RULES)
    async with request.app[POOL].connection() as conn:
        report = await queries.short_deadline_report(conn, rule, department)
        overdue = await objection_queries.overdue(conn, request.app[CLOCK].today(), request.app[OFFICE], department)
    if rule is not None:
        overdue["items"] = [x for x in overdue["items"] if x["rule"] == rule]
        overdue["departments"] = [x for x in overdue["departments"] if x["rule"] == rule]
    return ok({**report, "overdue": overdue})


# the measured rules of ledger/rules/workdays.v<N>.json "deadlines" (docs/domain-notes.md §15.2) and the steps of
# objections and repair applications (ledger/rules/objections.v<N>.json)
SHORT_DEADLINE_RULES = ("penalty_withdrawal", "court_deletion", "wage_removal", "repair_decision",
                        "objection_forward", "objection_answer_own", "objection_source_answer", "objection_answer",
                        "repair_accept", "repair_decide")


async def get_coverage(request: web.Request) -> web.Response:
    p = Params(request, frozenset({"county"}))
    county = p.choice("county", tuple(request.app[COUNTIES]))
    async with request.app[POOL].connection() as conn:
        return ok(await coverage_of(request, conn, county))


async def coverage_of(request: web.Request, conn: Any, county: str | None = None) -> dict[str, Any]:
    """The coverage (projections/coverage.py) with the key-person groups of the app's rules."""
    rules = request.app[KEY_PERSONS]
    groups = {c.id: c.name for c in rules.categories.values()}
    return await coverage.coverage(conn, county, groups, rules.target)


async def get_positions(request: web.Request) -> web.Response:
    Params(request)
    async with request.app[POOL].connection() as conn:
        return ok(await queries.positions_detail(conn))


async def get_health(request: web.Request) -> web.Response:
    Params(request)
    try:
        async with request.app[POOL].connection(timeout=3) as conn:
            current = await queries.positions(conn)
    except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
        return error(503, "database unavailable", detail=type(exc).__name__)
    return ok({"status": "ok", "database": "ok", "positions": current})


def _department(request: web.Request, p: Params) -> str | None:
    department = p.text("department", 64)
    if department is not None and department not in request.app[DEPARTMENTS]:
        raise BadParameter("department", f"unknown department '{department}'; known: "
                           f"{', '.join(sorted(request.app[DEPARTMENTS]))}")
    return department


async def _entity_id(request: web.Request, conn: Any, raw: str, id_type: str | None) -> str:
    """The entity id named by `raw`: an entity id as is, else a USCC or a resident ID number (turned
    into its pseudonymous entity id, never logged); the first form the views know, else the first valid."""
    if identity.ENTITY_ID.fullmatch(raw):
        return raw
    found, refused = identify(raw, id_type)
    if not found:
        r = primary_rejection(raw, refused)
        raise BadParameter("entity", f"not an entity id, a unified social credit code or a resident ID number: "
                           f"{r.message}", code=r.code)
    keys = [identity.entity_key(ident, request.app[SETTINGS].id_pepper) for _, ident in found]
    for key in keys:
        if await queries.entity_exists(conn, key):
            return key
    return keys[0]


async def get_trigger(request: web.Request) -> web.Response:
    p = Params(request, frozenset({"entity", "action", "type"}))
    raw = p.q.get("entity")
    if raw is None or not raw.strip():
        raise BadParameter("entity", "missing: give an entity id, a unified social credit code or a resident ID number")
    if len(raw) > 64:
        raise BadParameter("entity", "longer than 64 characters")
    catalogue = request.app[CATALOGUE]
    action = p.text("action", 64)
    if action is None or action not in catalogue.actions:
        raise BadParameter("action", "missing" if action is None else f"unknown action '{action}'",
                           known_actions=sorted(catalogue.actions))
    id_type = p.choice("type", ("USCC", "RIC"))
    async with request.app[POOL].connection() as conn:
        entity_id = await _entity_id(request, conn, raw.strip(), id_type)
        return ok(await trigger.trigger_answer(conn, entity_id, action, catalogue,
                                                 request.app[CLOCK].today()))


async def get_measures_report(request: web.Request) -> web.StreamResponse:
    p = Params(request, frozenset({"from", "to", "department", "measure", "format"}))
    start, end = p.period()
    department = _department(request, p)
    catalogue = request.app[CATALOGUE]
    measure = p.choice("measure", frozenset(catalogue.measures))
    fmt = p.choice("format", ("json", "csv")) or "json"
    async with request.app[POOL].connection() as conn:
        report = await trigger.measures_report(conn, catalogue, start, end, department, measure)
    if fmt == "json":
        return ok(report)

    async def rows() -> AsyncGenerator[list[str], None]:
        for row in trigger.report_csv_rows(report):
            yield row

    return await _stream_csv(request, f"punishment-measures-{request.app[CLOCK].today().isoformat()}.csv",
                             [title for _, title in trigger.REPORT_CSV_COLUMNS], rows())


async def get_metrics(request: web.Request) -> web.Response:
    Params(request)
    return metrics_response()


ROUTES: tuple[tuple[str, Handler], ...] = (
    ("/entities/{entity_id}", get_entity),
    ("/entities/{entity_id}/history", get_history),
    ("/lookup", get_lookup),
    ("/lists", get_lists),
    ("/publicity", get_publicity),
    ("/publicity/lateness", get_lateness),
    ("/publicity/short-deadlines", get_short_deadlines),
    ("/objections/{receipt_no}", _get_matter("objection")),
    ("/repair-applications/{receipt_no}", _get_matter("repair")),
    ("/coverage", get_coverage),
    ("/positions", get_positions),
    ("/trigger", get_trigger),
    ("/reports/measures", get_measures_report),
    ("/health", get_health),
    ("/metrics", get_metrics),
)


def install_rules(app: web.Application, rules: RuleBook) -> None:
    """What the query API and the portal read of the rules: departments, counties, key-person groups,
    the releases' publisher, the credit office (objections)."""
    app[DEPARTMENTS] = frozenset(rules.departments.departments)
    app[COUNTIES] = {c.id: c.name for c in rules.divisions.counties}
    app[KEY_PERSONS] = rules.key_persons
    app[PUBLISHER] = rules.releases.publisher_name
    app[OFFICE] = rules.objections.credit_office


# ============================================================================ middlewares


@web.middleware
async def read_your_writes(request: web.Request, handler: Handler) -> web.StreamResponse:
    after = parse_after(request.query.get("after"))
    wait = parse_wait(request.query.get("wait"))
    if after is not None:
        reached, current = await wait_for_position(request.app[POOL], *after, wait)
        READ_YOUR_WRITES.labels("reached" if reached else "timed_out").inc()
        if not reached:
            partition, offset = after
            return error(409, f"the views have not reached {registry.EVENTS.name} partition {partition} offset "
                         f"{offset} within {wait:g} s; retry later or with a longer wait",
                         wanted={"partition": partition, "offset": offset}, current=current)
    return await handler(request)


def answer(request: web.Request, exc: Exception, route: str) -> web.Response | None:
    """JSON errors: what the query API answers for an exception its handlers raised."""
    if isinstance(exc, BadParameter):
        return error(400, f"bad parameter '{exc.name}': {exc.why}", parameter=exc.name, reason=exc.why, **exc.extra)
    if isinstance(exc, web.HTTPNotFound):
        return error(404, "no such route", routes=[path for path, _ in ROUTES] + list(report_http.PATHS))
    if isinstance(exc, web.HTTPMethodNotAllowed):
        return error(405, f"method {request.method} not allowed; this API is read-only (GET)",
                     allowed=sorted(exc.allowed_methods))
    if isinstance(exc, web.HTTPException):
        return error(exc.status, exc.reason)
    if isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError, psycopg_pool.PoolTimeout)):
        log.warning("database unavailable", path=loggable_path(request.path), error=type(exc).__name__)
        return error(503, "database unavailable; retry later")
    return None


# ============================================================================ the app and the process


def make_app(settings: config.Settings, rules: RuleBook, clock: Clock,
             pool: psycopg_pool.AsyncConnectionPool | None = None) -> web.Application:
    """The application, judging by `rules` (the departments and the punishment catalogue), its
    "today" from `clock` (the trigger's answers, the CSV file names). Without
    `pool`, one is opened on start-up (2..10 connections, search_path views, autocommit) and closed on
    clean-up."""
    # first, the scaffold's middleware (ledger/platform/web.py): JSON errors, one log line and the
    # duration metric per request (the method, the path: never the query string, anything like an ID
    # number masked; the status and milliseconds)
    observed = observe(log, REQUEST_SECONDS, RESPONSES, answer, lambda request: error(500, "internal error"))
    app = web.Application(middlewares=[observed, read_your_writes])
    app[SETTINGS] = settings
    app[CATALOGUE] = rules.catalogue
    app[CLOCK] = clock
    install_rules(app, rules)
    for path, handler in ROUTES:
        app.router.add_get(path, handler)
    audit_http.install(app, POOL, SETTINGS)
    report_http.install(app, POOL, SETTINGS, CLOCK, rules)

    app.cleanup_ctx.append(database(settings, "query-api", pool))
    return app
