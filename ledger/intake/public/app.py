"""The public intake (信用许昌 异议与信用修复受理): the Chinese forms through which a credit subject files
an objection to a record or a credit repair application, on 127.0.0.1. Server-rendered HTML with no
script (usable without JavaScript); every form has its CSRF token; each client address may submit a
few forms, then one a minute (429 with Retry-After and a Chinese message).

Pages:

  GET  /                          what can be filed here and how to follow it
  GET  /objection?record=&...     the objection form (the portal's record pages link here with the record
                                  chosen: record = the event id that made it; name and id of the subject
                                  for an organisation)
  POST /objection                 file it: 303 to the receipt, or the form again with every problem named
  GET  /repair?record=&...        the repair application form
  POST /repair                    file it
  GET  /receipt/{receipt_no}      the receipt: the number to follow the matter by on the portal
  /static/public.css, /health, /metrics

A filing goes the way of every submission: the record (ObjectionFiled or RepairApplied, department
``public``, event id = the receipt number) is attested with this intake's own key
(LEDGER_KEYS_DIR/ledger-public-intake.key; the department matrix lets it attest for the public, and
for the objection and repair families only), produced to credit.submissions and judged by the
sequencer; its outcome decides the answer. The intake holds no department's key and reads no view.

Run: python -m ops.run public-intake [--port 8084] [--metrics-port 9116]
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web
from prometheus_client import Counter, Histogram

from ledger.domain import identity
from ledger.domain import rules as domain_rules
from ledger.intake.gateway.errors import Unavailable
from ledger.intake.gateway.fairness import Fairness, Limits
from ledger.intake.gateway.kafka import Ledger, acknowledged
from ledger.intake.public import csrf, forms
from ledger.platform import config, logs
from ledger.platform.clock import Clock
from ledger.platform.web import Handler, metrics, observe
from ledger.records import submissions

log = logs.get("public-intake")

INTAKE = "ledger-public-intake"  # its name in the department matrix and its key's file name
HERE = Path(__file__).resolve().parent
OUTCOME_SECONDS = 20.0  # how long a filing waits for the sequencer before the answer is "being processed"

REQUEST_SECONDS = Histogram("ledger_public_intake_request_seconds", "Public intake request durations, by route",
                            ["route"], buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
RESPONSES = Counter("ledger_public_intake_responses_total", "Public intake responses, by route and status",
                    ["route", "status"])
FILINGS = Counter("ledger_public_intake_filings_total", "Forms submitted, by form and what became of them "
                  "(accepted, refused: the sequencer's refusal, invalid: problems on the form, pending: no outcome "
                  "in time, forbidden: a bad CSRF token, limited: over the address's limit)", ["form", "outcome"])

SETTINGS = web.AppKey("settings", config.Settings)
CLOCK = web.AppKey("clock", Clock)
LEDGER = web.AppKey("ledger", Ledger)
TOKENS = web.AppKey("tokens", csrf.Tokens)
FAIRNESS = web.AppKey("fairness", Fairness)
JINJA = web.AppKey("jinja", jinja2.Environment)


def render(request: web.Request, template: str, status: int = 200, headers: dict[str, str] | None = None,
           **context: Any) -> web.Response:
    settings = request.app[SETTINGS]
    body = request.app[JINJA].get_template(template).render(
        portal=f"http://127.0.0.1:{settings.portal_port}", **context)
    return web.Response(text=body, status=status, content_type="text/html", charset="utf-8", headers=headers)


# ============================================================================ the forms


def _prefill(request: web.Request) -> dict[str, str]:
    """What a record page of the portal passes: the record, and for an organisation its name and code
    (a natural person types the ID number: it never travels in a link)."""
    q = request.query
    values = {"record": q.get("record", "")[:128], "subject_name": q.get("name", "")[:100], "id_type": "USCC"}
    code = q.get("id", "")[:18]
    if code and not forms.holds_id_number(code):
        values["subject_id"] = code
    return values


def _form_page(request: web.Request, form: forms.Form, values: dict[str, str], problems: list[forms.Problem],
               status: int = 200) -> web.Response:
    """The form, with its values (never a resident ID number: it is typed again) and every problem
    beside its field, and a fresh CSRF token for the browser's nonce."""
    nonce, token = request.app[TOKENS].issue(request.app[CLOCK].now().timestamp(), request.cookies.get(csrf.COOKIE))
    shown = dict(values)
    if shown.get("id_type") == "RIC" or forms.holds_id_number(shown.get("subject_id", "")):
        shown["subject_id"] = ""
    response = render(request, f"{form.kind}.html", status, form=form, values=shown, token=token,
                      problems={p.field: p.message for p in problems}, problem_list=problems,
                      grounds=forms.GROUNDS, id_types=forms.ID_TYPES, today=request.app[CLOCK].today())
    response.set_cookie(csrf.COOKIE, nonce, httponly=True, samesite="Strict", path="/")
    return response


