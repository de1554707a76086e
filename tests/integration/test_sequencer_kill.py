"""Given a stream of submissions, when the sequencer process is killed with SIGKILL in mid-batch and
restarted (its state from its local store, checkpointed with the last committed batch, plus the
changelog after it), then nothing is lost, nothing is duplicated, versions are contiguous and chains
intact; and when the same submissions are delivered again, they are answered as duplicates and
append nothing. `check_ledger` is that oracle; tests/integration/test_sequencer_store.py uses it too."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from ledger.platform import config
from ledger.records import chain
from ops import workload
from schemas import registry
from tests import helpers

N = 12000
CHUNK = 500


async def submit_in_chunks(c, records) -> None:  # type: ignore[no-untyped-def]
    for i in range(0, len(records), CHUNK):
        await c.submit_many(records[i:i + CHUNK])
        await asyncio.sleep(0.05)


def penalties(name: str, n: int, subjects: int = 60) -> list[dict[str, Any]]:
    rng = helpers.rng(name)
    who = workload.subjects(rng, subjects)
    return [workload.penalty(rng, who[i % len(who)], "xc-samr", i) for i in range(n)]


async def check_ledger(settings: config.Settings, records: list[dict[str, Any]],
                       outcomes: list[dict[str, Any]], resubmit: int = 1000) -> None:
    """Every acknowledged submission has exactly one ACCEPTED outcome pointing at exactly one ledger
    entry; no event twice; each entity's versions run 1..n without a gap and its chain links; and a
    resubmission of accepted ids is DUPLICATE, with the original position, appending nothing."""
    ids = {r["envelope"]["event_id"] for r in records}
    assert Counter(o["status"] for o in outcomes) == {"ACCEPTED": len(records)}
    entity_ids = {o["entity_id"] for o in outcomes}
    entries = await helpers.ledger_entries(settings, entity_ids)
    appended = [e for es in entries.values() for e in es]
    assert len(appended) == len(records), "nothing lost, nothing duplicated"
    assert {e["event_id"] for e in appended} == ids
    for entity, es in entries.items():
        assert [e["entity_version"] for e in es] == list(range(1, len(es) + 1)), entity
        assert chain.broken_links(es) == [], entity
    # every outcome points at the entry that holds its event
    position = {e["event_id"]: (e["_partition"], e["_offset"], e["entity_version"]) for e in appended}
    for o in outcomes:
        assert position[o["event_id"]] == (o["ledger_partition"], o["ledger_offset"], o["entity_version"])
    # exactly one committed outcome per submission
    committed: Counter[str] = Counter()
    for _p, _o, key, _v in await helpers.read_topic(settings, registry.OUTCOMES):
        if key is not None and key.decode() in ids:
            committed[key.decode()] += 1
    assert set(committed.values()) == {1} and len(committed) == len(records)

    # duplicate delivery: the same submissions again are recognised and append nothing
    again = records[:resubmit]
    async with helpers.client(settings) as c:
        dup = await c.submit_many_and_wait(again, timeout=120)
    assert Counter(o["status"] for o in dup) == {"DUPLICATE": len(again)}
    for o in dup:
        assert position[o["event_id"]][:2] == (o["ledger_partition"], o["ledger_offset"])
    entries_after = await helpers.ledger_entries(settings, entity_ids)
    assert sum(len(es) for es in entries_after.values()) == len(records)


async def test_sigkill_in_mid_batch_loses_and_duplicates_nothing(settings, services) -> None:
    sequencer = services["sequencer"]
    sequencer.start()
    records = penalties("kill", N)
    async with helpers.client(settings) as c:
        sending = asyncio.create_task(submit_in_chunks(c, records))
        await helpers.wait_until(lambda: c.decided() >= 1500, timeout=60, interval=0.01,
                                 what="the sequencer to be in mid-stream")
        old_pid = sequencer.pid()
        sequencer.kill()
        decided_at_kill = c.decided()
        assert decided_at_kill < N, "the kill must happen before the stream is done"
        await sending  # every submission acknowledged by the broker (acks=all)
        sequencer.start()
        assert sequencer.pid() not in (None, old_pid)
        outcomes = [await c.outcome(r["envelope"]["event_id"], timeout=120) for r in records]
    # the restart began from its local store (checkpointed by the batches committed before the kill)
    assert helpers.metric(settings, "sequencer", "ledger_sequencer_restored_records_total", 'source="store"') > 0
    await check_ledger(settings, records, outcomes)
