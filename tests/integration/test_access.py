"""Who may touch the log (issue 18, item 9). Given the stack's brokers requiring SASL/SCRAM and the ACLs
of ops/access.py, and a court listing and a penalty through the ledger: each party does what it needs
(a department submits and reads its outcome, a sector system reads the list feeds and the alerts in its
own consumer group, an auditor reads the ledger and the signed tree heads), and everything else is
refused by the broker: a sector system reading credit.events (whose signed submissions hold natural
persons' ID numbers in clear) sees neither the topic nor a record, a department writing credit.events
is refused and nothing is appended, no process but the sequencer may write the ledger, a department
cannot take the sequencer's transactional id (which would fence it), a sector system cannot join the
list keeper's group; and a wrong password or no authentication at all gets no connection. The rest of
the suite, which runs every process and client against the same brokers, shows that everything else
still works."""

from __future__ import annotations

import asyncio
from datetime import date

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    KafkaConnectionError,
)

from ledger.client import submit_as_departments
from ledger.platform import config
from ledger.platform import kafka_access as who
from ledger.platform.kafka_access import KafkaAccess, access
from ledger.platform.kafka_util import KafkaClients
from ledger.platform.transactional import read_partitions
from ledger.sequencer.service import GROUP as SEQUENCER_GROUP
from ops import workload
from ops.access import read_refusal, write_refusal
from schemas import registry
from schemas.registry import Topic
from tests import feeds, helpers

DEPARTMENT, SECTOR = "xc-samr", feeds.SECTOR

REFUSED_READS = [
    (SECTOR, registry.EVENTS),  # the case: the ledger holds ID numbers in clear
    (DEPARTMENT, registry.EVENTS),
    (DEPARTMENT, registry.LISTS_CURRENT),
    (who.AUDITOR, registry.SUBMISSIONS),
    (who.PROJECTOR, registry.SUBMISSIONS),
    (who.GATEWAY, registry.EVENTS),
]
REFUSED_WRITES = [
    (DEPARTMENT, registry.EVENTS),  # the case: only the sequencer writes the ledger
    (SECTOR, registry.EVENTS),
    (SECTOR, registry.LISTS_CURRENT),
    (DEPARTMENT, registry.OUTCOMES),
    (who.AUDITOR, registry.CHECKPOINTS),
    (who.LIST_KEEPER, registry.EVENTS),
    (who.PROJECTOR, registry.EVENTS),
    (who.NOTARY, registry.EVENTS),
    (who.QUERY_API, registry.EVENTS),
]
ALLOWED_READS = [
    (SECTOR, registry.LISTS_CURRENT), (SECTOR, registry.LISTS_CHANGES), (SECTOR, registry.ALERTS),
    (who.AUDITOR, registry.EVENTS), (who.AUDITOR, registry.CHECKPOINTS), (DEPARTMENT, registry.OUTCOMES),
]


@pytest.fixture(scope="module")
async def recorded(settings, services) -> str:  # type: ignore[no-untyped-def]
    """A court listing (list feeds, alerts) and a penalty, accepted: every topic has records. Returns
    the department's outcome's event id."""
    rng = helpers.rng("access")
    debtor, company = workload.subjects(rng, 2, persons_share=0.0)
    listing = workload.debtor_listed(debtor, f"（2026）豫10执A{rng.randrange(10**6)}号", date(2026, 10, 1), ground=1)
    penalty = (DEPARTMENT, workload.penalty(rng, company, DEPARTMENT, rng.randrange(10**6)))
    outcomes = await submit_as_departments(settings, [listing, penalty])  # each department as itself
    assert {o["status"] for o in outcomes} == {"ACCEPTED"}, outcomes
    await feeds.wait_for_alerts(settings, {listing[1]["envelope"]["event_id"]}, 1)
    await helpers.wait_until(lambda: _headed(settings), timeout=120, interval=1, what="a signed tree head")
    return str(outcomes[1]["event_id"])


async def _headed(settings: config.Settings) -> bool:
    return bool(helpers.pg_rows(settings, "select 1 from notary.heads where published limit 1"))


async def _records(kafka: KafkaAccess, topic: Topic) -> int:
    per = await read_partitions(KafkaClients(kafka), topic, list(range(topic.partitions)))
    return sum(len(msgs) for msgs in per.values())


@pytest.mark.parametrize(("principal", "topic"), ALLOWED_READS, ids=[f"{p}-{t.name}" for p, t in ALLOWED_READS])
async def test_each_party_reads_what_it_needs(settings, recorded, principal: str, topic: Topic) -> None:
    assert await read_refusal(access(settings, principal), topic) is None
    assert await asyncio.wait_for(_records(access(settings, principal), topic), 60) > 0


