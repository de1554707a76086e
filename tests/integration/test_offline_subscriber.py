"""Given an example sector subscriber that has the current list feed, when it goes offline, an
entity it holds as listed is delisted, and the compacted topic credit.lists.current is really
compacted (segments rolled, the listing record removed) for longer than its tombstone retention
(delete.retention.ms set to 100 ms for the test), then on its return the subscriber still converges
to the true list: a delisting is an explicit value, never a tombstone that compaction could drop.
The true list is the projector's view (views.list_entries), computed independently from the ledger."""

from __future__ import annotations

import asyncio
from datetime import date

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from ledger.client import submit_as_departments
from ledger.platform.kafka_access import ADMIN, access
from ops import workload
from schemas import registry
from tests import feeds, helpers

FAST_COMPACTION = {"cleanup.policy": "compact", "delete.retention.ms": "100", "segment.ms": "200",
                   "min.cleanable.dirty.ratio": "0.01", "min.compaction.lag.ms": "0"}


async def _alter(settings, configs: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    admin = AIOKafkaAdminClient(**access(settings, ADMIN).options())
    await admin.start()
    try:  # AlterConfigs replaces the topic's whole set of dynamic configs
        await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, registry.LISTS_CURRENT.name, configs)])
    finally:
        await admin.close()


async def _submit(settings, pairs):  # type: ignore[no-untyped-def]
    outcomes = await submit_as_departments(settings, pairs)
    assert {o["status"] for o in outcomes} == {"ACCEPTED"}, [o["reasons"] for o in outcomes]
    return outcomes


def _true_lists(settings, entities: set[str]) -> set[tuple[str, str]]:  # type: ignore[no-untyped-def]
    rows = helpers.pg_rows(settings, "select entity_id, list_kind from views.list_entries where status = 'active' "
                                     "and entity_id = any(%s)", (list(entities),))
    return {(e, k) for e, k in rows}


async def test_an_offline_subscriber_converges_after_compaction_and_tombstone_retention(
        settings, services, tmp_path) -> None:
    rng = helpers.rng("offline")
    companies = workload.subjects(rng, 6, persons_share=0.0)
    ids = {f"uscc:{c.id}" for c in companies}
    gone, stays = companies[0], companies[1]
    await _alter(settings, FAST_COMPACTION)
    try:
        listings = [workload.debtor_listed(c, f"（2026）豫10执O{i}{rng.randrange(10**6)}号", date(2026, 10, 1), ground=1)
                    for i, c in enumerate(companies)]
        await _submit(settings, listings)
        sector = feeds.subscriber(settings, tmp_path)
        await helpers.wait_until(lambda: _synced(sector, ids, len(companies)), timeout=60,
                                 what="the subscriber to hold every listing")
        listed_at = {(r["_partition"], r["_offset"])
                     for r in await feeds.records(settings, registry.LISTS_CURRENT, "ListStatus")
                     if r["_key"] == f"uscc:{gone.id}|dishonest_debtor"}
        assert len(listed_at) == 1
        sector.close()  # offline from here

        # while it is offline: the court delists one company, and the feed goes on changing
        await _submit(settings, [workload.debtor_delisted(gone, listings[0][1]["case_no"], date(2026, 11, 2))])
        async def churn() -> None:
            """Another case of the same company listed and delisted: new records in its partition of the
            feed, so that segments roll (segment.ms) and the cleaner finds dirty segments to compact."""
            case = f"（2026）豫10执C{rng.randrange(10**9)}号"
            await _submit(settings, [workload.debtor_listed(gone, case, date(2026, 10, 5), ground=1)])
            await _submit(settings, [workload.debtor_delisted(gone, case, date(2026, 11, 5))])
            await asyncio.sleep(0.3)

        for _ in range(4):
            await churn()

        async def compacted() -> bool:  # the record that listed it is gone from the log
            offsets = {(r["_partition"], r["_offset"])
                       for r in await feeds.records(settings, registry.LISTS_CURRENT, "ListStatus")}
            if listed_at & offsets:
                await churn()
                return False
            return True

        await helpers.wait_until(compacted, timeout=120, interval=2, what="the log cleaner to compact the feed")
        await asyncio.sleep(0.5)  # longer than delete.retention.ms (100 ms)

        # back online: it reads on from its stored positions and converges to the true list
        sector = feeds.subscriber(settings, tmp_path)
        await helpers.projected(settings)
        truth = _true_lists(settings, ids)
        assert (f"uscc:{gone.id}", "dishonest_debtor") not in truth
        assert (f"uscc:{stays.id}", "dishonest_debtor") in truth
        await sector.sync()
        held = {(e, k) for e in ids for k in sector.lists_of(e)}
        assert held == truth
        sector.close()
        # and a new subscriber, bootstrapping from the compacted log alone, sees the same
        fresh = feeds.subscriber(settings, tmp_path, "fresh")
        await fresh.sync()
        assert {(e, k) for e in ids for k in fresh.lists_of(e)} == truth
        fresh.close()
    finally:
        await _alter(settings, registry.LISTS_CURRENT.configs)


async def _synced(sector, ids: set[str], n: int) -> bool:  # type: ignore[no-untyped-def]
    await sector.sync()
    return sum(1 for e in ids if sector.lists_of(e)) == n
