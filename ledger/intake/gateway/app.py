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
signed with the department's Ed25519 key (LEDGER_KEYS_DIR/<department>.key) and produced to
credit.submissions by one shared idempotent producer (acks=all), keyed and partitioned as every
submission. One shared consumer of credit.outcomes (read_committed, from the end at start) hands
each outcome to the request waiting for it. The sequencer still judges everything.

Logs hold the method, the path (anything like an ID number masked), the department, the status and
the duration; never a token, a request body or an ID number.

Run: python -m ledger.intake.gateway [--port 8081] [--metrics-port 9104]
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import html
import json
import math
import os
import re
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiohttp import web
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

from ledger.domain import identity
from ledger.domain import rules as domain_rules
from ledger.domain.errors import Rejection
from ledger.domain.model import check_event_id
from ledger.intake import openapi
from ledger.intake.openapi import Invalid, Problem
from ledger.platform import config, logs, process, signing
from ledger.records import submissions
from schemas import registry

log = logs.get("gateway")

REQUESTS = Counter("ledger_gateway_requests_total", "Gateway responses, by route and HTTP status", ["route", "status"])
REQUEST_SECONDS = Histogram("ledger_gateway_request_seconds", "Gateway request durations, by route", ["route"],
                            buckets=(0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1,
                                     0.25, 0.5, 1, 2.5, 5, 10, 30))
OUTCOMES = Counter("ledger_gateway_outcomes_total", "Events answered, by outcome status (PENDING: answered "
                   "202 before the sequencer's outcome)", ["status"])
REFUSALS = Counter("ledger_gateway_refusals_total", "Events the gateway refused itself (nothing submitted), by "
                   "reason code", ["code"])
SUBMITTED = Counter("ledger_gateway_events_submitted_total", "Events signed and acknowledged by Kafka")
IN_FLIGHT = Gauge("ledger_gateway_events_waiting", "Submitted events whose outcome has not arrived yet")

TOKENS_FILE = "api-tokens.json"
MAX_BODY = 64 * 1024 * 1024  # a batch of 10,000 large events; a single event is far smaller
MAX_RECORD_BYTES = 1_000_000  # the producer's max request size is 1 MiB, headers included
DELIVERY_TIMEOUT = 30.0  # seconds Kafka may take to acknowledge a submission before the answer is 503
OUTCOME_CACHE = 200_000  # events whose outcome GET /v1/outcomes can give (least recently submitted forgotten)
AUTH_CODES = frozenset({"department.mismatch", "department.not_authorized", "department.unknown"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


# ============================================================================ tokens


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def ensure_tokens(keys_dir: Path, departments: list[str]) -> list[str]:
    """Development stacks: give every department without one a random bearer token. The clear token
    goes to <keys_dir>/<department>.token (0600), its SHA-256 to <keys_dir>/api-tokens.json, which is
    all the gateway reads. Returns the departments given a token now."""
    keys_dir.mkdir(parents=True, exist_ok=True)
    path = keys_dir / TOKENS_FILE
    digests: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    made = [d for d in departments if d not in digests]
    for d in made:
        token = secrets.token_urlsafe(32)
        tok = keys_dir / f"{d}.token"
        fd = os.open(tok, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(token + "\n")
        tok.chmod(0o600)
        digests[d] = token_digest(token)
    if made:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(digests, indent=2, sort_keys=True) + "\n")
        tmp.chmod(0o600)
        tmp.replace(path)
    return made


class Tokens:
    """The departments' token digests, from <keys_dir>/api-tokens.json, read again when it changes."""

    def __init__(self, keys_dir: Path, recheck_seconds: float = 5.0) -> None:
        self.path = keys_dir / TOKENS_FILE
        self.recheck = recheck_seconds
        self._digests: list[tuple[bytes, str]] = []
        self._stamp: tuple[int, int] | None = None
        self._checked = 0.0
        self._load()

    def _load(self) -> None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            raise FileNotFoundError(f"no API tokens at {self.path}: run ops/stack up (development) or provide "
                                    "the file ({department: sha256 hex of its token})") from None
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp == self._stamp:
            return
        data = json.loads(self.path.read_text())
        if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) and
                                                 re.fullmatch(r"[0-9a-f]{64}", v) for k, v in data.items()):
            raise ValueError(f"{self.path}: expected {{department: sha256 hex}}")
        self._digests = [(bytes.fromhex(v), k) for k, v in sorted(data.items())]
        self._stamp = stamp
        log.info("api tokens loaded", departments=len(self._digests))

    def departments(self) -> list[str]:
        return [d for _, d in self._digests]

    def department(self, authorization: str | None) -> str | None:
        """The department a bearer token belongs to, or None."""
        now = time.monotonic()
        if now - self._checked > self.recheck:
            self._checked = now
            try:
                self._load()
            except (OSError, ValueError) as exc:  # keep the tokens loaded before
                log.error("api tokens not reloaded", error=str(exc))
        if not authorization:
            return None
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return None
        digest = hashlib.sha256(token.encode("utf-8", errors="surrogatepass")).digest()
        found = None
        for known, dept in self._digests:  # every entry compared, in constant time
            if hmac.compare_digest(known, digest):
                found = dept
        return found


