"""The public credit portal (信用许昌 公示查询) and the operator dashboard: server-rendered HTML in
Chinese over the PostgreSQL views, on 127.0.0.1. Display pages need no JavaScript.

Pages (all GET):

  /                              search form, links to the lists and the publication
  /search?q=                     entities by any part of the name, or by credit code / ID number
                                 (an identifier that names one known entity goes straight to it;
                                 a clear ID number is never echoed or logged)
  /entity/{entity_id}            public profile: identity (ID numbers masked), credit grade with
                                 its reasons, list entries with the legal basis and the end date,
                                 double-publicity records inside their publication window
  /lists                         red and black lists; filters kind, colour, department, category,
                                 county, status, from, to (listed on); paged (page, size)
  /publication?period=2026-11    the live query of a month or quarter (2026-Q4): entries listed in
                                 the period, red and black, as the lists stand now (not a release);
                                 paged; links to the period's approved releases
  /publication.csv?period=...    the same as a CSV download (UTF-8 with BOM, Chinese header row)
  /releases, /releases/{n}       the approved, numbered 红黑榜 releases exactly as approved, with
  /releases/{n}.pdf|.csv|.json   their PDF, CSV and canonical content (release_pages.py)
  /counties, /county/{county}    each county, district and zone with its own figures (county_pages.py)
  /tree-head                     the latest signed tree head of each partition of the ledger, the
                                 notary's public key and how to verify both (the signed text shown)
  /tree-head.json?partition=P    that head as a file (the form `python -m ledger.audit.verify` takes)
  /notary.pub                    the notary's Ed25519 public key (hex), as a file
  /report-issuer.pub             the credit report issuer's Ed25519 public key (hex), as a file (an
                                 entity page links its credit report, PDF and JSON, on the query API)
  /verify.py                     the offline verifier (ledger/audit/verify.py: standard library and
                                 `cryptography` only), as a file
  /follow?receipt=               an objection or a repair application by its receipt number: the record,
                                 the status, each step's date and deadline, the result (filed through
                                 the public intake, ledger/intake/public, whose forms the record pages
                                 link to)
  /dashboard                     operators: services up, throughput, lag in seconds, rejections by
                                 reason, alerts and webhook deliveries by department (from every
                                 service's /metrics), late double-publicity records, coverage of legal
                                 persons and key natural persons against the seed's targets, and the
                                 credit office's release drafts and approved releases (from the views);
                                 the monthly assessment of the departments and the charts (from the
                                 department supervision, projections/web/supervision.py);
                                 month=YYYY-MM, hours=1..48
  /dashboard/assessment.csv?month=YYYY-MM   that assessment as a CSV download
  /static/portal.css, /health, /metrics

Reads go through projections/queries.py (the same functions as the JSON query API) and the query
parameters are checked by the query API's Params (projections/web/params.py); a bad parameter gives
a 400 page naming it. Requests are observed by the web scaffold (ledger/platform/web.py).

Run: python -m ops.run portal [--port 8082] [--metrics-port 9113]
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from datetime import UTC, date, datetime
from pathlib import Path
from urllib.parse import urlencode

import jinja2
from aiohttp import web
from prometheus_client import Counter, Histogram

from ledger.audit import verify
from ledger.domain import identity, releases
from ledger.domain.rulebook import RuleBook
from ledger.platform import config, logs
from ledger.platform.clock import Clock
from ledger.platform.web import BadParameter, Handler, metrics, observe
from projections import objection_queries, queries
from projections import supervision as supervision_reads
from projections.audit import auditor as ledger_audit
from projections.audit import reads as audit
from projections.publicity import on_display
from projections.releases import drafts
from projections.releases import reads as release_reads
from projections.report import issue as report_issue
from projections.web import api, county_pages, dashboard, release_pages, supervision
from projections.web.pages import JINJA, RULES, form_request, render
from projections.web.pages import pages as _pages
from projections.web.params import Params, identify
from projections.web.pool import POOL, database
from schemas import registry

log = logs.get("portal")

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates" / "portal"
STATIC = HERE / "static"
PAGE_SIZE = 50
SAMPLE_SECONDS = 5.0  # how often the dashboard's throughput sampler scrapes the services
TREE_HEAD_PAGE = "/tree-head"
VERIFIER = Path(verify.__file__).resolve()

REQUEST_SECONDS = Histogram("ledger_portal_request_seconds", "Portal request durations, by route", ["route"],
                            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
RESPONSES = Counter("ledger_portal_responses_total", "Portal responses, by route and status", ["route", "status"])

THROUGHPUT = web.AppKey("throughput", dashboard.Throughput)


# ============================================================================ pure helpers


def parse_period(value: str | None) -> tuple[str, date, date]:
    """`2026-11` (a month) or `2026-Q4` (a quarter) -> (label, first day, last day); BadParameter
    naming `period` otherwise (the periods of the releases: ledger/domain/releases.py)."""
    if value is None or not value.strip():
        raise BadParameter("period", "missing: give a month (2026-11) or a quarter (2026-Q4)")
    try:
        period = releases.period_of(value)
    except ValueError as exc:
        raise BadParameter("period", str(exc)) from None
    return period.label, period.start, period.end


def current_month(today: date) -> str:
    return f"{today.year:04d}-{today.month:02d}"


def public_text(text: str) -> str:
    """User input as it may be shown or logged: anything that could be an ID number masked."""
    return identity.mask_id_numbers(text)




# ============================================================================ rendering


def _environment(rules: RuleBook, settings: config.Settings) -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    departments = rules.departments.departments
    env.globals.update(
        CATEGORY=queries.CATEGORY_TITLES, LIST_KIND=queries.LIST_KIND_TITLES, COLOUR=queries.COLOUR_TITLES,
        STATUS=queries.STATUS_TITLES, DEPARTMENT={d: dep.name for d, dep in departments.items()},
        PUBLICITY_KIND={"licence": "行政许可", "penalty": "行政处罚"},
        SHORT_RULE={key: f"{rule.title}（{rule.working_days} 个工作日）"
                    for key, rule in {**rules.calendar.deadlines, **rules.objections.titles()}.items()},
        # the public intake's forms (objections, repair applications), linked from the record pages
        intake=f"http://127.0.0.1:{settings.public_intake_port}",
        PUBLICITY_STATUS={"published": "公示中", "valid": "有效", "repaired": "已信用修复", "expired": "已到期",
                          "revoked": "已撤销"},
        GRADE={"A": "A 级（守信）", "B": "B 级（基本守信）", "C": "C 级（失信风险）", "D": "D 级（严重失信）"},
        COUNTY={c.id: c.name for c in rules.divisions.counties}, DRAFT_STATUS=drafts.STATUS_TITLES,
    )
    env.filters["qs"] = lambda params: urlencode({k: v for k, v in params.items() if v not in (None, "")})
    env.filters["number"] = lambda v, digits=0: "—" if v is None else f"{v:,.{digits}f}"
    env.filters["percent"] = lambda v: "—" if v is None else f"{v * 100:.1f}%"
    return env


# ============================================================================ public pages


async def index(request: web.Request) -> web.Response:
    Params(request)
    return render(request, "index.html", month=current_month(request.app[api.CLOCK].today()))


async def search(request: web.Request) -> web.StreamResponse:
    p = Params(form_request(request), frozenset({"q", "page"}))
    q = p.text("q", 64)
    if q is None:
        raise BadParameter("q", "missing: give part of a name, a unified social credit code or an ID number")
    page = p.integer("page", 1, 1, 100_000)
    found, _ = identify(q, None)
    settings = request.app[api.SETTINGS]
    async with request.app[POOL].connection() as conn:
        for _kind, ident in found:
            entity_id = identity.entity_key(ident, settings.id_pepper)
            if await queries.entity_exists(conn, entity_id):
                raise web.HTTPSeeOther(f"/entity/{entity_id}")
        # an ID number that names nobody: no name search on it, and never shown in clear
        result = ({"items": [], "page": page, "size": PAGE_SIZE, "total": 0} if any(k == "RIC" for k, _ in found)
                  else await queries.search_entities(conn, q, page, PAGE_SIZE))
    return render(request, "search.html", q=public_text(q), result=result,
                  pages=_pages(result["total"], page, PAGE_SIZE))


async def entity(request: web.Request) -> web.Response:
    Params(request)
    entity_id = request.match_info["entity_id"]
    async with request.app[POOL].connection() as conn:
        profile = await queries.entity_profile(conn, entity_id)
    if profile is None:
        return render(request, "error.html", status=404, title="未找到该信用主体",
                      message="没有这个信用主体的公示信息。请返回首页重新查询。")
    today = request.app[api.CLOCK].today()
    list_rules = request.app[RULES].publication.list_kinds
    lists = [{**x, "legal_basis": list_rules[x["list_kind"]].legal_source if x["list_kind"] in list_rules else None}
             for x in profile["lists"]]
    publicity = [r for r in profile["publicity"] if on_display(r, today)]
    return render(request, "entity.html", e=profile, lists=lists, publicity=publicity, today=today,
                  hidden_publicity=len(profile["publicity"]) - len(publicity),
                  report_url=f"{request.app[api.SETTINGS].query_api_url}/entities/{profile['entity_id']}/report")


async def follow(request: web.Request) -> web.Response:
    """An objection or a repair application by its receipt number (a blank form without one)."""
    p = Params(form_request(request), frozenset({"receipt"}))
    receipt = (p.text("receipt", 40) or "").strip().upper()
    found = None
    if receipt:
        async with request.app[POOL].connection() as conn:
            found = await objection_queries.matter(conn, receipt)
    return render(request, "follow.html", receipt=public_text(receipt), m=found,
                  today=request.app[api.CLOCK].today().isoformat())


LIST_PARAMS = frozenset({"kind", "colour", "department", "category", "county", "status", "from", "to", "page",
                         "size"})


async def lists(request: web.Request) -> web.Response:
    req = form_request(request)
    p = Params(req, LIST_PARAMS)
    f = api._list_filter(req, p)
    page, size = p.integer("page", 1, 1, 1_000_000), p.integer("size", PAGE_SIZE, 1, 200)
    async with request.app[POOL].connection() as conn:
        result = await queries.list_entries(conn, f, page, size)
    chosen = {k: req.query.get(k, "") for k in LIST_PARAMS - {"page"}}
    return render(request, "lists.html", result=result, chosen=chosen, pages=_pages(result["total"], page, size),
                  kinds=api.LIST_KIND_CHOICES, categories=queries.CATEGORIES, statuses=queries.LIST_STATUSES)


async def publication(request: web.Request) -> web.Response:
    p = Params(form_request(request), frozenset({"period", "page"}))
    period = p.text("period", 20) or current_month(request.app[api.CLOCK].today())
    label, start, end = parse_period(period)
    page = p.integer("page", 1, 1, 1_000_000)
    async with request.app[POOL].connection() as conn:
        result = await queries.list_entries(conn, queries.ListFilter(listed_from=start, listed_to=end), page,
                                            PAGE_SIZE)
        totals = {colour: (await queries.list_entries(
            conn, queries.ListFilter(colour=colour, listed_from=start, listed_to=end), 1, 1))["total"]
            for colour in ("black", "red")}
        released = [r for r in await release_reads.listing(conn) if r["period"] == releases.period_of(period).text]
    return render(request, "publication.html", period=period, label=label, start=start, end=end, result=result,
                  totals=totals, released=released, pages=_pages(result["total"], page, PAGE_SIZE))


async def publication_csv(request: web.Request) -> web.StreamResponse:
    """Every entry listed in the period, streamed as the lists CSV of the query API (UTF-8 with a
    byte-order mark, so that Excel opens the Chinese text correctly)."""
    p = Params(form_request(request), frozenset({"period"}))
    period = p.text("period", 20) or current_month(request.app[api.CLOCK].today())
    _label, start, end = parse_period(period)
    return await api.stream_lists_csv(request, queries.ListFilter(listed_from=start, listed_to=end),
                                      f"credit-publication-{period.strip().upper()}.csv")


# ============================================================================ signed tree heads


def _public_key(settings: config.Settings) -> str | None:
    try:
        return ledger_audit.public_key(settings)
    except ledger_audit.AuditError:
        return None


async def tree_head(request: web.Request) -> web.Response:
    """The newest published head of every partition, the key, and how an outsider checks them."""
    Params(request)
    settings = request.app[api.SETTINGS]
    async with request.app[POOL].connection() as conn:
        heads = [h for p in range(registry.EVENTS.partitions) if (h := await audit.latest_head(conn, p)) is not None]
    key = _public_key(settings)
    shown = [{**h.to_json(), "time": datetime.fromtimestamp(h.timestamp_ms / 1000, UTC).replace(microsecond=0),
              "message": verify.head_message(h.signed_fields()).decode()} for h in heads]
    return render(request, "tree_head.html", heads=shown, public_key=key,
                  key_id=verify.key_id(key) if key else None, leaves=sum(h.tree_size for h in heads),
                  partitions=registry.EVENTS.partitions, topic=registry.EVENTS.name)


async def tree_head_json(request: web.Request) -> web.Response:
    p = Params(request, frozenset({"partition"}))
    if p.text("partition") is None:
        raise BadParameter("partition", f"missing: give a partition of the ledger, 0..{registry.EVENTS.partitions - 1}")
    partition = p.integer("partition", 0, 0, registry.EVENTS.partitions - 1)
    async with request.app[POOL].connection() as conn:
        head = await audit.latest_head(conn, partition)
    if head is None:
        return render(request, "error.html", status=404, title="尚无签名树头",
                      message=f"账本第 {partition} 分区尚未发布签名树头，请稍后再试。")
    return web.json_response(head.to_json(), dumps=lambda d: api.dumps(d) + "\n", headers={
        "Content-Disposition": f'attachment; filename="tree-head-p{partition}-{head.tree_size}.json"'})


async def notary_key(request: web.Request) -> web.Response:
    Params(request)
    key = _public_key(request.app[api.SETTINGS])
    if key is None:
        return render(request, "error.html", status=404, title="公钥尚未生成", message="公证服务的公钥尚未生成。")
    return web.Response(text=key + "\n", content_type="text/plain", charset="utf-8",
                        headers={"Content-Disposition": 'attachment; filename="notary.pub"'})


async def issuer_key(request: web.Request) -> web.Response:
    """The credit report issuer's public key (hex), as a file: a report's JSON verifies with it."""
    Params(request)
    key = report_issue.issuer_public_key(request.app[api.SETTINGS].keys_dir)
    if key is None:
        return render(request, "error.html", status=404, title="公钥尚未生成", message="信用报告出具方的公钥尚未生成。")
    return web.Response(text=key + "\n", content_type="text/plain", charset="utf-8",
                        headers={"Content-Disposition": 'attachment; filename="report-issuer.pub"'})


async def verifier(request: web.Request) -> web.Response:
    """ledger/audit/verify.py itself: it runs on its own (standard library and `cryptography`)."""
    Params(request)
    return web.Response(body=VERIFIER.read_bytes(), content_type="text/x-python", charset="utf-8",
                        headers={"Content-Disposition": 'attachment; filename="verify.py"'})


# ============================================================================ the operator dashboard


async def operator_dashboard(request: web.Request) -> web.Response:
    settings, clock = request.app[api.SETTINGS], request.app[api.CLOCK]
    now = clock.now().replace(microsecond=0)
    async with request.app[POOL].connection() as conn:
        # the department supervision's part checks the query (month, hours) before anything is scraped
        supervised = await supervision.context(conn, request, request.app[RULES], now, clock.today())
        figures = dashboard.summarise(await dashboard.scrape(settings))
        lateness = await queries.lateness_report(conn)
        coverage = await api.coverage_of(request, conn)
        late = await queries.publicity_records(conn, queries.PublicityFilter(late="true"), 1, 20)
        short = await queries.short_deadline_report(conn)
        overdue = await objection_queries.overdue(conn, clock.today(), request.app[RULES].objections.credit_office)
        office = {"drafts": await drafts.recent(conn, 10), "releases": (await release_reads.listing(conn))[:10]}
    throughput = request.app[THROUGHPUT]
    throughput.add(figures)
    return render(request, "dashboard.html", f=figures, rates=throughput.as_dict(), lateness=lateness,
                  coverage=coverage, late=late, short=short, overdue=overdue, office=office, now=now,
                  sv=supervised)


async def assessment_csv(request: web.Request) -> web.Response:
    """The month's assessment of the departments (目标考核) as a CSV download."""
    p = Params(form_request(request), frozenset({"month"}))
    month = supervision.parse_month(p.text("month", 20), request.app[api.CLOCK].today())
    async with request.app[POOL].connection() as conn:
        counts = (await supervision_reads.month_counts(conn, [month]))[month]
    return web.Response(body=supervision.csv_body(month, request.app[RULES], counts), content_type="text/csv",
                        charset="utf-8", headers={"Content-Disposition": 'attachment; filename="department-assessment-'
                                                  f'{month.year:04d}-{month.month:02d}.csv"'})


