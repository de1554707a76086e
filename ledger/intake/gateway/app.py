"""The submission gateway: departments submit credit events over HTTP/JSON, on 127.0.0.1.

Routes (JSON; the OpenAPI description, derived from the Avro schemas, is /openapi.json):

  POST /v1/events            one event; answers the sequencer's outcome: 200 ACCEPTED (entity id,
                             version, ledger partition and offset) or DUPLICATE (the original
                             position); 422 REJECTED or CONFLICT with reasons {field, code, message};
                             202 {"status_url": ...} when no outcome came within ?timeout= seconds
                             (default 5, at most 30)
  POST /v1/events:batch      a JSON array of up to 10,000 events, all checked first: if any is
                             invalid (400) or forbidden (403) the whole batch is refused with
                             per-item reasons {index, field, code, message} and nothing is
                             submitted; otherwise every event is submitted and the answer lists
                             one outcome per event in order (200), or 202 if some are still pending
  GET  /v1/outcomes/{id}     the outcome of an event this gateway submitted for the caller's
                             department since it started (bounded cache); 202 while pending
                             (?timeout= waits for it), 404 if unknown
  GET  /openapi.json         the OpenAPI 3.1 description;   GET /docs  the same as an HTML page
  GET  /health               200 when Kafka answers and the outcome watcher runs, 503 otherwise
  GET  /metrics              Prometheus metrics of this process

Who may submit: `Authorization: Bearer <token>`, one token per department. The tokens' SHA-256
digests are read from LEDGER_KEYS_DIR/api-tokens.json ({department: sha256-hex}), outside the
repository (ops/stack up creates development tokens; production provides its own file; a changed
file is read again within seconds). No or unknown token: 401. An event whose
envelope.source_department is not the caller's department, or whose type the department matrix
(ledger/rules/departments.v*.json, the one the sequencer applies) forbids it: 403. Nothing is
submitted in either case.

What is submitted: the JSON is checked and converted field by field against the family's Avro
schema (ledger/intake/openapi.py; 400 naming each field), the subject's identifier is checked as the
sequencer will (400 with the identity check's field, code and message), then the record is encoded,
attested with the gateway's own Ed25519 key (LEDGER_KEYS_DIR/ledger-gateway.key; headers `signer:
ledger-gateway` and `batch`: one signature per batch request, and per department per event-loop turn
for single events) and produced to credit.submissions by one shared idempotent producer (acks=all),
keyed and partitioned as every submission. The gateway holds no department's private key; the
department matrix (intakes) names the departments it may attest for: any other token gets 403
(system and sector departments sign their own submissions). A single event may carry the
department's own signature, `X-Content-Signature: <base64 Ed25519 over the exact body>`, checked
against LEDGER_KEYS_DIR/<department>.pub (400 naming the header when it does not verify) and kept
with the entry (headers client-signature, client-body); a batch refuses it (400). One shared consumer of credit.outcomes (read_committed, from the end at start) hands
each outcome to the request waiting for it. The sequencer still judges everything.

Fair shares (limits.py, fairness.py): per department, a token bucket of events per second (a batch
takes as many as it carries) and a cap on the submission requests handled at once; over either, 429
with Retry-After and the limit named, nothing submitted. The defaults are the settings'
(LEDGER_GATEWAY_EVENTS_PER_SECOND, _BURST, _CONCURRENT_REQUESTS); LEDGER_KEYS_DIR/gateway-limits.json
may set them per department, read again within seconds of a change, like the tokens. A body over
LEDGER_GATEWAY_MAX_EVENT_BYTES (a single event) or LEDGER_GATEWAY_MAX_BATCH_BYTES (a batch): 413.

Logs hold the method, the path (anything like an ID number masked), the department, the status and
the duration, for every request answered with anything but a success (the submission routes'
successes are counted by the metrics only); never a token, a request body or an ID number.

Run: python -m ops.run gateway [--port 8081] [--metrics-port 9104]
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any
from urllib.parse import quote

import orjson
from aiohttp import web
from aiokafka.errors import KafkaError
from prometheus_client import Counter, Histogram

from ledger.domain import rules as domain_rules
from ledger.intake import openapi
from ledger.intake.gateway import docs_page
from ledger.intake.gateway.checks import (
    SIGNATURE_HEADER,
    KnownSubjects,
    admit,
    client_signature,
    encode,
    prepare,
)
from ledger.intake.gateway.errors import IntakeRefused, Limited, TooLarge, Unauthorized, Unavailable
from ledger.intake.gateway.fairness import RATE
from ledger.intake.gateway.kafka import Ledger, acknowledged
from ledger.intake.gateway.limits import Limiter
from ledger.intake.gateway.tokens import Tokens
from ledger.intake.openapi import Invalid, Problem
from ledger.platform import config, logs
from ledger.platform.web import BadParameter, Handler, error, json_response, metrics, observe

log = logs.get("gateway")

REQUESTS = Counter("ledger_gateway_requests_total", "Gateway responses, by route and HTTP status", ["route", "status"])
REQUEST_SECONDS = Histogram("ledger_gateway_request_seconds", "Gateway request durations, by route", ["route"],
                            buckets=(0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1,
                                     0.25, 0.5, 1, 2.5, 5, 10, 30))
OUTCOMES = Counter("ledger_gateway_outcomes_total", "Events answered, by outcome status (PENDING: answered "
                   "202 before the sequencer's outcome)", ["status"])
LIMITED = Counter("ledger_gateway_limited_total", "Requests refused to keep the gateway fair (nothing submitted), by "
                  "reason (rate, concurrency: 429; size: 413) and department", ["reason", "department"])
REFUSALS = Counter("ledger_gateway_refusals_total", "Events the gateway refused itself (nothing submitted), by "
                   "reason code", ["code"])

BATCH_SIGNATURE = (f"批量报送不接受 {SIGNATURE_HEADER}：批次的请求体不按事件保存，无法逐条核验；请逐条签名报送（POST /v1/events），"
                   "或使用直连 Avro 客户端，其批次签名具有同等证明力 (a batch takes no X-Content-Signature: the body of a "
                   "batch is not kept per event, so the signature could not be checked again; sign each event and "
                   "POST it to /v1/events, or use the direct Avro client, whose batch signatures prove the same)")

MATRIX = web.AppKey("matrix", domain_rules.DepartmentMatrix)
LEDGER = web.AppKey("ledger", Ledger)
TOKENS = web.AppKey("tokens", Tokens)
LIMITER = web.AppKey("limiter", Limiter)
SETTINGS = web.AppKey("settings", config.Settings)
KNOWN = web.AppKey("known_subjects", KnownSubjects)
DOCS = web.AppKey("docs_page", str)


# ============================================================================ requests


def authenticate(request: web.Request) -> str:
    header = request.headers.get("Authorization")
    dept = request.app[TOKENS].department(header)
    if dept is None:
        if not header:
            raise Unauthorized("auth.missing", "缺少身份凭证：请以 Authorization: Bearer <部门令牌> 报送 "
                                               "(no bearer token: send Authorization: Bearer <your department's token>)")
        raise Unauthorized("auth.unknown", "身份凭证无效 (unknown or malformed bearer token)")
    request["department"] = dept
    return dept


def timeout_param(request: web.Request, default: float) -> float:
    for name in request.query:
        if name != "timeout":
            raise BadParameter(name, "unknown parameter; this route takes timeout")
    values = request.query.getall("timeout", [])
    if not values:
        return default
    if len(values) > 1:
        raise BadParameter("timeout", "given more than once")
    try:
        seconds = float(values[0])
    except ValueError:
        raise BadParameter("timeout", f"'{openapi.echo(values[0])}' is not a number of seconds") from None
    if not (math.isfinite(seconds) and 0 <= seconds <= openapi.MAX_TIMEOUT):
        raise BadParameter("timeout", f"{openapi.echo(values[0])} is out of range (0..{openapi.MAX_TIMEOUT:g} s)")
    return seconds


def status_url(event_id: str) -> str:
    # dots too: clients and servers remove "." and ".." path segments before routing
    return "/v1/outcomes/" + quote(event_id, safe="").replace(".", "%2E")


def pending(event_id: str) -> dict[str, Any]:
    return {"event_id": event_id, "status": "PENDING", "status_url": status_url(event_id)}


def refusal(exc: IntakeRefused) -> web.Response:
    for p in exc.problems:
        REFUSALS.labels(p.code).inc()
    summary = "; ".join(f"{p.field}: {p.message}" for p in exc.problems[:5])
    return respond({"error": summary, "reasons": [p.as_dict() for p in exc.problems]}, exc.status)


def respond(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """`data` as UTF-8 JSON, written by orjson (the hot path's answers)."""
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json", charset="utf-8",
                        headers=headers)


