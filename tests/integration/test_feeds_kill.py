"""Given a stream of listings and delistings, when every process on the path from a submission to an
alert is killed with SIGKILL in mid-stream and restarted (the sequencer, the list keeper, twice) and
the broker itself is killed and started again, then every list change is on credit.lists.changes
exactly once, every alert the catalogue calls for is on credit.alerts exactly once (counted by their
deterministic ids, read_committed), and credit.lists.current ends at the true state (no delisting
lost); and when the whole ledger is delivered again to a list keeper in a new group, it writes nothing."""

from __future__ import annotations

import asyncio
from datetime import date

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from consumers.list_keeper.service import ListKeeper
from ledger.client import submit_as_departments
from ledger.platform.kafka_access import ADMIN, access
from ops import root, workload
from ops import stack as ops_stack
from schemas import registry
from tests import feeds, helpers

ENTITIES = 400
CHUNK = 40
PAUSE = 0.25  # seconds between chunks


async def _stream(settings, pairs) -> None:  # type: ignore[no-untyped-def]
    for i in range(0, len(pairs), CHUNK):
        for attempt in range(1, 61):
            try:
                outcomes = await submit_as_departments(settings, pairs[i:i + CHUNK])
                break
            except (KafkaError, TimeoutError) as exc:  # the broker is being restarted: as a department
                if attempt == 60:                      # would, send the chunk again (same event ids)
                    raise
                print(f"chunk {i // CHUNK} not acknowledged ({type(exc).__name__}); sending it again", flush=True)
                await asyncio.sleep(1)
        # a chunk sent again may find part of it recorded already: those are answered DUPLICATE
        assert {o["status"] for o in outcomes} <= {"ACCEPTED", "DUPLICATE"}, [o["reasons"] for o in outcomes][:3]
        await asyncio.sleep(PAUSE)  # a stream that lasts: the kills can come in the middle of it


async def _count(settings, topic) -> int:  # type: ignore[no-untyped-def]
    return sum((await helpers.end_offsets(settings, topic)).values())


async def _kill_when(settings, service, topic, at_least: int,  # type: ignore[no-untyped-def]
                     start: int | None = None) -> tuple[str, int]:
    """SIGKILL the service once `topic` has grown by `at_least` records since `start` (default: now),
    and start it again; returns the topic's size when it was killed."""
    start = await _count(settings, topic) if start is None else start
    await helpers.wait_until(lambda: _grown(settings, topic, start + at_least), timeout=120, interval=0.05,
                             what=f"{topic.name} to grow by {at_least}")
    old = service.pid()
    service.kill()
    at_kill = await _count(settings, topic)
    await asyncio.sleep(0.5)
    service.start()
    assert service.pid() not in (None, old)
    return topic.name, at_kill


async def _restart_broker_when(settings, topic, at_least: int, start: int) -> tuple[str, int]:  # type: ignore[no-untyped-def]
    """SIGKILL the broker once `topic` has grown by `at_least` records since `start`, and start it
    again (its log, the transaction coordinator's state and the group offsets are on its disk)."""
    await helpers.wait_until(lambda: _grown(settings, topic, start + at_least), timeout=120, interval=0.05,
                             what=f"{topic.name} to grow by {at_least}")
    at_kill = await _count(settings, topic)
    kafka = ops_stack.Kafka(settings)
    old = kafka.pid()
    kafka.kill()
    await asyncio.sleep(2)
    await asyncio.to_thread(kafka.start)
    assert kafka.pid() not in (None, old)
    return topic.name, at_kill


async def _grown(settings, topic, n: int) -> bool:  # type: ignore[no-untyped-def]
    return await _count(settings, topic) >= n