async def index(request: web.Request) -> web.Response:
    return render(request, "index.html")


def _show(kind: str) -> Handler:
    async def show(request: web.Request) -> web.Response:
        return _form_page(request, forms.FORMS[kind], _prefill(request), [])
    return show


def _limited(request: web.Request) -> web.Response | None:
    """429 when the client address used up its forms (the gateway's token bucket, per address)."""
    address = request.remote or "unknown"
    refusal = request.app[FAIRNESS].charge(address, 1, time.monotonic())
    if refusal is None:
        return None
    return render(request, "error.html", 429, {"Retry-After": str(refusal.retry_after)}, title="提交过于频繁",
                  message=f"您提交得太频繁了，请在 {refusal.retry_after} 秒后再试。已填写的内容请先自行保存。")


def _file(kind: str) -> Handler:
    async def file(request: web.Request) -> web.StreamResponse:
        form = forms.FORMS[kind]
        post = await request.post()
        values = {k: v for k, v in post.items() if isinstance(v, str)}
        origin = request.headers.get("Origin")
        why = request.app[TOKENS].check(values.get(csrf.FIELD, ""), request.cookies.get(csrf.COOKIE),
                                         request.app[CLOCK].now().timestamp())
        if why is None and origin not in (None, "null") and origin != f"{request.scheme}://{request.host}":
            why = "origin"
        if why is not None:
            FILINGS.labels(kind, "forbidden").inc()
            log.info("form refused: csrf", form=kind, why=why)
            return render(request, "error.html", 403, title="页面已过期或来源不明",
                          message="为保护您的信息，本次提交未被受理。请返回表单页面，刷新后重新填写提交。",
                          back=f"/{kind}")
        limited = _limited(request)
        if limited is not None:
            FILINGS.labels(kind, "limited").inc()
            return limited
        clock = request.app[CLOCK]
        receipt = forms.new_receipt(form.prefix, clock.today())
        try:
            record = forms.record_of_form(form, values, receipt, clock.today(), clock.now())
        except forms.Invalid as exc:
            FILINGS.labels(kind, "invalid").inc()
            return _form_page(request, form, values, exc.problems, 400)
        try:
            outcome = await _submit(request.app, record)
        except Unavailable:
            return render(request, "error.html", 503, title="暂时无法受理", message="系统繁忙，本次提交未被受理，请稍后再试。",
                          back=f"/{kind}")
        if outcome is None:
            FILINGS.labels(kind, "pending").inc()
            return render(request, "receipt.html", 202, form=form, receipt=receipt, pending=True)
        if outcome["status"] in ("ACCEPTED", "DUPLICATE"):
            FILINGS.labels(kind, "accepted").inc()
            log.info("form filed", form=kind, event_id=receipt, partition=outcome["ledger_partition"],
                     offset=outcome["ledger_offset"])
            raise web.HTTPSeeOther(f"/receipt/{receipt}")
        FILINGS.labels(kind, "refused").inc()
        log.info("form refused by the sequencer", form=kind, event_id=receipt,
                 codes=[r["code"] for r in outcome["reasons"]])
        return _form_page(request, form, values, [forms.problem_of_refusal(r) for r in outcome["reasons"]], 422)
    return file