def outcome_response(outcome: dict[str, Any]) -> web.Response:
    OUTCOMES.labels(outcome["status"]).inc()
    return respond(outcome, 200 if outcome["status"] in ("ACCEPTED", "DUPLICATE") else 422)


# ------------------------------------------------------------------ handlers


async def read_body(request: web.Request, limit: int, what: str) -> bytes:
    """The body, or TooLarge (413) when it is over `limit` bytes: refused before reading when its
    Content-Length says so (aiohttp's client_max_size bounds a body sent without one)."""
    if request.content_length is not None and request.content_length > limit:
        raise TooLarge(limit, what)
    body = await request.read()
    if len(body) > limit:
        raise TooLarge(limit, what)
    return body


async def post_event(request: web.Request) -> web.Response:
    department = authenticate(request)
    limiter = request.app[LIMITER]
    with limiter.request(department):
        limiter.charge(department, 1)
        return await submit_event(request, department)


async def submit_event(request: web.Request, department: str) -> web.Response:
    timeout = timeout_param(request, openapi.DEFAULT_TIMEOUT)
    started = time.monotonic()
    ledger = request.app[LEDGER]
    signed_header = request.headers.get(SIGNATURE_HEADER)
    try:
        admit(request.app[MATRIX], department)
        body = await read_body(request, request.app[SETTINGS].gateway_max_event_bytes, "event")
        obj = openapi.parse_json(body)
        _, record, entity_id = prepare(request.app[MATRIX], department, obj, request.app[SETTINGS].id_pepper,
                                       request.app[KNOWN])
        event_id = record["envelope"]["event_id"]
        client: list[tuple[str, bytes]] = []
        if signed_header is not None:
            signature = client_signature(signed_header, body, department, ledger.public_key(department), event_id)
            client = [("client-signature", signature), ("client-body", body)]
        key, value = encode(record, len(body) + 64 if client else 0)
    except Invalid as exc:
        return refusal(IntakeRefused(400, exc.problems))
    except IntakeRefused as exc:
        return refusal(exc)
    headers = await ledger.attest(department, record, value)
    delivery, outcome = await ledger.submit(department, entity_id, key, value, headers + client, event_id)
    await acknowledged(delivery)
    try:
        result = await asyncio.wait_for(asyncio.shield(outcome), max(0.0, timeout - (time.monotonic() - started)))
    except TimeoutError:
        OUTCOMES.labels("PENDING").inc()
        return respond(pending(event_id), 202, headers={"Location": status_url(event_id)})
    return outcome_response(result)