async def test_sigkill_of_every_process_on_the_path_and_a_broker_restart_lose_and_duplicate_nothing(settings, services) -> None:
    rng = helpers.rng("feeds-kill")
    subjects = workload.subjects(rng, ENTITIES, persons_share=0.2)
    cases = [f"（2026）豫10执K{i}{rng.randrange(10**6)}号" for i in range(ENTITIES)]
    listings = [workload.debtor_listed(s, c, date(2026, 10, 1), ground=1) for s, c in zip(subjects, cases, strict=True)]
    delistings = [workload.debtor_delisted(s, c, date(2026, 11, 2))
                  for s, c in zip(subjects[::2], cases[::2], strict=True)]
    event_ids = {r["envelope"]["event_id"] for _, r in listings + delistings}

    # growth is counted from before each stream starts, so that a process which has already written
    # everything of it by the time its turn comes (a quiet machine streams 400 listings in a second or
    # two) is still killed and restarted
    kills = []
    before = {t.name: await _count(settings, t) for t in (registry.LISTS_CHANGES, registry.ALERTS)}
    sending = asyncio.create_task(_stream(settings, listings))
    kills.append(await _kill_when(settings, services["sequencer"], registry.LISTS_CHANGES, 60,
                                  before[registry.LISTS_CHANGES.name]))
    kills.append(await _kill_when(settings, services["list-keeper"], registry.ALERTS, 600,
                                  before[registry.ALERTS.name]))
    await sending
    # the shorter delisting stream, the same way
    before = {t.name: await _count(settings, t) for t in (registry.LISTS_CHANGES, registry.ALERTS)}
    sending = asyncio.create_task(_stream(settings, delistings))
    kills.append(await _restart_broker_when(settings, registry.LISTS_CHANGES, 20, before[registry.LISTS_CHANGES.name]))
    kills.append(await _kill_when(settings, services["list-keeper"], registry.ALERTS, 200,
                                  before[registry.ALERTS.name]))
    await sending
    for name in ("sequencer", "list-keeper"):
        assert services[name].pid(), f"the {name} did not outlive the broker's restart"

    # every list change exactly once
    async def all_changes() -> list[dict]:  # type: ignore[type-arg]
        found = await feeds.changes(settings, event_ids)
        return found if len(found) >= len(event_ids) else []

    changes = await helpers.wait_until(all_changes, timeout=120, interval=1, what="every list change")
    assert feeds.duplicates([c["change_id"] for c in changes]) == {}
    assert {c["event_id"] for c in changes} == event_ids

    # every alert exactly once: the ids the catalogue calls for, computed from the changes
    expected = feeds.expected_alerts(changes)
    alerts = await feeds.wait_for_alerts(settings, event_ids, len(expected), timeout=120)
    await asyncio.sleep(2)  # anything late would be a duplicate
    alerts = await feeds.alerts(settings, event_ids)
    assert feeds.duplicates([a["alert_id"] for a in alerts]) == {}
    assert {a["alert_id"] for a in alerts} == expected
    assert all(a["_key"] == a["department"] for a in alerts)
    final = {t.name: await _count(settings, t) for t in (registry.LISTS_CHANGES, registry.ALERTS)}
    # the kills during the listings came before their topics stopped growing (the stream lasts at least
    # 10 x PAUSE); the later two may find a process that has already written everything of the shorter
    # delisting stream
    assert all(at_kill < final[topic] for topic, at_kill in kills[:2]), f"a kill after its stream ended: {kills} {final}"

    # the compacted feed ends at the true state of each entity
    current = {r["_key"]: r for r in await feeds.records(settings, registry.LISTS_CURRENT, "ListStatus")}
    delisted = {f"{c['entity_id']}|dishonest_debtor" for c in changes if c["status"] == "delisted"}
    listed = {f"{c['entity_id']}|dishonest_debtor" for c in changes} - delisted
    assert len(delisted) == len(delistings) and len(listed) == ENTITIES - len(delistings)
    assert all(current[k]["listed"] is False and current[k]["entries"] == [] for k in delisted)
    assert all(current[k]["listed"] is True for k in listed)

    # duplicate delivery: a list keeper in a new group reads the whole ledger again, restores its state
    # from its compacted topic as any instance does, and writes nothing (every entry is at or below a
    # version already applied)
    for cls, build, outputs in ((ListKeeper, root.list_keeper_service,
                                 (registry.LISTS_CHANGES, registry.LISTS_CURRENT, registry.ALERTS)),):
        service = services[cls.name]
        service.stop()
        before = [await helpers.last_records(settings, t) for t in outputs]
        replay = build(settings, instance="replay")
        replay.group = f"{cls.group}-replay-{rng.randrange(10**9)}"
        running = asyncio.create_task(replay.run())
        try:
            await helpers.wait_until(lambda r=replay: _group_at_end(settings, r.group), timeout=180, interval=1,
                                     what=f"the replaying {cls.name} to read the whole ledger")
        finally:
            replay.stop()
            await running
            service.start()
        assert [await helpers.last_records(settings, t) for t in outputs] == before, cls.name


async def _group_at_end(settings, group: str) -> bool:  # type: ignore[no-untyped-def]
    end = await helpers.last_records(settings)  # (the end offsets also count transaction markers)
    admin = AIOKafkaAdminClient(**access(settings, ADMIN).options())
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    tps = {p: TopicPartition(registry.EVENTS.name, p) for p in end}
    return all(o == 0 or (tps[p] in offsets and offsets[tps[p]].offset >= o) for p, o in end.items())


async def test_an_undecodable_ledger_record_is_reported_and_the_feeds_flow_on(settings, services) -> None:
    from aiokafka import AIOKafkaProducer

    before = {n: helpers.metric(settings, n, "ledger_stream_undecodable_total", f'processor="{n}"')
              for n in ("list-keeper",)}
    producer = AIOKafkaProducer(**access(settings, ADMIN).options(), enable_idempotence=True)
    await producer.start()
    try:  # corruption in the ledger itself (a foreign producer): no schema can read it
        await producer.send_and_wait(registry.EVENTS.name, key=b"uscc:garbage", value=b"\x00\x00\x00\x00\x01\xff junk")
    finally:
        await producer.stop()
    rng = helpers.rng("feeds-garbage")
    company = workload.subjects(rng, 1, persons_share=0.0)[0]
    listing = workload.debtor_listed(company, f"（2026）豫10执G{rng.randrange(10**6)}号", date(2026, 11, 2))
    await _stream(settings, [listing])
    event_id = listing[1]["envelope"]["event_id"]
    await feeds.wait_for_alerts(settings, {event_id}, 1)
    assert [c["status"] for c in await feeds.changes(settings, {event_id})] == ["listed"]
    for name, n in before.items():
        assert helpers.metric(settings, name, "ledger_stream_undecodable_total", f'processor="{name}"') == n + 1