async def _submit(app: web.Application, record: dict[str, Any]) -> dict[str, Any] | None:
    """Attest the record as the public's, send it, wait for its outcome (None: not within OUTCOME_SECONDS)."""
    ledger = app[LEDGER]
    key, value = submissions.encode(record)
    ident = submissions.check_subject(record["envelope"]["subject"])
    entity_id = identity.entity_key(ident, app[SETTINGS].id_pepper)
    headers = await ledger.attest(forms.PUBLIC, record, value)
    delivery, outcome = await ledger.submit(forms.PUBLIC, entity_id, key, value, headers,
                                            record["envelope"]["event_id"])
    await acknowledged(delivery)
    try:
        return await asyncio.wait_for(asyncio.shield(outcome), OUTCOME_SECONDS)
    except TimeoutError:
        return None


async def receipt_page(request: web.Request) -> web.Response:
    receipt = request.match_info["receipt_no"]
    if not forms.is_receipt(receipt):
        return render(request, "error.html", 404, title="受理编号有误", message="没有这个受理编号。")
    kind = "objection" if receipt.startswith("YY") else "repair"
    return render(request, "receipt.html", form=forms.FORMS[kind], receipt=receipt, pending=False)


async def health(request: web.Request) -> web.Response:
    healthy = request.app[LEDGER].healthy()
    return web.json_response({"status": "ok" if healthy else "kafka watcher stopped"}, status=200 if healthy else 503)


ROUTES: tuple[tuple[str, str, Handler], ...] = (
    ("GET", "/", index),
    ("GET", "/objection", _show("objection")),
    ("POST", "/objection", _file("objection")),
    ("GET", "/repair", _show("repair")),
    ("POST", "/repair", _file("repair")),
    ("GET", "/receipt/{receipt_no}", receipt_page),
    ("GET", "/health", health),
    ("GET", "/metrics", metrics),
)


def answer(request: web.Request, exc: Exception, route: str) -> web.StreamResponse | None:
    """Error pages: what the public intake answers for an exception its handlers raised."""
    if isinstance(exc, web.HTTPRedirection):
        return exc
    if isinstance(exc, web.HTTPNotFound):
        return render(request, "error.html", 404, title="页面不存在", message="没有这个页面。")
    if isinstance(exc, web.HTTPMethodNotAllowed):
        return render(request, "error.html", 405, title="不支持的请求方式", message="请从表单页面提交。")
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        return render(request, "error.html", 413, title="提交内容过长", message="提交的内容过长，请精简后再提交。")
    return None


def failed(request: web.Request) -> web.Response:
    return render(request, "error.html", 500, title="服务暂时不可用", message="请稍后再试。")


def make_app(settings: config.Settings, ledger: Ledger, matrix: domain_rules.DepartmentMatrix, clock: Clock,
             tokens: csrf.Tokens | None = None, limits: Limits | None = None) -> web.Application:
    """The public intake over its collaborators: the Kafka side (started with the app; it attests with
    this intake's key), the department matrix (checked at start: it must let this intake attest for the
    public), the clock (the day received), the CSRF tokens and the limit per address (by default the
    settings': LEDGER_PUBLIC_INTAKE_BURST forms, then LEDGER_PUBLIC_INTAKE_PER_MINUTE a minute)."""
    matrix.authorize_intake(INTAKE, forms.PUBLIC)  # a matrix without the public intake: refuse to start
    app = web.Application(middlewares=[observe(log, REQUEST_SECONDS, RESPONSES, answer, failed,
                                               unlogged=("/metrics", "/health"))], client_max_size=64 * 1024)
    app[SETTINGS] = settings
    app[CLOCK] = clock
    app[TOKENS] = tokens or csrf.Tokens()
    app[FAIRNESS] = Fairness({"*": limits or Limits(settings.public_intake_per_minute / 60.0,
                                                    settings.public_intake_burst, 0)})
    app[JINJA] = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
                                    trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    for method, path, handler in ROUTES:
        app.router.add_route(method, path, handler)
    app.router.add_static("/static", HERE / "static")

    async def kafka(app: web.Application):  # type: ignore[no-untyped-def]
        await ledger.start()
        app[LEDGER] = ledger
        yield
        await ledger.stop()

    app.cleanup_ctx.append(kafka)
    return app