# ============================================================================ Kafka: one producer, one outcome watcher


@dataclass
class Tracked:
    department: str
    outcome: dict[str, Any] | None = None
    failed: str | None = None


@dataclass
class Ledger:
    """The gateway's side of Kafka: submits signed records and matches outcomes to the requests."""

    settings: config.Settings
    cache_size: int = OUTCOME_CACHE
    # event id -> the requests waiting for its outcome, oldest first: (subject's entity id, outcome, department)
    _waiting: dict[str, deque[tuple[str, asyncio.Future[dict[str, Any]], str]]] = field(default_factory=dict)
    # (department, event id) -> what that department was told: another department sending the same
    # event id neither hides nor sees it
    _tracked: OrderedDict[tuple[str, str], Tracked] = field(default_factory=OrderedDict)
    _keys: dict[str, str] = field(default_factory=dict)
    _task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        s = self.settings
        self.producer = AIOKafkaProducer(bootstrap_servers=s.bootstrap_servers, enable_idempotence=True, acks="all",
                                         linger_ms=1, max_batch_size=262144, request_timeout_ms=30000)
        self.consumer = AIOKafkaConsumer(bootstrap_servers=s.bootstrap_servers, group_id=None,
                                         enable_auto_commit=False, isolation_level="read_committed",
                                         fetch_max_wait_ms=100, max_partition_fetch_bytes=4 * 1048576)
        await self.producer.start()
        try:
            await self.consumer.start()
            tps = [TopicPartition(registry.OUTCOMES.name, p) for p in range(registry.OUTCOMES.partitions)]
            self.consumer.assign(tps)
            await self.consumer.seek_to_end(*tps)
            for tp in tps:  # resolve the lazy seek now: nothing decided after start() is missed
                await self.consumer.position(tp)
        except BaseException:
            await self.producer.stop()
            raise
        self._task = asyncio.create_task(self._watch())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.consumer.stop()
        await self.producer.stop()

    def private_key(self, department: str) -> str:
        if department not in self._keys:
            self._keys[department] = signing.private_key(self.settings.keys_dir, department)
        return self._keys[department]

    # ------------------------------------------------------------------ outcomes
    async def _watch(self) -> None:
        while True:
            try:
                batch = await self.consumer.getmany(timeout_ms=200, max_records=5000)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a broker away: keep watching, it comes back
                log.warning("outcome watcher: fetch failed", error=type(exc).__name__)
                await asyncio.sleep(1)
                continue
            for msgs in batch.values():
                for m in msgs:
                    try:
                        self._decided(m.key, m.value)
                    except Exception:
                        log.exception("outcome watcher: record skipped", partition=m.partition, offset=m.offset)

    def _decided(self, key: bytes | None, value: bytes) -> None:
        eid = key.decode("utf-8", errors="surrogateescape") if key else ""
        queue = self._waiting.get(eid)
        if not queue:
            return  # not submitted here (or already answered): not even decoded
        _, out = registry.decode(value, "Outcome")
        outcome = openapi.plain(out)
        if queue:
            # the oldest request for this event id about the same entity (an event id reused for
            # another subject is judged in another partition, and its outcome may come first)
            entry = next((w for w in queue if w[0] == outcome["entity_id"]), queue[0])
            tracked = self._tracked.get((entry[2], eid))
            if tracked is not None:
                tracked.outcome, tracked.failed = outcome, None
            queue.remove(entry)
            if not entry[1].done():
                entry[1].set_result(outcome)
            IN_FLIGHT.dec()
            if not queue:
                del self._waiting[eid]

    def healthy(self) -> bool:
        return self._task is not None and not self._task.done()

    # ------------------------------------------------------------------ submitting
    async def submit(self, department: str, entity_id: str, key: bytes, value: bytes,
                     headers: list[tuple[str, bytes]],
                     event_id: str) -> tuple[asyncio.Future[Any], asyncio.Future[dict[str, Any]]]:
        """Hand one signed record to the producer; returns (Kafka's acknowledgement, the outcome)."""
        outcome: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(event_id, deque()).append((entity_id, outcome, department))
        IN_FLIGHT.inc()
        tracked = self._tracked.pop((department, event_id), None)
        self._tracked[(department, event_id)] = Tracked(department, tracked.outcome if tracked else None)
        while len(self._tracked) > self.cache_size:
            self._tracked.popitem(last=False)
        try:
            delivery = await self.producer.send(registry.SUBMISSIONS.name, key=key, value=value, headers=headers,
                                                partition=submissions.partition_of(key))
        except BaseException as exc:
            self._not_delivered(event_id, outcome, exc)
            raise
        delivery.add_done_callback(lambda f: self._delivered(event_id, outcome, f))
        return delivery, outcome

    def _delivered(self, event_id: str, outcome: asyncio.Future[Any], delivery: asyncio.Future[Any]) -> None:
        if delivery.cancelled() or delivery.exception() is not None:
            self._not_delivered(event_id, outcome, delivery.exception() if not delivery.cancelled() else None)
        else:
            SUBMITTED.inc()

    def _not_delivered(self, event_id: str, outcome: asyncio.Future[Any], exc: BaseException | None) -> None:
        queue = self._waiting.get(event_id)
        entry = next((w for w in queue if w[1] is outcome), None) if queue else None
        if queue is not None and entry is not None:
            queue.remove(entry)
            IN_FLIGHT.dec()
            if not queue:
                del self._waiting[event_id]
        if not outcome.done():
            outcome.cancel()
        tracked = self._tracked.get((entry[2], event_id)) if entry is not None else None
        if tracked is not None and tracked.outcome is None and not any(
                w[2] == entry[2] for w in self._waiting.get(event_id, ())):
            tracked.failed = type(exc).__name__ if exc else "cancelled"
        log.warning("submission not acknowledged by Kafka", error=type(exc).__name__ if exc else "cancelled")

    def lookup(self, department: str, event_id: str) -> tuple[Tracked | None, asyncio.Future[Any] | None]:
        """What this gateway knows of an event the department submitted: (tracked, pending outcome)."""
        tracked = self._tracked.get((department, event_id))
        if tracked is None:
            return None, None
        mine = [w for w in self._waiting.get(event_id, ()) if w[2] == department]
        return tracked, (mine[-1][1] if mine else None)


