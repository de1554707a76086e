"""The sequencer's local state store (ledger/sequencer/store.py) under faults, with the real processes:

- the store deleted while the sequencer is stopped: the restart restores it from the whole changelog,
  and duplicates of old ids are still detected;
- killed with SIGKILL in the middle of that restore (a long one: the store deleted first), then
  restarted: the restore starts over from what the killed one checkpointed;
- a damaged store is wiped, with the reason in the log, and restored from the changelog.

Each time the oracle of tests/integration/test_sequencer_kill.py holds: every acknowledged submission
has exactly one outcome-consistent ledger entry, no event twice, versions 1..n without a gap, and
resubmissions of accepted ids are DUPLICATE."""

from __future__ import annotations

import shutil
import time
from collections import Counter
from pathlib import Path

from ledger.platform import config
from tests import helpers
from tests.integration.test_sequencer_kill import check_ledger, penalties, submit_in_chunks

PARTITIONS = 4


def _log_since(log: Path, start: int) -> str:
    with open(log, "rb") as f:
        f.seek(start)
        return f.read().decode(errors="replace")


def _delete_store(settings: config.Settings) -> Path:
    where = settings.sequencer_store_dir("0")
    assert any(where.glob("*.rocksdb")), f"no store in {where}"
    shutil.rmtree(where)
    return where


async def _accept_then_restart_without_store(settings, sequencer, c, records, n) -> tuple[list, int]:  # type: ignore[no-untyped-def]
    """The first n records judged; the sequencer stopped and its store deleted; the others submitted
    meanwhile; the sequencer started again. Returns the first n outcomes and where the new start's
    log begins."""
    first, later = records[:n], records[n:]
    sequencer.start()
    await submit_in_chunks(c, first)
    accepted = [await c.outcome(r["envelope"]["event_id"], timeout=180) for r in first]
    assert Counter(o["status"] for o in accepted) == {"ACCEPTED": len(first)}
    sequencer.stop()
    _delete_store(settings)
    await submit_in_chunks(c, later)  # waiting in credit.submissions while the sequencer is down
    log_start = sequencer.log.stat().st_size
    sequencer.start()
    return accepted, log_start


async def test_a_store_deleted_while_stopped_is_restored_from_the_changelog(settings, services) -> None:
    sequencer, records = services["sequencer"], penalties("store-deleted", 3000, subjects=40)
    async with helpers.client(settings) as c:
        accepted, log_start = await _accept_then_restart_without_store(settings, sequencer, c, records, 2000)
        outcomes = accepted + [await c.outcome(r["envelope"]["event_id"], timeout=120) for r in records[2000:]]
    log = _log_since(sequencer.log, log_start)
    assert log.count('"checkpoint": null') >= PARTITIONS, "every partition's store was new"
    assert helpers.metric(settings, "sequencer", "ledger_sequencer_restored_records_total",
                          'source="changelog"') >= len(accepted)  # one event-id record each, and the entities'
    assert any(settings.sequencer_store_dir("0").glob("*.rocksdb"))
    await check_ledger(settings, records, outcomes)


async def test_sigkill_in_mid_restore_then_restart_loses_and_duplicates_nothing(settings, services) -> None:
    sequencer, records = services["sequencer"], penalties("restore-kill", 24000, subjects=200)
    async with helpers.client(settings) as c:
        # the store deleted, so that the start restores the whole changelog: a long restore
        accepted, log_start = await _accept_then_restart_without_store(settings, sequencer, c, records, 20000)
        await helpers.wait_until(lambda: _log_since(sequencer.log, log_start).count("state store opened")
                                 >= PARTITIONS, timeout=60, interval=0.005, what="the restore to start reading")
        sequencer.kill()
        killed_log = _log_since(sequencer.log, log_start)
        assert "state restored" not in killed_log, "the kill must happen before the restore is done"
        log_start = sequencer.log.stat().st_size
        time.sleep(0.5)
        sequencer.start()
        outcomes = accepted + [await c.outcome(r["envelope"]["event_id"], timeout=180) for r in records[20000:]]
    assert "state restored" in _log_since(sequencer.log, log_start)
    await check_ledger(settings, records, outcomes)


async def test_a_damaged_store_is_wiped_and_restored_from_the_changelog(settings, services) -> None:
    sequencer = services["sequencer"]
    sequencer.start()
    records = penalties("store-damaged", 300, subjects=30)
    async with helpers.client(settings) as c:
        outcomes = await c.submit_many_and_wait(records, timeout=120)
    sequencer.stop()
    for store in settings.sequencer_store_dir("0").glob("*.rocksdb"):
        for f in store.iterdir():
            if f.name.startswith(("CURRENT", "MANIFEST")):
                f.write_bytes(b"damaged")
    log_start = sequencer.log.stat().st_size
    sequencer.start()
    await check_ledger(settings, records, outcomes, resubmit=100)
    assert _log_since(sequencer.log, log_start).count("state store wiped") == PARTITIONS
