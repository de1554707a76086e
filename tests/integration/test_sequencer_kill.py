"""Given a stream of submissions, when the sequencer process is killed with SIGKILL in mid-stream and
restarted (its state restored from a snapshot written in mid-stream plus the changelog after it), then
nothing is lost, nothing is duplicated, versions are contiguous and chains intact;
and when the same submissions are delivered again, they are answered as duplicates and append nothing."""

from __future__ import annotations

import asyncio
from collections import Counter

from ledger.records import chain
from ops import workload
from schemas import registry
from tests import helpers

N = 12000
CHUNK = 500
SNAPSHOT_EVERY_SECOND = {"LEDGER_SEQUENCER_SNAPSHOT_SECONDS": "1"}


async def _submit_in_chunks(c, records) -> None:  # type: ignore[no-untyped-def]
    for i in range(0, len(records), CHUNK):
        await c.submit_many(records[i:i + CHUNK])
        await asyncio.sleep(0.05)


async def test_sigkill_in_mid_stream_loses_and_duplicates_nothing(settings, services) -> None:
    sequencer = services["sequencer"]
    # snapshots every second (instead of every minute), so that one is written in mid-stream
    sequencer.stop()
    sequencer.start(extra_env=SNAPSHOT_EVERY_SECOND)
    try:
        await _kill_and_check(settings, sequencer)
    finally:
        sequencer.stop()
        sequencer.start()


async def _kill_and_check(settings, sequencer) -> None:  # type: ignore[no-untyped-def]
    rng = helpers.rng("kill")
    subjects = workload.subjects(rng, 60)
    records = [workload.penalty(rng, subjects[i % len(subjects)], "xc-samr", i) for i in range(N)]
    ids = {r["envelope"]["event_id"] for r in records}

    async with helpers.client(settings) as c:
        sending = asyncio.create_task(_submit_in_chunks(c, records))
        snapshots_before = helpers.metric(settings, "sequencer", "ledger_sequencer_snapshots_total")
        await helpers.wait_until(
            lambda: c.decided() >= 1500 and helpers.metric(settings, "sequencer", "ledger_sequencer_snapshots_total")
            > snapshots_before, timeout=60, interval=0.01,
            what="the sequencer to be in mid-stream, with a state snapshot written during the stream")
        old_pid = sequencer.pid()
        sequencer.kill()
        decided_at_kill = c.decided()
        assert decided_at_kill < N, "the kill must happen before the stream is done"
        await sending  # every submission acknowledged by the broker (acks=all)
        sequencer.start(extra_env=SNAPSHOT_EVERY_SECOND)
        assert sequencer.pid() not in (None, old_pid)
        outcomes = [await c.outcome(r["envelope"]["event_id"], timeout=120) for r in records]
    # the restart restored from the snapshot written in mid-stream plus the changelog after it
    assert helpers.metric(settings, "sequencer", "ledger_sequencer_restored_records_total", 'source="snapshot"') > 0

    assert Counter(o["status"] for o in outcomes) == {"ACCEPTED": N}

    entity_ids = {o["entity_id"] for o in outcomes}
    entries = await helpers.ledger_entries(settings, entity_ids)
    appended = [e for es in entries.values() for e in es]
    assert len(appended) == N, "nothing lost, nothing duplicated"
    assert {e["event_id"] for e in appended} == ids
    for entity, es in entries.items():
        assert [e["entity_version"] for e in es] == list(range(1, len(es) + 1)), entity
        assert chain.broken_links(es) == [], entity
    # every outcome points at the entry that holds its event
    position = {e["event_id"]: (e["_partition"], e["_offset"], e["entity_version"]) for e in appended}
    for o in outcomes:
        assert position[o["event_id"]] == (o["ledger_partition"], o["ledger_offset"], o["entity_version"])
    # exactly one committed outcome per submission
    committed = Counter()
    for _p, _o, key, _v in await helpers.read_topic(settings, registry.OUTCOMES):
        if key.decode() in ids:
            committed[key.decode()] += 1
    assert set(committed.values()) == {1} and len(committed) == N

    # duplicate delivery: the same submissions again are recognised and append nothing
    again = records[:1000]
    async with helpers.client(settings) as c:
        dup = await c.submit_many_and_wait(again, timeout=120)
    assert Counter(o["status"] for o in dup) == {"DUPLICATE": len(again)}
    for o in dup:
        assert position[o["event_id"]][:2] == (o["ledger_partition"], o["ledger_offset"])
    entries_after = await helpers.ledger_entries(settings, entity_ids)
    assert sum(len(es) for es in entries_after.values()) == N