# ============================================================================ requests


class BadParameter(Exception):
    def __init__(self, name: str, why: str) -> None:
        super().__init__(f"{name}: {why}")
        self.name, self.why = name, why


class Unauthorized(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


class Refused(Exception):
    """The gateway refuses an event itself (400 invalid, 403 forbidden); nothing is submitted."""

    def __init__(self, status: int, problems: list[Problem]) -> None:
        super().__init__(problems[0].message if problems else "refused")
        self.status, self.problems = status, problems


MATRIX = web.AppKey("matrix", domain_rules.DepartmentMatrix)
LEDGER = web.AppKey("ledger", Ledger)
TOKENS = web.AppKey("tokens", Tokens)
SETTINGS = web.AppKey("settings", config.Settings)


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


def authorize(matrix: domain_rules.DepartmentMatrix, department: str, obj: Any) -> None:
    """403 before anything else is judged: the envelope names another department, or the matrix
    forbids the event type to the caller (read from the JSON as sent, when it is there at all)."""
    env = obj.get("envelope") if isinstance(obj, dict) else None
    if not isinstance(env, dict):
        return
    named = env.get("source_department")
    if isinstance(named, str) and named != department:
        raise Refused(403, [Problem("envelope.source_department", "department.mismatch",
                                    f"信封中的报送部门“{openapi.echo(named)}”不是令牌所属部门 {department} "
                                    f"(the event names another department than the token's, {department})")])
    event_type = env.get("event_type")
    if isinstance(event_type, str) and event_type in domain_rules.EVENT_TYPES:
        try:
            matrix.authorize(department, event_type)
        except Rejection as r:
            field_ = "envelope.event_type" if r.code == "department.not_authorized" else "envelope.source_department"
            raise Refused(403, [Problem(field_, r.code, r.message)]) from None


_ENTITY_IDS: dict[bytes, str] = {}  # digest of a checked identifier -> its entity id (no clear ID number kept)


def precheck(record: dict[str, Any], pepper: bytes) -> str:
    """The subject's identifier, checked as the sequencer will (it still judges it); returns its
    entity id. Identifiers that pass are remembered by digest, so departments submitting about the
    same entities pay for the check once."""
    subject = record["envelope"]["subject"]
    id_type, raw = subject["id_type"], subject["id"]
    digest = hashlib.sha256(f"{id_type}:{raw}".encode("utf-8", errors="surrogatepass")).digest()
    entity_id = _ENTITY_IDS.get(digest)
    if entity_id is not None:
        return entity_id
    try:
        ident = identity.check_uscc(raw, field="envelope.subject.id") if id_type == "USCC" else \
            identity.check_ric(raw, field="envelope.subject.id")
    except Rejection as r:
        raise Invalid([Problem(r.field, r.code, r.message)]) from None
    entity_id = identity.entity_key(ident, pepper)
    if len(_ENTITY_IDS) >= 100_000:
        _ENTITY_IDS.clear()
    _ENTITY_IDS[digest] = entity_id
    return entity_id


def prepare(matrix: domain_rules.DepartmentMatrix, department: str, obj: Any,
            pepper: bytes) -> tuple[str, dict[str, Any], str]:
    """Everything the gateway judges about one JSON event, pure: (family, Avro-ready record, entity
    id), or Refused (403 forbidden, 400 invalid) naming the fields."""
    authorize(matrix, department, obj)
    try:
        name, record = openapi.decode_event(obj)
        check_event_id(record["envelope"]["event_id"], field="envelope.event_id")
        entity_id = precheck(record, pepper)
    except Invalid as exc:
        raise Refused(400, exc.problems) from None
    except Rejection as r:
        raise Refused(400, [Problem(r.field, r.code, r.message)]) from None
    return name, record, entity_id


def sign(ledger: Ledger, department: str, name: str, record: dict[str, Any]) -> tuple[bytes, bytes, list[Any]]:
    try:
        key, value, headers = submissions.make(record, department, ledger.private_key(department))
    except registry.SchemaError as exc:  # the decoder let through what Avro cannot write: still a 400
        raise Refused(400, [Problem("(record)", "schema.invalid", f"无法按数据格式编码 (cannot be encoded: {exc})")]) \
            from None
    if len(value) > MAX_RECORD_BYTES:
        raise Refused(400, [Problem("(record)", "record.too_large",
                                    f"事件过大：{len(value)} 字节，上限 {MAX_RECORD_BYTES} "
                                    f"(the encoded event has {len(value)} bytes; at most {MAX_RECORD_BYTES})")])
    return key, value, headers


def status_url(event_id: str) -> str:
    # dots too: clients and servers remove "." and ".." path segments before routing
    return "/v1/outcomes/" + quote(event_id, safe="").replace(".", "%2E")


def pending(event_id: str) -> dict[str, Any]:
    return {"event_id": event_id, "status": "PENDING", "status_url": status_url(event_id)}


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=json.dumps(data, ensure_ascii=False).encode("utf-8"), status=status,
                        content_type="application/json", charset="utf-8", headers=headers)


