"""Given the ledger's clock at 00:30 China Standard Time (16:30 UTC the day before), when a
department submits a decision dated today in Beijing, then the real sequencer accepts it (and still
refuses one dated tomorrow); and when the expiry scheduler passes at 00:30 CST on the day a listing
ends, the listing expires that day, not eight hours later. Both run in-process against the test
stack's Kafka and PostgreSQL with an injected clock (ops/root.py wires the same services with the
machine's clock). And the whole stack sees one clock: the broker's append times and PostgreSQL's
now() agree with the Python clock (under libfaketime, all of them are faked alike)."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from ledger.client import submit_as_departments
from ledger.domain.local_time import CHINA
from ledger.platform import config
from ledger.platform.clock import Clock
from ledger.platform.kafka_access import ADMIN, access
from ops import root, workload
from tests import helpers

HALF_PAST_MIDNIGHT = time(0, 30)


def at_cst(day: Any, at: time) -> Clock:
    return Clock.fixed(datetime.combine(day, at, CHINA))


async def test_a_decision_dated_today_in_beijing_is_accepted_at_half_past_midnight(
        settings: config.Settings, services) -> None:
    today = helpers.today()
    clock = at_cst(today, HALF_PAST_MIDNIGHT)
    assert clock.now().date() == today - timedelta(days=1)  # the UTC date is still yesterday's
    rng = helpers.rng("cst-sequencer")
    firm, other = workload.subjects(rng, 2, persons_share=0.0)
    dated_today = workload.penalty(rng, firm, "xc-samr", rng.randrange(10**6), decided=today)
    dated_tomorrow = workload.penalty(rng, other, "xc-samr", rng.randrange(10**6), decided=today + timedelta(days=1))
    process = services["sequencer"]
    process.stop()  # the same sequencer instance ("0") runs in-process, with the clock at 00:30 CST
    svc = root.sequencer_service(settings, instance="0", clock=clock)
    running = asyncio.create_task(svc.run())
    try:
        async with helpers.client(settings) as c:
            await c.submit_many([dated_today, dated_tomorrow])
            accepted = await c.outcome(dated_today["envelope"]["event_id"], timeout=90)
            refused = await c.outcome(dated_tomorrow["envelope"]["event_id"], timeout=90)
    finally:
        svc.stop()
        await asyncio.wait_for(running, 60)
        process.start()
    assert (accepted["status"], accepted["reasons"]) == ("ACCEPTED", [])
    assert refused["status"] == "REJECTED" and [r["code"] for r in refused["reasons"]] == ["time.future"]
    entries = await helpers.ledger_entries(settings, {accepted["entity_id"]})
    assert [e["sequenced_at"] for e in entries[accepted["entity_id"]]] == [clock.now()]


async def test_the_scheduler_expires_on_the_china_date(settings: config.Settings, services) -> None:
    rng = helpers.rng("cst-scheduler")
    firm = workload.subjects(rng, 1, persons_share=0.0)[0]
    listing = workload.wage_listed(firm, f"许人社欠薪〔2021〕CST{rng.randrange(10**6)}号",
                                   date(2021, 3, 1))
    outcomes = await submit_as_departments(settings, [listing])
    assert [o["reasons"] for o in outcomes] == [[]]
    await helpers.projected(settings)
    target = listing[1]["envelope"]["event_id"]
    [(legal_end,)] = helpers.pg_rows(settings, "select legal_end from views.list_entries where event_id = %s",
                                     (target,))

    def state() -> tuple[str, Any]:
        [(status, ended_on)] = helpers.pg_rows(
            settings, "select status, ended_on from views.list_entries where event_id = %s", (target,))
        return status, ended_on

    async def pass_at(clock: Clock) -> None:
        sched = root.scheduler_service(settings, clock.today, once=True)
        await sched.run_pass()
        await helpers.projected(settings)

    # 23:59 in Beijing on the day before the legal end (15:59 UTC): not yet due
    await pass_at(at_cst(legal_end - timedelta(days=1), time(23, 59)))
    assert state() == ("active", None)
    # 00:30 in Beijing on the legal end, 16:30 UTC the day before: due, and expired on the legal end
    half_past = at_cst(legal_end, HALF_PAST_MIDNIGHT)
    assert half_past.now().date() == legal_end - timedelta(days=1)
    await pass_at(half_past)
    assert state() == ("expired", legal_end)


async def test_the_broker_and_postgresql_keep_the_same_clock_as_python(settings: config.Settings, stack) -> None:
    """Under libfaketime (LEDGER_FAKE_TIME) the broker and PostgreSQL run on the faked clock too:
    the broker's append time of a record and PostgreSQL's now() are the Python clock's, give or take
    the time the round trip takes."""
    topic = f"clock-probe-{helpers.rng('clock-probe').randrange(10**9)}"
    admin = AIOKafkaAdminClient(**access(settings, ADMIN).options())
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 1, 1, topic_configs={"message.timestamp.type": "LogAppendTime"})])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(**access(settings, ADMIN).options())
    await producer.start()
    try:
        before = helpers.CLOCK.now()
        md = await producer.send_and_wait(topic, b"what time is it")
        after = helpers.CLOCK.now()
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(topic, **access(settings, ADMIN).options(), auto_offset_reset="earliest",
                                group_id=None)
    await consumer.start()
    try:
        record = await asyncio.wait_for(consumer.getone(), 30)
    finally:
        await consumer.stop()
    appended = datetime.fromtimestamp(record.timestamp / 1000, UTC)
    margin = timedelta(seconds=30)
    assert before - margin <= appended <= after + margin, (md, appended, before)
    [(pg_now,)] = helpers.pg_rows(settings, "select now()")
    assert abs(pg_now - helpers.CLOCK.now()) < margin, (pg_now, helpers.CLOCK.now())
