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

from ledger import config
from ledger.sequencer import SequencerService
from ops import workload
from tests import helpers

SESSION_TIMEOUT_S = 10  # aiokafka's default session.timeout.ms
SLOW_RESTORE_S = SESSION_TIMEOUT_S + 6


async def test_a_restore_longer_than_the_session_timeout_does_not_loop(settings: config.Settings, services) -> None:
    process = services["sequencer"]
    process.stop()  # this test runs the same sequencer instance (static member "0") in-process
    restores: list[list[int]] = []
    svc = SequencerService(settings, instance="0")
    real_restore = svc.restore

    async def slow_restore(partitions: list[int]) -> None:
        restores.append(sorted(partitions))
        await asyncio.sleep(SLOW_RESTORE_S)
        await real_restore(partitions)

    svc.restore = slow_restore  # type: ignore[method-assign]
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