def error(status: int, message: str, **extra: Any) -> web.Response:
    return json_response({"error": message, **extra}, status)


def refusal(exc: Refused) -> web.Response:
    for p in exc.problems:
        REFUSALS.labels(p.code).inc()
    summary = "; ".join(f"{p.field}: {p.message}" for p in exc.problems[:5])
    return json_response({"error": summary, "reasons": [p.as_dict() for p in exc.problems]}, exc.status)


def outcome_response(outcome: dict[str, Any]) -> web.Response:
    OUTCOMES.labels(outcome["status"]).inc()
    return json_response(outcome, 200 if outcome["status"] in ("ACCEPTED", "DUPLICATE") else 422)


async def _acknowledged(delivery: asyncio.Future[Any]) -> None:
    """Wait for Kafka's acknowledgement of a submission; 503 if it fails or takes too long."""
    try:
        await asyncio.wait_for(asyncio.shield(delivery), DELIVERY_TIMEOUT)
    except (KafkaError, TimeoutError, asyncio.CancelledError) as exc:
        if isinstance(exc, asyncio.CancelledError) and not delivery.cancelled():
            raise  # the request itself was cancelled
        raise Unavailable(type(exc).__name__) from None


class Unavailable(Exception):
    pass


# ------------------------------------------------------------------ handlers