async def post_batch(request: web.Request) -> web.Response:
    department = authenticate(request)
    with request.app[LIMITER].request(department):
        return await submit_batch(request, department)


async def submit_batch(request: web.Request, department: str) -> web.Response:
    timeout = timeout_param(request, openapi.DEFAULT_TIMEOUT)
    started = time.monotonic()
    ledger, matrix = request.app[LEDGER], request.app[MATRIX]
    try:
        admit(matrix, department)
        if SIGNATURE_HEADER in request.headers:
            raise IntakeRefused(400, [Problem(SIGNATURE_HEADER, "client_signature.batch", BATCH_SIGNATURE)])
        items = openapi.parse_json(await read_body(request, request.app[SETTINGS].gateway_max_batch_bytes, "batch"))
    except Invalid as exc:
        return refusal(IntakeRefused(400, exc.problems))
    except IntakeRefused as exc:
        return refusal(exc)
    if not isinstance(items, list) or not 1 <= len(items) <= openapi.MAX_BATCH:
        what = f"{len(items)} events" if isinstance(items, list) else openapi.json_type(items)
        return refusal(IntakeRefused(400, [Problem("(body)", "batch.size", f"批量报送应为包含 1 至 {openapi.MAX_BATCH} 条事件的 "
                                                   f"JSON 数组 (a batch is a JSON array of 1 to {openapi.MAX_BATCH} events; "
                                                   f"got {what})")]))
    request.app[LIMITER].charge(department, len(items))  # before the events are checked: a flood costs little
    problems: list[dict[str, Any]] = []
    forbidden = False
    prepared: list[tuple[dict[str, Any], str, bytes, bytes]] = []
    seen: dict[str, int] = {}
    pepper, known = request.app[SETTINGS].id_pepper, request.app[KNOWN]
    for i, obj in enumerate(items):
        try:
            _, record, entity_id = prepare(matrix, department, obj, pepper, known)
            event_id = record["envelope"]["event_id"]
            if event_id in seen:
                raise IntakeRefused(400, [Problem("envelope.event_id", "batch.repeated_event_id",
                                                  f"同一批次中事件编号重复（第 {seen[event_id]} 条）"
                                                  f"(the same event id is already at index {seen[event_id]})")])
            seen[event_id] = i
            if not problems:  # once one is refused, nothing is submitted: the rest are only checked
                prepared.append((record, entity_id, *encode(record)))
        except IntakeRefused as exc:
            forbidden = forbidden or exc.status == 403
            for p in exc.problems:
                REFUSALS.labels(p.code).inc()
                if len(problems) < 1000:
                    problems.append({"index": i, **p.as_dict()})
    if problems:
        invalid = len({p["index"] for p in problems})
        return respond({"error": f"批次被整体退回，未报送任何事件：{invalid} 条事件有误 (the whole batch was refused "
                                 f"and nothing was submitted: {invalid} of {len(items)} events are "
                                 f"{'forbidden or invalid' if forbidden else 'invalid'})",
                        "reasons": problems}, 403 if forbidden else 400)
    signed = ledger.attest_batch(department, [r for r, *_ in prepared], [v for *_, v in prepared])
    handed = []
    for (record, entity_id, key, value), headers in zip(prepared, signed, strict=True):
        event_id = record["envelope"]["event_id"]
        handed.append((event_id, *await ledger.submit(department, entity_id, key, value, headers, event_id)))
    for _, delivery, _ in handed:
        await acknowledged(delivery)
    remaining = max(0.0, timeout - (time.monotonic() - started))
    outcomes = [o for _, _, o in handed]
    undecided = [o for o in outcomes if not o.done()]
    if undecided and remaining > 0:
        await asyncio.wait(undecided, timeout=remaining)  # (asyncio.wait cancels nothing)
    results: list[dict[str, Any]] = []
    counts: dict[str, int] = {}
    for event_id, _, o in handed:
        r = o.result() if o.done() and not o.cancelled() else pending(event_id)
        results.append(r)
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    for status, n in counts.items():
        OUTCOMES.labels(status).inc(n)
    return respond({"counts": counts, "outcomes": results}, 202 if "PENDING" in counts else 200)


