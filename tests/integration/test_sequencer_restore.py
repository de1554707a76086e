"""Given a sequencer whose state restore takes longer than the group's session timeout, when it joins
the group, then it keeps its membership (the restore runs outside the rebalance callback, with the
heartbeat alive), restores once, and then judges the submissions that waited meanwhile.

Before this was fixed the restore ran inside on_partitions_assigned, where aiokafka sends no
heartbeats: the broker expired the member, the group rebalanced, the partitions came back and the
restore started again, for ever (seen with half a million changelog records)."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from bench import faults
from ledger.platform import config
from ops import root, workload
from tests import helpers

SESSION_TIMEOUT_S = 10  # aiokafka's default session.timeout.ms
SLOW_RESTORE_S = SESSION_TIMEOUT_S + 6


async def test_a_restore_longer_than_the_session_timeout_does_not_loop(settings: config.Settings, services) -> None:
    process = services["sequencer"]
    process.stop()  # this test runs the same sequencer instance (static member "0") in-process
    svc = root.sequencer_service(settings, instance="0")
    restores = faults.slow_restores(svc, SLOW_RESTORE_S)
    running = asyncio.create_task(svc.run())
    try:
        rng = helpers.rng("restore")
        subjects = workload.subjects(rng, 8)
        records = [workload.penalty(rng, subjects[i % len(subjects)], "xc-samr", i) for i in range(40)]
        async with helpers.client(settings) as c:
            await c.submit_many(records)  # they wait in credit.submissions while the state is restored
            outcomes: list[dict[str, Any]] = [await c.outcome(r["envelope"]["event_id"], timeout=90)
                                              for r in records]
        assert Counter(o["status"] for o in outcomes) == {"ACCEPTED": len(records)}
        # well past two session timeouts after the restore: a lost membership would have shown by now
        await asyncio.sleep(SESSION_TIMEOUT_S + 5)
        assert restores == [[0, 1, 2, 3]], f"the state was restored {len(restores)} times: {restores}"
        assert not running.done()
    finally:
        svc.stop()
        await asyncio.wait_for(running, 60)
        process.start()


async def test_a_restart_reads_only_the_changelog_after_its_store_checkpoint(
        settings: config.Settings, services) -> None:
    process = services["sequencer"]
    process.start()
    rng = helpers.rng("checkpoint")
    subjects = workload.subjects(rng, 30)
    first = [workload.penalty(rng, subjects[i % len(subjects)], "xc-samr", i) for i in range(200)]
    later = [workload.penalty(rng, subjects[i % len(subjects)], "xc-samr", 1000 + i) for i in range(50)]
    async with helpers.client(settings) as c:
        accepted = await c.submit_many_and_wait(first, timeout=120)
    assert {o["status"] for o in accepted} == {"ACCEPTED"}

    process.stop()
    stores = settings.sequencer_store_dir("0")
    assert sorted(p.name for p in stores.glob("*.rocksdb")) == [
        f"credit.sequencer.state-{p}.rocksdb" for p in range(4)]

    async with helpers.client(settings) as c:
        await c.submit_many(later)  # submitted while the sequencer is down
        process.start()
        after = [await c.outcome(r["envelope"]["event_id"], timeout=90) for r in later]
        assert {o["status"] for o in after} == {"ACCEPTED"}
        await helpers.wait_until(lambda: helpers.metric(settings, "sequencer",
                                                        "ledger_sequencer_restored_records_total",
                                                        'source="store"') > 0, what="the restore metric")
        in_store = helpers.metric(settings, "sequencer", "ledger_sequencer_restored_records_total", 'source="store"')
        from_changelog = helpers.metric(settings, "sequencer", "ledger_sequencer_restored_records_total",
                                        'source="changelog"')
        # every committed batch was checkpointed in the store: nothing was written to the changelog while
        # the sequencer was down, so the restart read none of it
        assert in_store >= len(first) // 2  # (RocksDB's estimate of its keys: ids, entities)
        assert from_changelog == 0
        # the restored state knows the events of the store: same ids are duplicates, and the
        # entities' versions went on without a gap
        dup = await c.submit_many_and_wait(first[:20], timeout=60)
        assert {o["status"] for o in dup} == {"DUPLICATE"}
    entries = await helpers.ledger_entries(settings, {o["entity_id"] for o in accepted + after})
    for entity, es in entries.items():
        assert [e["entity_version"] for e in es] == list(range(1, len(es) + 1)), entity
    assert sum(len(es) for es in entries.values()) == len(first) + len(later)