async def post_event(request: web.Request) -> web.Response:
    department = authenticate(request)
    timeout = timeout_param(request, openapi.DEFAULT_TIMEOUT)
    started = time.monotonic()
    ledger = request.app[LEDGER]
    try:
        obj = openapi.parse_json(await request.read())
        name, record, entity_id = prepare(request.app[MATRIX], department, obj, request.app[SETTINGS].id_pepper)
        key, value, headers = sign(ledger, department, name, record)
    except Invalid as exc:
        return refusal(Refused(400, exc.problems))
    except Refused as exc:
        return refusal(exc)
    event_id = record["envelope"]["event_id"]
    delivery, outcome = await ledger.submit(department, entity_id, key, value, headers, event_id)
    await _acknowledged(delivery)
    try:
        result = await asyncio.wait_for(asyncio.shield(outcome), max(0.0, timeout - (time.monotonic() - started)))
    except TimeoutError:
        OUTCOMES.labels("PENDING").inc()
        return json_response(pending(event_id), 202, headers={"Location": status_url(event_id)})
    return outcome_response(result)


async def post_batch(request: web.Request) -> web.Response:
    department = authenticate(request)
    timeout = timeout_param(request, openapi.DEFAULT_TIMEOUT)
    started = time.monotonic()
    ledger, matrix = request.app[LEDGER], request.app[MATRIX]
    try:
        items = openapi.parse_json(await request.read())
    except Invalid as exc:
        return refusal(Refused(400, exc.problems))
    if not isinstance(items, list) or not 1 <= len(items) <= openapi.MAX_BATCH:
        what = f"{len(items)} events" if isinstance(items, list) else openapi._json_type(items)
        return refusal(Refused(400, [Problem("(body)", "batch.size", f"批量报送应为包含 1 至 {openapi.MAX_BATCH} 条事件的 "
                                             f"JSON 数组 (a batch is a JSON array of 1 to {openapi.MAX_BATCH} events; "
                                             f"got {what})")]))
    problems: list[dict[str, Any]] = []
    forbidden = False
    prepared: list[tuple[str, dict[str, Any], str]] = []
    seen: dict[str, int] = {}
    pepper = request.app[SETTINGS].id_pepper
    for i, obj in enumerate(items):
        try:
            name, record, entity_id = prepare(matrix, department, obj, pepper)
            event_id = record["envelope"]["event_id"]
            if event_id in seen:
                raise Refused(400, [Problem("envelope.event_id", "batch.repeated_event_id",
                                            f"同一批次中事件编号重复（第 {seen[event_id]} 条）"
                                            f"(the same event id is already at index {seen[event_id]})")])
            seen[event_id] = i
            prepared.append((name, record, entity_id))
        except Refused as exc:
            forbidden = forbidden or exc.status == 403
            for p in exc.problems:
                REFUSALS.labels(p.code).inc()
                if len(problems) < 1000:
                    problems.append({"index": i, **p.as_dict()})
    signed: list[tuple[bytes, bytes, list[Any]]] = []
    if not problems:
        for i, (name, record, _) in enumerate(prepared):
            try:
                signed.append(sign(ledger, department, name, record))
            except Refused as exc:
                problems += [{"index": i, **p.as_dict()} for p in exc.problems]
    if problems:
        invalid = len({p["index"] for p in problems})
        return json_response({"error": f"批次被整体退回，未报送任何事件：{invalid} 条事件有误 (the whole batch was refused "
                                       f"and nothing was submitted: {invalid} of {len(items)} events are "
                                       f"{'forbidden or invalid' if forbidden else 'invalid'})",
                              "reasons": problems}, 403 if forbidden else 400)
    handed = []
    for (_, record, entity_id), (key, value, headers) in zip(prepared, signed, strict=True):
        event_id = record["envelope"]["event_id"]
        handed.append((event_id, *await ledger.submit(department, entity_id, key, value, headers, event_id)))
    for _, delivery, _ in handed:
        await _acknowledged(delivery)
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
    return json_response({"counts": counts, "outcomes": results}, 202 if "PENDING" in counts else 200)


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
    if tracked is not None and tracked.outcome is not None:
        return outcome_response(tracked.outcome)
    return error(503, "该事件未能交给 Kafka，请以同一事件编号重新报送 (the submission was not acknowledged by Kafka; resubmit "
                      "it with the same event id)", code="submission.not_delivered")