async def get_outcome(request: web.Request) -> web.Response:
    department = authenticate(request)
    timeout = timeout_param(request, 0.0)
    event_id = request.match_info["event_id"]
    tracked, waiting = request.app[LEDGER].lookup(department, event_id)
    if tracked is None:
        return error(404, "本网关未收到过该部门的这个事件，或已不在缓存中 (this gateway has not submitted this event for your "
                          "department since it started, or no longer remembers it)", code="outcome.unknown")
    if waiting is not None:
        try:
            return outcome_response(await asyncio.wait_for(asyncio.shield(waiting), timeout))
        except TimeoutError:
            return json_response(pending(event_id), 202)
        except asyncio.CancelledError:
            if not waiting.cancelled():
                raise
            tracked, _ = request.app[LEDGER].lookup(department, event_id)
    if tracked is not None and (told := tracked.outcome) is not None:
        return outcome_response(told)
    return error(503, "该事件未能交给 Kafka，请以同一事件编号重新报送 (the submission was not acknowledged by Kafka; resubmit "
                      "it with the same event id)", code="submission.not_delivered")


async def get_openapi(request: web.Request) -> web.Response:
    return web.Response(body=openapi.document_bytes(), content_type="application/json", charset="utf-8")


async def get_docs(request: web.Request) -> web.Response:
    return web.Response(text=request.app[DOCS], content_type="text/html", charset="utf-8")


