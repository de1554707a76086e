"""Given two departments with webhook endpoints (a real local aiohttp server), when a court listing
raises their alerts, then the endpoint that fails twice receives each of its alerts after the
retries, signed (HMAC-SHA256 over timestamp and body, verified by the receiver); and the endpoint
that always fails gets nothing but leaves one dead-letter record per alert, with the reason, on
credit.alerts.deadletter."""

from __future__ import annotations

import asyncio
import json
import socket
from collections import Counter
from datetime import date

from aiohttp import web
from aiokafka import AIOKafkaConsumer, TopicPartition

from consumers.webhook.service import Endpoint, WebhookDeliverer, verify
from ledger.client import submit_as_departments
from ledger.platform.kafka_access import ADMIN, WEBHOOK, access
from ledger.platform.kafka_util import KafkaClients
from ops import workload
from schemas import registry
from tests import feeds, helpers

FLAKY, DOWN = "sector-transport", "sector-exit-entry"
SECRETS = {FLAKY: b"transport-secret-0123456789", DOWN: b"exit-entry-secret-0123456789"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _start_group_at_end(settings, group: str) -> None:  # type: ignore[no-untyped-def]
    """Commit the group's offsets at the end of credit.alerts: the deliverer starts with new alerts."""
    c = AIOKafkaConsumer(**access(settings, ADMIN).options(), group_id=group, enable_auto_commit=False)
    await c.start()
    try:
        tps = [TopicPartition(registry.ALERTS.name, p) for p in range(registry.ALERTS.partitions)]
        c.assign(tps)
        await c.commit(await c.end_offsets(tps))
    finally:
        await c.stop()


async def test_webhook_retries_signs_and_dead_letters(settings, services) -> None:
    attempts: Counter[str] = Counter()
    received: list[dict] = []  # type: ignore[type-arg]
    bad_signatures = 0

    async def handle(request: web.Request) -> web.Response:
        nonlocal bad_signatures
        dept = request.match_info["dept"]
        body = await request.read()
        if not verify(SECRETS[dept], dict(request.headers), body):
            bad_signatures += 1
            return web.Response(status=401)
        alert_id = request.headers["X-Credit-Alert-Id"]
        attempts[alert_id] += 1
        if dept == DOWN or attempts[alert_id] <= 2:
            return web.Response(status=503, text="busy")
        received.append(json.loads(body))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hooks/{dept}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = _free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    group = f"credit-webhook-test-{helpers.rng('wh').randrange(10**9)}"
    await _start_group_at_end(settings, group)
    endpoints = {d: Endpoint(f"http://127.0.0.1:{port}/hooks/{d}", s) for d, s in SECRETS.items()}
    deliverer = WebhookDeliverer(KafkaClients(access(settings, WEBHOOK)), endpoints, instance="test", attempts=3, backoff=0.05, group=group)
    running = asyncio.create_task(deliverer.run())
    try:
        rng = helpers.rng("webhook")
        company = workload.subjects(rng, 1, persons_share=0.0)[0]
        listing = workload.debtor_listed(company, f"（2026）豫10执W{rng.randrange(10**6)}号", date(2026, 11, 2))
        [o] = await submit_as_departments(settings, [listing])
        assert o["status"] == "ACCEPTED"
        event_id = listing[1]["envelope"]["event_id"]
        # the alerts of the two departments (restrict-high-consumption -> transport, restrict-exit -> exit-entry)
        alerts = [a for a in await feeds.wait_for_alerts(settings, {event_id}, 1) if a["department"] in SECRETS]
        await asyncio.sleep(1)
        alerts = [a for a in await feeds.alerts(settings, {event_id}) if a["department"] in SECRETS]
        flaky = {a["alert_id"] for a in alerts if a["department"] == FLAKY}
        down = {a["alert_id"] for a in alerts if a["department"] == DOWN}
        assert flaky and down

        async def dead_letters() -> list[dict]:  # type: ignore[type-arg]
            found = [d for d in await feeds.records(settings, registry.ALERTS_DEADLETTER, "AlertDeadLetter")
                     if d["alert_id"] in down]
            return found if len(found) >= len(down) and {r["alert_id"] for r in received} >= flaky else []

        dead = await helpers.wait_until(dead_letters, timeout=60, interval=0.5, what="deliveries and dead letters")
    finally:
        deliverer.stop()
        await running
        await runner.cleanup()
    assert bad_signatures == 0
    assert {r["alert_id"] for r in received} == flaky and all(attempts[a] == 3 for a in flaky)
    assert all(r["trigger_event_id"] == event_id and r["department"] == FLAKY for r in received)
    assert sorted(d["alert_id"] for d in dead) == sorted(down), "one dead letter per undeliverable alert"
    for d in dead:
        assert d["attempts"] == 3 and d["last_error"].startswith("HTTP 503") and d["_key"] == DOWN
        assert d["endpoint"] == endpoints[DOWN].url
        assert registry.decode(d["alert"], "Alert")[1]["alert_id"] == d["alert_id"]
    assert all(attempts[a] == 3 for a in down)