async def get_openapi(request: web.Request) -> web.Response:
    return web.Response(body=openapi.document_bytes(), content_type="application/json", charset="utf-8")


async def get_docs(request: web.Request) -> web.Response:
    return web.Response(text=docs_page(), content_type="text/html", charset="utf-8")


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


async def get_metrics(request: web.Request) -> web.Response:
    return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})


ROUTES: tuple[tuple[str, str, Handler], ...] = (
    ("POST", "/v1/events", post_event),
    ("POST", "/v1/events:batch", post_batch),
    ("GET", "/v1/outcomes/{event_id}", get_outcome),
    ("GET", "/openapi.json", get_openapi),
    ("GET", "/docs", get_docs),
    ("GET", "/health", get_health),
    ("GET", "/metrics", get_metrics),
)


# ============================================================================ middleware


def loggable_path(path: str) -> str:
    """The request path with anything that could be an ID number masked (logs never hold one)."""
    return identity.mask_id_numbers(path)


@web.middleware
async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
    """JSON errors, one log line and the metrics per request (never a token, a body or an ID number)."""
    started = time.monotonic()
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else "unmatched"
    try:
        response = await handler(request)
    except Unauthorized as exc:
        REFUSALS.labels(exc.code).inc()
        response = error(401, exc.message, code=exc.code)
        response.headers["WWW-Authenticate"] = 'Bearer realm="credit-ledger"'
    except BadParameter as exc:
        response = error(400, f"bad parameter '{exc.name}': {exc.why}", code="parameter", parameter=exc.name)
    except Unavailable as exc:
        response = error(503, "Kafka 暂不可用：提交未确认，请以同一事件编号重新报送 (Kafka did not acknowledge the "
                              "submission in time; resubmit with the same event id: a resubmission is answered "
                              "DUPLICATE if the first one was recorded)", code="kafka.unavailable", detail=str(exc))
    except web.HTTPRequestEntityTooLarge:
        response = error(413, f"请求体过大 (the body is larger than {MAX_BODY} bytes)", code="body.too_large")
    except web.HTTPNotFound:
        response = error(404, "no such route", code="route.unknown", routes=[f"{m} {p}" for m, p, _ in ROUTES])
    except web.HTTPMethodNotAllowed as exc:
        response = error(405, f"method {request.method} not allowed", code="method",
                         allowed=sorted(exc.allowed_methods))
    except web.HTTPException as exc:
        response = error(exc.status, exc.reason, code="http")
    except KafkaError as exc:
        log.warning("kafka unavailable", route=route, error=type(exc).__name__)
        response = error(503, "Kafka unavailable; resubmit with the same event id", code="kafka.unavailable")
    except Exception:
        log.exception("request failed", method=request.method, path=loggable_path(request.path), route=route)
        response = error(500, "internal error", code="internal")
    seconds = time.monotonic() - started
    REQUEST_SECONDS.labels(route).observe(seconds)
    REQUESTS.labels(route, str(response.status)).inc()
    if route not in ("/metrics", "/health"):
        log.info("request", method=request.method, path=loggable_path(request.path), route=route,
                 department=request.get("department"), status=response.status, ms=round(seconds * 1000, 1))
    return response


