"""Faults of the read side, with real processes: after each, the live views equal a fresh rebuild
from offset 0 (deterministic digests, compared at the same ledger position), so no row is missing
or doubled; a poison record is quarantined with its provenance, its entity held back, the others
flowing, and the metric counts it."""

from __future__ import annotations

import asyncio
import os
import random
import signal
from datetime import date

from aiokafka import AIOKafkaProducer

from consumers.projector.rebuild import rebuild
from ledger.client import submit_as_departments
from ledger.platform.kafka_access import ADMIN, access
from ops import stack as ops_stack
from ops import workload
from schemas import registry
from tests import helpers


def _penalties(rng: random.Random, n: int, entities: int) -> list[tuple[str, dict]]:
    subjects = workload.subjects(rng, entities)
    depts = list(workload.PENALTY_DEPARTMENTS)
    return [(depts[i % 3], workload.penalty(rng, subjects[i % entities], depts[i % 3], seq=i)) for i in range(n)]


async def _flood(settings, pairs) -> list[dict]:  # type: ignore[no-untyped-def]
    return await submit_as_departments(settings, pairs, timeout=180)


async def _backlog_then(settings, pairs, action) -> None:  # type: ignore[no-untyped-def]
    """Submit `pairs` and run `action` once the projector is busy with them."""
    before = sum(helpers.view_positions(settings).values())
    sending = asyncio.create_task(_flood(settings, pairs))
    await helpers.wait_until(lambda: sum(helpers.view_positions(settings).values()) >= before + 300,
                             timeout=120, interval=0.02, what="the projector to be busy")
    end = await helpers.end_offsets(settings)
    assert sum(end.values()) > sum(helpers.view_positions(settings).values()), "there must be a backlog"
    await action()
    outcomes = await sending
    assert {o["status"] for o in outcomes} == {"ACCEPTED"}


async def _equals_fresh_rebuild(settings) -> None:  # type: ignore[no-untyped-def]
    await helpers.projected(settings)
    assert await rebuild(settings) == 0, "the live views differ from a fresh rebuild"


async def test_sigkill_of_the_projector_mid_batch(settings, services) -> None:
    projector = services["projector"]

    async def kill_and_restart() -> None:
        projector.kill()
        await asyncio.sleep(0.5)
        await asyncio.to_thread(projector.start)

    await _backlog_then(settings, _penalties(helpers.rng("proj-kill"), 6000, 1500), kill_and_restart)
    await _equals_fresh_rebuild(settings)


async def test_postgresql_stopped_immediately_mid_batch_and_restarted(settings, services) -> None:
    pg = ops_stack.Postgres(settings)

    async def crash_database() -> None:
        await asyncio.to_thread(pg.stop, "immediate")
        await asyncio.sleep(2)
        await asyncio.to_thread(pg.start)

    retries = helpers.metric(settings, "projector", "ledger_projection_db_retries_total")
    await _backlog_then(settings, _penalties(helpers.rng("pg-crash"), 6000, 1500), crash_database)
    assert services["projector"].pid() is not None, "the projector survives a database restart"
    assert helpers.metric(settings, "projector", "ledger_projection_db_retries_total") > retries
    await _equals_fresh_rebuild(settings)


async def test_the_whole_topic_delivered_again_changes_nothing(settings, services) -> None:
    await _flood(settings, _penalties(helpers.rng("redeliver"), 500, 200))
    positions = await helpers.projected(settings)
    ledger = len(await helpers.read_topic(settings, registry.EVENTS))
    skipped = helpers.metric(settings, "projector", "ledger_projection_skipped_total")
    quarantined = sum(r[0] for r in helpers.pg_rows(settings, "select count(*) from views.quarantine"))
    os.kill(services["projector"].pid(), signal.SIGUSR1)
    await helpers.wait_until(
        lambda: helpers.metric(settings, "projector", "ledger_projection_skipped_total") >= skipped + ledger - quarantined,
        timeout=180, what="every ledger record delivered a second time")
    assert helpers.view_positions(settings) == positions
    await _equals_fresh_rebuild(settings)


async def test_a_poison_record_is_quarantined_and_holds_back_only_its_entity(settings, services) -> None:
    rng = helpers.rng("poison")
    victim, bystander = workload.subjects(rng, 2, persons_share=0.0)
    first = await _flood(settings, [workload.registered(victim, date(2020, 1, 1)),
                                    workload.registered(bystander, date(2020, 1, 1))])
    await helpers.projected(settings)
    victim_id, partition = first[0]["entity_id"], first[0]["ledger_partition"]
    before = helpers.metric(settings, "projector", "ledger_projection_quarantined_total", 'reason="undecodable"')

    # corruption in the ledger itself: a record of the victim's that no schema can read
    producer = AIOKafkaProducer(**access(settings, ADMIN).options(), enable_idempotence=True)
    await producer.start()
    try:
        md = await producer.send_and_wait(registry.EVENTS.name, key=victim_id.encode(),
                                          value=b"\x00\x00\x00\x00\x01\xff\xff\xff garbage", partition=partition)
    finally:
        await producer.stop()
    later = await _flood(settings, [workload.tax_rated(victim, 2025, "B", date(2026, 4, 1)),
                                    workload.tax_rated(bystander, 2025, "A", date(2026, 4, 1))])
    await helpers.projected(settings)

    rows = helpers.pg_rows(settings, "select kafka_partition, kafka_offset, entity_key, reason from views.quarantine "
                           "where entity_key = %s order by kafka_offset", (victim_id,))
    assert rows[0] == (partition, md.offset, victim_id, "undecodable")
    assert (later[0]["ledger_partition"], later[0]["ledger_offset"], victim_id, "held_back") in rows
    assert helpers.pg_rows(settings, "select version from views.entities where entity_id = %s", (victim_id,)) == [(1,)]
    assert helpers.pg_rows(settings, "select version from views.entities where entity_id = %s",
                           (later[1]["entity_id"],)) == [(2,)]
    assert helpers.metric(settings, "projector", "ledger_projection_quarantined_total",
                          'reason="undecodable"') == before + 1
    await _equals_fresh_rebuild(settings)
