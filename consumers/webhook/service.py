"""The webhook deliverer: credit.alerts -> each department's HTTP endpoint, signed, with retries.

Endpoints are configured per department in a JSON file outside the repository (default
`$LEDGER_KEYS_DIR/webhooks.json`, read at start):

    {"sector-transport": {"url": "https://transport.example/alerts", "secret": "<shared secret>"}}

Each alert of a configured department is POSTed as JSON (the Alert record; dates ISO 8601) with:

    X-Credit-Alert-Id:  the alert id (deterministic; the same alert always has the same id)
    X-Credit-Timestamp: Unix seconds when signed
    X-Credit-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>." + body bytes)>

A receiver verifies: recompute the HMAC over the timestamp, a dot and the raw body, compare in
constant time (hmac.compare_digest), refuse a timestamp more than 5 minutes old, and treat an alert
id it has already processed as done (answer 2xx again): delivery is at least once, so a retry after
a lost answer or a restart of the deliverer can bring the same alert twice. `verify()` below is the
reference implementation.

Any 2xx answer is a delivery. Anything else (status, timeout, refused connection) is retried with
exponential back-off (--attempts, --backoff); after the last attempt an AlertDeadLetter with the
reason goes to credit.alerts.deadletter. Within a department alerts are delivered in order; the
departments of a batch are served concurrently. The dead letters and the consumed offsets commit in
one Kafka transaction (ledger/platform/transactional.py), so a dead letter is written exactly once.

Run: python -m ops.run webhook [--config FILE] [--attempts 5] [--backoff 0.5] [--metrics-port 9109]
(wired in ops/root.py)
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client import Counter

from ledger.platform.clock import SYSTEM
from ledger.platform.kafka_util import KafkaClients
from ledger.platform.transactional import Out, TransactionalProcessor
from schemas import registry

DELIVERIES = Counter("ledger_webhook_deliveries_total", "Webhook results per department", ["department", "result"])
MAX_AGE_SECONDS = 300


class WebhookConfigError(Exception):
    """The webhook configuration file is unreadable or wrong: which entry and why."""


@dataclass(frozen=True)
class Endpoint:
    url: str
    secret: bytes


def load_endpoints(path: Path) -> dict[str, Endpoint]:
    if not path.exists():
        return {}
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise WebhookConfigError(f"{path}: not readable JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise WebhookConfigError(f"{path}: expected an object of department -> {{url, secret}}")
    out = {}
    for dept, e in doc.items():
        if not isinstance(e, dict) or not str(e.get("url", "")).startswith(("http://", "https://")):
            raise WebhookConfigError(f"{path}: {dept}.url must be an http(s) URL")
        if not isinstance(e.get("secret"), str) or len(e["secret"]) < 16:
            raise WebhookConfigError(f"{path}: {dept}.secret must be a string of at least 16 characters")
        out[dept] = Endpoint(e["url"], e["secret"].encode())
    return out


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def verify(secret: bytes, headers: dict[str, str], body: bytes, now: float | None = None) -> bool:
    """The receiver's check: signature over timestamp and body, and a fresh timestamp."""
    try:
        ts = int(headers["X-Credit-Timestamp"])
    except (KeyError, ValueError):
        return False
    if abs((SYSTEM.timestamp() if now is None else now) - ts) > MAX_AGE_SECONDS:
        return False
    return hmac.compare_digest(sign(secret, ts, body), headers.get("X-Credit-Signature", ""))


def body_of(alert: dict[str, Any]) -> bytes:
    def default(v: Any) -> Any:
        if isinstance(v, (date, datetime)):
            return v.isoformat()
        raise TypeError(type(v).__name__)

    return json.dumps(alert, ensure_ascii=False, sort_keys=True, default=default).encode()


class WebhookDeliverer(TransactionalProcessor):
    name = "webhook"
    source = registry.ALERTS
    group = "credit-webhook"

    def __init__(self, kafka: KafkaClients, endpoints: dict[str, Endpoint], instance: str = "0",
                 attempts: int = 5, backoff: float = 0.5, timeout: float = 5.0, group: str | None = None) -> None:
        super().__init__(kafka, instance, max_records=200)
        self.endpoints = endpoints
        self.attempts = attempts
        self.backoff = backoff
        self.timeout = timeout
        if group:
            self.group = group
        self._failed: dict[tuple[int, int], dict[str, Any]] = {}  # (partition, offset) -> dead letter
        # one session for the process: its connections to each endpoint are kept open between
        # batches (a new session per batch opened a new TCP connection for every batch)
        self._session: aiohttp.ClientSession | None = None

    async def prepare(self, batch: Any) -> None:
        self._failed.clear()
        per_dept: dict[str, list[tuple[int, Any]]] = defaultdict(list)
        for tp, msgs in batch.items():
            for m in msgs:
                dept = m.key.decode() if m.key else ""
                if dept in self.endpoints:
                    per_dept[dept].append((tp.partition, m))
        if not per_dept:
            return
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        session = self._session
        await asyncio.gather(*(self._deliver_all(session, dept, items) for dept, items in per_dept.items()))

    async def finish(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def _deliver_all(self, session: aiohttp.ClientSession, dept: str, items: list[tuple[int, Any]]) -> None:
        for partition, m in items:  # in order within a department
            await self._deliver(session, dept, partition, m)

    async def _deliver(self, session: aiohttp.ClientSession, dept: str, partition: int, m: Any) -> None:
        endpoint = self.endpoints[dept]
        _, alert = registry.decode(m.value, "Alert")
        body = body_of(alert)
        first = SYSTEM.now()
        error = ""
        for attempt in range(1, self.attempts + 1):
            ts = int(SYSTEM.timestamp())
            headers = {"Content-Type": "application/json", "X-Credit-Alert-Id": alert["alert_id"],
                       "X-Credit-Timestamp": str(ts), "X-Credit-Signature": sign(endpoint.secret, ts, body)}
            try:
                async with session.post(endpoint.url, data=body, headers=headers) as r:
                    if 200 <= r.status < 300:
                        DELIVERIES.labels(dept, "delivered").inc()
                        self.log.info("alert delivered", alert_id=alert["alert_id"], department=dept,
                                      attempt=attempt, event_id=alert["trigger_event_id"])
                        return
                    error = f"HTTP {r.status}: {(await r.text())[:200]}"
            except (TimeoutError, aiohttp.ClientError) as exc:
                error = f"{type(exc).__name__}: {str(exc)[:200]}"
            DELIVERIES.labels(dept, "retried" if attempt < self.attempts else "dead_letter").inc()
            self.log.warning("alert delivery failed", alert_id=alert["alert_id"], department=dept,
                             attempt=attempt, error=error)
            if attempt < self.attempts:
                await asyncio.sleep(min(self.backoff * 2 ** (attempt - 1), 30.0))
        self._failed[(partition, m.offset)] = {
            "alert_id": alert["alert_id"], "department": dept, "endpoint": endpoint.url, "attempts": self.attempts,
            "last_error": error, "first_attempt_at": first, "failed_at": SYSTEM.now(),
            "alerts_partition": partition, "alerts_offset": m.offset, "alert": m.value,
        }

    def transform(self, partition: int, msg: Any) -> list[Out]:
        dead = self._failed.get((partition, msg.offset))
        if dead is None:
            return []
        self.log.error("alert dead-lettered", alert_id=dead["alert_id"], department=dead["department"],
                       error=dead["last_error"])
        return [Out(registry.ALERTS_DEADLETTER, dead["department"].encode(),
                    registry.encode("AlertDeadLetter", dead))]