async def get_health(request: web.Request) -> web.Response:
    ledger = request.app[LEDGER]
    watcher = "ok" if ledger.healthy() else "stopped"
    try:
        await asyncio.wait_for(ledger.producer.client.fetch_all_metadata(), 3)
        kafka = "ok"
    except Exception as exc:  # any failure means: not healthy
        kafka = type(exc).__name__
    ok = kafka == "ok" and watcher == "ok"
    return json_response({"status": "ok" if ok else "unavailable", "kafka": kafka, "outcomes_watcher": watcher},
                         200 if ok else 503)


ROUTES: tuple[tuple[str, str, Handler], ...] = (
    ("POST", "/v1/events", post_event),
    ("POST", "/v1/events:batch", post_batch),
    ("GET", "/v1/outcomes/{event_id}", get_outcome),
    ("GET", "/openapi.json", get_openapi),
    ("GET", "/docs", get_docs),
    ("GET", "/health", get_health),
    ("GET", "/metrics", metrics),
)


# ============================================================================ the app


def answer(request: web.Request, exc: Exception, route: str) -> web.Response | None:
    """JSON errors: what the gateway answers for an exception its handlers raised (errors.py)."""
    if isinstance(exc, Unauthorized):
        REFUSALS.labels(exc.code).inc()
        response = error(401, exc.message, code=exc.code)
        response.headers["WWW-Authenticate"] = 'Bearer realm="credit-ledger"'
        return response
    if isinstance(exc, BadParameter):
        return error(400, f"bad parameter '{exc.name}': {exc.why}", code="parameter", parameter=exc.name)
    if isinstance(exc, Unavailable):
        return error(503, "Kafka 暂不可用：提交未确认，请以同一事件编号重新报送 (Kafka did not acknowledge the "
                          "submission in time; resubmit with the same event id: a resubmission is answered "
                          "DUPLICATE if the first one was recorded)", code="kafka.unavailable", detail=str(exc))
    if isinstance(exc, Limited):
        return limited(request, exc)
    if isinstance(exc, TooLarge | web.HTTPRequestEntityTooLarge):
        limit = exc.limit if isinstance(exc, TooLarge) else request.app[SETTINGS].gateway_max_batch_bytes
        zh, en = (("单条事件", "a single event") if isinstance(exc, TooLarge) and exc.what == "event"
                  else ("批量报送", "a batch"))
        LIMITED.labels("size", request.get("department") or "(unknown)").inc()
        return error(413, f"请求体过大：{zh}的请求体至多 {limit} 字节，未报送任何事件；请拆分后重新报送 (the body is "
                          f"larger than the {limit} bytes allowed for {en}; nothing was submitted: split it and "
                          "send it again)", code="body.too_large", limit_bytes=limit)
    if isinstance(exc, web.HTTPNotFound):
        return error(404, "no such route", code="route.unknown", routes=[f"{m} {p}" for m, p, _ in ROUTES])
    if isinstance(exc, web.HTTPMethodNotAllowed):
        return error(405, f"method {request.method} not allowed", code="method", allowed=sorted(exc.allowed_methods))
    if isinstance(exc, web.HTTPException):
        return error(exc.status, exc.reason, code="http")
    if isinstance(exc, KafkaError):
        log.warning("kafka unavailable", route=route, error=type(exc).__name__)
        return error(503, "Kafka unavailable; resubmit with the same event id", code="kafka.unavailable")
    return None