@pytest.mark.parametrize(("principal", "topic"), REFUSED_READS, ids=[f"{p}-{t.name}" for p, t in REFUSED_READS])
async def test_a_topic_a_party_may_not_read_is_refused(settings, recorded, principal: str, topic: Topic) -> None:
    assert await read_refusal(access(settings, principal), topic) == "TopicAuthorizationFailedError"


async def test_a_sector_system_reading_the_ledger_gets_not_one_record(settings, recorded) -> None:
    # (aiokafka waits for a topic it may not see rather than fail: nothing comes within the time, while the
    # auditor reads the same topic to its end at once; the subscribers' guide shows librdkafka's refusal)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(_records(access(settings, SECTOR), registry.EVENTS), 10)
    assert await asyncio.wait_for(_records(access(settings, who.AUDITOR), registry.EVENTS), 60) > 0


@pytest.mark.parametrize(("principal", "topic"), REFUSED_WRITES, ids=[f"{p}-{t.name}" for p, t in REFUSED_WRITES])
async def test_a_topic_a_party_may_not_write_is_refused_and_nothing_is_appended(
        settings, recorded, principal: str, topic: Topic) -> None:
    before = await helpers.end_offsets(settings, topic)
    refusal = await write_refusal(access(settings, principal), topic, b"\x00\x00\x00\x00\x01 not the ledger's")
    # (a party that may write no topic at all is refused its idempotent producer id already)
    assert refusal in ("TopicAuthorizationFailedError", "ClusterAuthorizationFailedError")
    assert await helpers.end_offsets(settings, topic) == before


async def test_a_department_cannot_take_the_sequencers_transactional_id(settings, recorded) -> None:
    before = await helpers.end_offsets(settings)
    # (InitProducerId: refused before it could fence the sequencer)
    assert await write_refusal(access(settings, DEPARTMENT), registry.SUBMISSIONS, b"probe",
                               transactional_id=f"{SEQUENCER_GROUP}-0") == "TransactionalIdAuthorizationFailed"
    assert await helpers.end_offsets(settings) == before
    # and the sequencer goes on
    async with helpers.client(settings, DEPARTMENT) as c:
        company = workload.subjects(helpers.rng("access-after"), 1, persons_share=0.0)[0]
        out = await c.submit_and_wait(workload.penalty(helpers.rng("access-after"), company, DEPARTMENT, 7))
    assert out["status"] == "ACCEPTED"


async def test_a_sector_system_reads_in_its_own_groups_only(settings, recorded) -> None:
    admin = AIOKafkaAdminClient(**access(settings, SECTOR).options())
    await admin.start()
    try:
        with pytest.raises(GroupAuthorizationFailedError):
            await admin.list_consumer_group_offsets("credit-list-keeper")
    finally:
        await admin.close()
    # its own group: it reads the alerts and commits its position there
    group = f"{SECTOR}-test-{helpers.rng('access-group').randrange(10**9)}"
    consumer = KafkaClients(access(settings, SECTOR)).consumer(registry.ALERTS.name, group_id=group,
                                                              auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    try:
        got = await helpers.wait_until(lambda: consumer.getmany(timeout_ms=1000), timeout=60, what="alerts in a group")
        await consumer.commit()
        assert sum(len(msgs) for msgs in got.values()) > 0
    finally:
        await consumer.stop()


async def test_the_departments_outcome_is_read_as_the_department(settings, recorded) -> None:
    outcomes = [registry.decode(v, "Outcome")[1] for msgs in (await read_partitions(
        KafkaClients(access(settings, DEPARTMENT)), registry.OUTCOMES,
        list(range(registry.OUTCOMES.partitions)))).values() for v in (m.value for m in msgs)]
    assert recorded in {o["event_id"] for o in outcomes}


@pytest.mark.parametrize("how", ["a wrong password", "no authentication"])
async def test_a_client_that_does_not_authenticate_gets_no_connection(settings, how: str) -> None:
    if how == "a wrong password":
        options = KafkaAccess(settings.bootstrap_servers, who.SEQUENCER, "not-the-password").options()
    else:
        options = {"bootstrap_servers": settings.bootstrap_servers}
    admin = AIOKafkaAdminClient(**options, request_timeout_ms=5000)
    try:
        with pytest.raises(KafkaConnectionError):
            await admin.start()
    finally:
        await admin.close()