async def sample_throughput(app: web.Application):  # type: ignore[no-untyped-def]
    """Background: scrape the services every SAMPLE_SECONDS so the dashboard has a rate at once."""
    settings = app[api.SETTINGS]

    async def loop() -> None:
        while True:
            app[THROUGHPUT].add(dashboard.summarise(await dashboard.scrape(settings)))
            await asyncio.sleep(SAMPLE_SECONDS)

    task = asyncio.create_task(loop())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


# ============================================================================ plumbing


async def health(request: web.Request) -> web.Response:
    return await api.get_health(request)


ROUTES: tuple[tuple[str, Handler], ...] = (
    ("/", index),
    ("/search", search),
    ("/entity/{entity_id}", entity),
    ("/lists", lists),
    ("/publication", publication),
    ("/publication.csv", publication_csv),
    ("/follow", follow),
    (TREE_HEAD_PAGE, tree_head),
    (TREE_HEAD_PAGE + ".json", tree_head_json),
    ("/notary.pub", notary_key),
    ("/report-issuer.pub", issuer_key),
    ("/verify.py", verifier),
    ("/dashboard", operator_dashboard),
    ("/dashboard/assessment.csv", assessment_csv),
    ("/health", health),
    ("/metrics", metrics),
    *release_pages.ROUTES,
    *county_pages.ROUTES,
)