# ============================================================================ the docs page


def _type_label(s: dict[str, Any], components: dict[str, Any]) -> str:
    if "$ref" in s:
        name = s["$ref"].rsplit("/", 1)[-1]
        target = components[name]
        if "enum" in target:
            return "enum: " + " | ".join(target["enum"])
        return f'<a href="#{name}">{name}</a>'
    if "allOf" in s:
        return " & ".join(_type_label(x, components) for x in s["allOf"] if "$ref" in x) or "object"
    if "anyOf" in s or "oneOf" in s:
        return " | ".join(_type_label(x, components) for x in s.get("anyOf", s.get("oneOf", [])))
    if "const" in s:
        return f"= {html.escape(json.dumps(s['const'], ensure_ascii=False))}"
    t = s.get("type", "any")
    kinds = t if isinstance(t, list) else [t]
    out = []
    for k in kinds:
        if k == "array":
            out.append("array of " + _type_label(s.get("items", {}), components))
        elif k == "string" and "format" in s:
            out.append({"date": "date (YYYY-MM-DD)", "date-time": "date-time (RFC 3339)"}.get(s["format"], s["format"]))
        elif k == "integer" and "format" in s:
            out.append(f"integer ({s['format']})")
        elif k == "string" and s.get("contentEncoding") == "base64":
            out.append("string (base64)")
        else:
            out.append(str(k))
    return " | ".join(out)


def _rows(schema: dict[str, Any], components: dict[str, Any], prefix: str = "") -> list[str]:
    rows = []
    required = set(schema.get("required", []))
    for name, prop in schema.get("properties", {}).items():
        path = prefix + name
        rows.append(f"<tr><td><code>{html.escape(path)}</code></td><td>{_type_label(prop, components)}</td>"
                    f"<td>{'是 required' if name in required else '否 optional'}</td>"
                    f"<td>{html.escape(str(prop.get('description', '')))}"
                    f"{' (default ' + html.escape(json.dumps(prop['default'], ensure_ascii=False)) + ')' if 'default' in prop and prop['default'] is not None else ''}</td></tr>")
        inner = prop
        if inner.get("type") == "array" and "$ref" in inner.get("items", {}):
            inner, path = inner["items"], path + "[]"
        ref = inner.get("$ref")
        if ref and "properties" in components[ref.rsplit("/", 1)[-1]] and not ref.endswith("EnvelopeV1"):
            rows += _rows(components[ref.rsplit("/", 1)[-1]], components, path + ".")
    return rows


def _table(schema: dict[str, Any], components: dict[str, Any]) -> str:
    return ("<table><thead><tr><th>字段 field</th><th>类型 type</th><th>必填 required</th><th>说明 description</th>"
            "</tr></thead><tbody>" + "".join(_rows(schema, components)) + "</tbody></table>")


_docs_cache: list[str] = []