def limited(request: web.Request, exc: Limited) -> web.Response:
    """429: which of its department's limits the request is over, and when to retry (Retry-After)."""
    r, limits = exc.refusal, exc.refusal.limits
    LIMITED.labels(r.reason, request.get("department") or "(unknown)").inc()
    if r.reason == RATE:
        message = (f"本部门报送速率超出限额（每秒 {limits.events_per_second:g} 条事件，最多可一次报送 {limits.burst} 条），"
                   f"本次请求未报送任何事件；请于 {r.retry_after} 秒后重新报送 (your department is over its rate "
                   f"limit of {limits.events_per_second:g} events per second, in bursts of up to {limits.burst}; "
                   f"nothing of this request was submitted: send it again in {r.retry_after} s)")
    else:
        message = (f"本部门同时处理中的请求已达上限（{limits.concurrent_requests} 个），本次请求未报送任何事件；"
                   f"请等待已发出的请求得到答复，于 {r.retry_after} 秒后重新报送 (your department already has "
                   f"{limits.concurrent_requests} requests being handled, its limit; nothing of this request was "
                   f"submitted: wait for their answers and send it again in {r.retry_after} s)")
    response = error(429, message, code=f"limit.{r.reason}", retry_after=r.retry_after,
                     limit={"events_per_second": limits.events_per_second, "burst": limits.burst,
                            "concurrent_requests": limits.concurrent_requests})
    response.headers["Retry-After"] = str(r.retry_after)
    return response


def make_app(settings: config.Settings, ledger: Ledger, tokens: Tokens,
             matrix: domain_rules.DepartmentMatrix, limiter: Limiter | None = None) -> web.Application:
    """The gateway's application over its collaborators: the settings (the pepper of entity ids),
    the Kafka adapter (started with the app, stopped at its clean-up), the departments' tokens,
    the department matrix and the limits per department (by default the settings' and the keys dir's)."""
    # first, the scaffold's middleware (ledger/platform/web.py): JSON errors, the metrics per request
    # and a log line (never a token, a body or an ID number): none for /metrics and /health, and on
    # the submission routes only for an answer that is not a success (the metrics count the rest)
    observed = observe(log, REQUEST_SECONDS, REQUESTS, answer,
                       lambda request: error(500, "internal error", code="internal"), unlogged=("/metrics", "/health"),
                       quiet=("/v1/events", "/v1/events:batch", "/v1/outcomes/{event_id}"),
                       fields=lambda request: {"department": request.get("department")})
    app = web.Application(middlewares=[observed],
                          client_max_size=max(settings.gateway_max_batch_bytes, settings.gateway_max_event_bytes))
    app[SETTINGS] = settings
    app[LIMITER] = limiter or Limiter(settings, tokens.path.parent)
    app[MATRIX] = matrix
    app[TOKENS] = tokens
    app[KNOWN] = KnownSubjects()
    app[DOCS] = docs_page.render()
    for method, path, handler in ROUTES:
        # any character, as the handler judges the id: aiohttp's default {name} stops at "/", "{" and
        # "}", and "." at a line break (an id the gateway refuses; asked for, it is unknown like any other)
        app.router.add_route(method, path.replace("{event_id}", "{event_id:[\\s\\S]+}"), handler)

    async def kafka(app: web.Application):  # type: ignore[no-untyped-def]
        await ledger.start()
        app[LEDGER] = ledger
        missing = [d for d in tokens.departments() if ledger.public_key(d) is None]
        if missing:
            log.warning("departments with a token but no public key (their X-Content-Signature cannot be checked)",
                        departments=missing)
        yield
        await ledger.stop()

    app.cleanup_ctx.append(kafka)
    return app