def answer(request: web.Request, exc: Exception, route: str) -> web.StreamResponse | None:
    """Error pages: what the portal answers for an exception its handlers raised."""
    if isinstance(exc, BadParameter):
        return render(request, "error.html", status=400, title="查询条件有误",
                      message=f"参数 {exc.name}：{public_text(exc.why)}", parameter=exc.name)
    if isinstance(exc, web.HTTPRedirection):
        return exc
    if isinstance(exc, web.HTTPNotFound):
        return render(request, "error.html", status=404, title="页面不存在", message="没有这个页面。")
    if isinstance(exc, web.HTTPMethodNotAllowed):
        return render(request, "error.html", status=405, title="不支持的请求方式", message="本网站只提供查询（GET）。")
    return None


def failed(request: web.Request) -> web.Response:
    return render(request, "error.html", status=500, title="服务暂时不可用", message="请稍后再试。")


def make_app(settings: config.Settings, rules: RuleBook, clock: Clock, sample: bool = True) -> web.Application:
    """The portal, its "today" (what is on public display, the current month) from `clock`."""
    # the scaffold's middleware (ledger/platform/web.py): error pages, one log line and the duration
    # metric per request (the path only, anything like an ID number masked; never the query string)
    app = web.Application(middlewares=[observe(log, REQUEST_SECONDS, RESPONSES, answer, failed)])
    app[api.SETTINGS] = settings
    app[api.CLOCK] = clock
    app[RULES] = rules
    api.install_rules(app, rules)
    app[JINJA] = _environment(rules, settings)
    app[THROUGHPUT] = dashboard.Throughput()
    app[release_pages.PDF_CACHE] = OrderedDict()
    for path, handler in ROUTES:
        app.router.add_get(path, handler)
    app.router.add_static("/static", STATIC)
    app.cleanup_ctx.append(database(settings, "portal", max_size=20))
    if sample:
        app.cleanup_ctx.append(sample_throughput)
    return app
