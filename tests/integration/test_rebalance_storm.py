"""Partitions moving under load (issue 18, items 4 and 6). Given a stream of submissions, when the
members of each consumer group (the sequencers, the list keepers, the webhook deliverers) come and go
(two, then three instances of each, then stopped and started again at random: bench/storm.py, which
runs the same storm for minutes), and when a partition is revoked while its new owner is still
restoring its state, then nothing is written twice, no partition is left unowned, and the oracle holds:
every acknowledged submission once in the ledger with contiguous versions, every list change and alert
once, every alert delivered at least once with the same idempotency key, the views equal a rebuild."""

from __future__ import annotations

import asyncio

from prometheus_client import REGISTRY

from bench import faults
from bench.storm import KINDS, Storm
from ledger.platform.kafka_access import ADMIN, access
from ledger.platform.kafka_util import KafkaClients
from ops import root
from schemas import registry
from tests import helpers
from tests.integration.test_projector_faults import _equals_fresh_rebuild
from tests.integration.test_sequencer_kill import penalties

STORM_SECONDS = 30  # in the suite; `python -m bench.storm` runs it for minutes
SLOW_RESTORE_S = 8


def _interrupted() -> float:
    return REGISTRY.get_sample_value("ledger_stream_restores_interrupted_total", {"processor": "sequencer"}) or 0.0


async def test_a_partition_revoked_during_its_restore_is_restored_again_and_nothing_is_written_twice(
        settings, services) -> None:
    services["sequencer"].start()
    # a second sequencer (in this process, so that its restore can be slowed down) joins the group under
    # load; while it restores the partitions it got, a third joins and the group rebalances again
    second = root.sequencer_service(settings, instance="restore-slow")
    restores = faults.slow_restores(second, SLOW_RESTORE_S)
    third = faults.instance(settings, "sequencer", 2)
    pairs = [("xc-samr", r) for r in penalties("revoked-restore", 1200, subjects=240)]
    interrupted = _interrupted()
    sending = asyncio.create_task(faults.stream(settings, pairs, 100, 0.3))
    running = asyncio.create_task(second.run())
    try:
        await faults.until(lambda: restores, 60, "the second sequencer to start restoring")
        await asyncio.to_thread(third.start)
        await faults.until(lambda: _interrupted() > interrupted, 60, "a partition revoked during its restore")
        outcomes = await sending
    finally:
        second.stop()
        await asyncio.wait_for(running, 60)
        third.stop()
    assert len(restores) >= 2, f"the second sequencer restored {restores}: the revoked partitions were restored again"
    ids = {r["envelope"]["event_id"] for _, r in pairs}
    assert {o["event_id"] for o in outcomes} == ids
    await faults.ledger_holds(settings, ids)
    await _equals_fresh_rebuild(settings)


async def test_a_rebalance_storm_writes_nothing_twice_and_leaves_no_partition_unowned(settings, services) -> None:
    for name in ("sequencer", "list-keeper"):
        services[name].start()
    lines: list[str] = []

    def say(line: str) -> None:
        lines.append(line)
        print(line, flush=True)

    report = await Storm(settings, STORM_SECONDS, step=5, rate=8, seed=helpers.RUN_SEED, kills=False, say=say).run()
    for line in report.lines():
        say(line)
    assert report.ok, "\n".join(lines)
    assert all(report.most_members[k] == 3 for k in KINDS), report.most_members  # one, two, then three members
    assert all(report.actions[k].get("stop", 0) >= 1 for k in KINDS), report.actions
    assert report.acknowledged and report.changes and report.alerts




async def test_partitions_that_end_in_an_aborted_transaction_are_committed_to_their_end(settings, services) -> None:
    # what a rebalance storm leaves: the last records of every partition of credit.events belong to a
    # transaction that was aborted (a sequencer stopped in the middle of a batch). Read_committed never
    # hands them out, so no batch commits past them: the list keeper commits its positions when idle,
    # and its group's lag reads 0, as Kafka's own tools show it.
    services["list-keeper"].start()
    producer = KafkaClients(access(settings, ADMIN)).producer(transactional_id=f"test-aborted-{helpers.RUN_SEED}")
    await producer.start()
    try:
        await producer.begin_transaction()
        for p in range(registry.EVENTS.partitions):
            await producer.send_and_wait(registry.EVENTS.name, b"never committed", key=b"uscc:aborted", partition=p)
        await producer.abort_transaction()
    finally:
        await producer.stop()
    behind = await faults.group_behind(settings, "credit-list-keeper", registry.EVENTS)
    assert behind, "the aborted records and their markers stand after the group's committed offsets"
    await faults.until(lambda: _at_end(settings), 60, f"the list keeper to commit past {behind}")


async def _at_end(settings) -> bool:
    return not await faults.group_behind(settings, "credit-list-keeper", registry.EVENTS)