def docs_page() -> str:
    """The OpenAPI description as one self-contained HTML page (no scripts, no external resources)."""
    if _docs_cache:
        return _docs_cache[0]
    doc = openapi.document()
    comps = doc["components"]["schemas"]
    esc = html.escape
    parts = [
        '<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8">',
        f"<title>{esc(doc['info']['title'])}</title>",
        "<style>body{font-family:sans-serif;margin:2em;max-width:75em}table{border-collapse:collapse;"
        "margin:.5em 0 1.5em}td,th{border:1px solid #bbb;padding:.25em .5em;vertical-align:top;text-align:left}"
        "th{background:#eee}code{font-size:95%}h3{margin-top:2em}</style></head><body>",
        f"<h1>{esc(doc['info']['title'])}</h1><p>{esc(doc['info']['description'])}</p>",
        "<p>机器可读的描述 (machine-readable description): <a href=\"/openapi.json\">/openapi.json</a> "
        f"(OpenAPI {esc(doc['openapi'])})</p>",
        "<h2>接口 Routes</h2><table><thead><tr><th>method</th><th>path</th><th>summary</th><th>responses</th>"
        "</tr></thead><tbody>"]
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            responses = "<br>".join(f"{esc(code)}: {esc(r['description'])}" for code, r in op["responses"].items())
            parts.append(f"<tr><td>{method.upper()}</td><td><code>{esc(path)}</code></td><td>{esc(op['summary'])}"
                         f"<br><small>{esc(op.get('description', ''))}</small></td><td>{responses}</td></tr>")
    parts.append("</tbody></table>")
    parts.append('<h2 id="EnvelopeV1">事件信封 EnvelopeV1 (every event)</h2>'
                 f"<p>{esc(comps['EnvelopeV1'].get('description', ''))}</p>{_table(comps['EnvelopeV1'], comps)}")
    parts.append("<h2>事件类型 Event families</h2><ul>")
    names = [ref["$ref"].rsplit("/", 1)[-1] for ref in comps["Submission"]["oneOf"]]
    parts += [f'<li><a href="#{n}">{n}</a></li>' for n in names]
    parts.append("</ul>")
    for n in names:
        parts.append(f'<h3 id="{n}">{n}</h3><p>{esc(comps[n].get("description", ""))}</p>'
                     f"<p><code>envelope.event_type</code> = <code>{n}</code></p>{_table(comps[n], comps)}")
    parts.append(f'<h2 id="Outcome">结果 Outcome</h2><p>{esc(comps["Outcome"].get("description", ""))}</p>'
                 f"{_table(comps['Outcome'], comps)}")
    for n in ("Pending", "BatchResult", "Refusal", "BatchRefusal", "Problem", "BatchProblem"):
        parts.append(f'<h3 id="{n}">{n}</h3><p>{esc(comps[n].get("description", ""))}</p>{_table(comps[n], comps)}')
    parts.append("</body></html>")
    _docs_cache.append("".join(parts))
    return _docs_cache[0]


# ============================================================================ the app and the process


def make_app(settings: config.Settings, ledger: Ledger | None = None) -> web.Application:
    app = web.Application(middlewares=[observe], client_max_size=MAX_BODY)
    app[SETTINGS] = settings
    app[MATRIX] = domain_rules.load_departments()
    app[TOKENS] = Tokens(settings.keys_dir)
    for method, path, handler in ROUTES:
        # any character, as the handler judges the id: aiohttp's default {name} stops at "/", "{" and
        # "}", and "." at a line break (an id the gateway refuses; asked for, it is unknown like any other)
        app.router.add_route(method, path.replace("{event_id}", "{event_id:[\\s\\S]+}"), handler)

    async def kafka(app: web.Application):  # type: ignore[no-untyped-def]
        own = ledger or Ledger(settings)
        await own.start()
        app[LEDGER] = own
        missing = []
        for d in app[TOKENS].departments():
            try:
                own.private_key(d)
            except FileNotFoundError:
                missing.append(d)
        if missing:
            log.warning("departments with a token but no signing key (their submissions will fail)",
                        departments=missing)
        yield
        await own.stop()

    app.cleanup_ctx.append(kafka)
    return app


class Gateway:
    """The process: serves the app on 127.0.0.1:`port` until stop()."""

    def __init__(self, settings: config.Settings, port: int) -> None:
        self.settings, self.port = settings, port
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        # access_log=None: aiohttp's access log would write query strings and unmasked paths
        runner = web.AppRunner(make_app(self.settings), access_log=None, handle_signals=False)
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", self.port, backlog=1024)
            await site.start()
            log.info("gateway running", url=f"http://127.0.0.1:{self.port}", docs=f"http://127.0.0.1:{self.port}/docs",
                     routes=[f"{m} {p}" for m, p, _ in ROUTES])
            await self._stop.wait()
            log.info("gateway stopping")
        finally:
            await runner.cleanup()


def main() -> None:
    settings = config.load()
    p = process.parser("python -m ledger.intake.gateway", __doc__, settings.metrics_port("gateway"))
    p.add_argument("--port", type=int, default=settings.gateway_port,
                   help=f"HTTP port on 127.0.0.1 (default {settings.gateway_port}, LEDGER_GATEWAY_PORT)")
    process.run(p.parse_args(), lambda a: Gateway(settings, a.port))


if __name__ == "__main__":
    main()
