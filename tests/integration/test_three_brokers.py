"""Given the stack on a Kafka cluster of three nodes (`ops/stack up --brokers 3`: every partition on
all three, an acknowledged write on at least two, unclean leader election off) with every service,
when the node that leads the most of the ledger's partitions is killed with SIGKILL in the middle of a
stream of penalties and court listings, then the two others go on taking submissions while it is
down; once it is started again it catches up (every partition in sync on three nodes again); no
process exited; every acknowledged submission is in the ledger once, each entity's versions run
1..n and its chain links; every event has one effect in every view and in the notary's trees, every
listing one alert per measure; and the views equal a fresh rebuild (issue 18, item 3).

The cluster is its own stack (its own directory and PostgreSQL, every port the test stack's + 100),
started and stopped by the command an operator runs."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest

from ledger.platform import config
from ledger.records import chain
from ops import stack as ops_stack
from ops import workload
from schemas import registry
from tests import feeds, helpers

CHUNK = 40
CHUNKS = 45  # 1,800 submissions, about one in ten a court listing
KILL_AFTER = 6  # chunks acknowledged before the kill
WHILE_DOWN = 6  # chunks the two other nodes must acknowledge while the third is down
PORT_SHIFT = 100  # every port of the cluster's stack: the test stack's + 100


def _three(settings: config.Settings) -> config.Settings:
    shift = PORT_SHIFT
    stack_dir = settings.stack_dir.with_name(settings.stack_dir.name + "-three")
    return dataclasses.replace(
        settings, stack_dir=stack_dir, keys_dir=stack_dir / "keys", kafka_brokers=3,
        kafka_port=settings.kafka_port + shift, pg_port=settings.pg_port + shift,
        metrics_base_port=settings.metrics_base_port + shift, api_port=settings.api_port + shift,
        gateway_port=settings.gateway_port + shift, portal_port=settings.portal_port + shift,
        registry_port=settings.registry_port + shift, public_intake_port=settings.public_intake_port + shift)


def _command(s: config.Settings, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """A command of the project run against the cluster's stack, as an operator would run it."""
    env = {**os.environ, **ops_stack.environment(s)}
    return subprocess.run([sys.executable, "-m", *args], env=env, cwd=config.ROOT, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def three(settings) -> Iterator[config.Settings]:  # type: ignore[no-untyped-def]
    s = _three(settings)
    _command(s, "ops.stack", "purge")  # nothing left from an earlier run
    up = _command(s, "ops.stack", "up", "--brokers", "3")
    assert up.returncode == 0, up.stderr[-3000:]
    try:
        yield s
    finally:
        if not os.environ.get("LEDGER_KEEP_STACK"):
            down = _command(s, "ops.stack", "purge")
            assert down.returncode == 0, down.stderr[-3000:]


def _workload() -> tuple[list[list[tuple[str, dict[str, Any]]]], set[str], set[str]]:
    """Chunks of penalties (200 subjects) and court listings (one new debtor each); the ids of each kind."""
    rng = helpers.rng("three-brokers")
    who = workload.subjects(rng, 200)
    debtors = workload.subjects(rng, CHUNKS * CHUNK // 10, persons_share=0.2)
    chunks, penalties, listings = [], set(), set()
    n = 0
    for _ in range(CHUNKS):
        chunk = []
        for _ in range(CHUNK):
            if n % 10 == 9:
                case = f"（2026）豫10执T{n}{rng.randrange(10**6)}号"
                dept, record = workload.debtor_listed(debtors[n // 10], case, date(2026, 10, 1), ground=1)
                listings.add(record["envelope"]["event_id"])
            else:
                dept, record = "xc-samr", workload.penalty(rng, who[n % len(who)], "xc-samr", n)
                penalties.add(record["envelope"]["event_id"])
            chunk.append((dept, record))
            n += 1
        chunks.append(chunk)
    return chunks, penalties, listings


async def _enough(items: list[int], n: int) -> bool:
    return len(items) >= n


async def test_the_leader_of_the_ledger_killed_under_load_loses_and_duplicates_nothing(three) -> None:
    s = three
    kafka = ops_stack.Kafka(s)
    assert len(kafka.nodes) == 3 and all(kafka.pids().values())
    events = await kafka.partitions(registry.EVENTS.name)
    assert all(sorted(p["replicas"]) == [1, 2, 3] and sorted(p["isr"]) == [1, 2, 3] for p in events), events
    services = {n: ops_stack.Service(s, n) for n in ops_stack.SERVICES}
    pids = {n: svc.pid() for n, svc in services.items()}
    assert all(pids.values()), pids

    chunks, penalties, listings = _workload()
    acknowledged: list[int] = []
    sending = asyncio.create_task(helpers.stream_until_acknowledged(s, chunks, acknowledged, pause=0.1))
    await helpers.wait_until(lambda: _enough(acknowledged, KILL_AFTER), timeout=300, interval=0.05,
                             what=f"{KILL_AFTER} chunks acknowledged")

    # the node that leads the most of the ledger's partitions, killed
    leaders = Counter(p["leader"] for p in await kafka.partitions(registry.EVENTS.name))
    victim = leaders.most_common(1)[0][0]
    kafka.node(victim).kill()
    at_kill = len(acknowledged)

    # the other two take over: new leaders for its partitions, and submissions acknowledged meanwhile
    async def moved() -> bool:
        return all(p["leader"] not in (victim, -1) for p in await kafka.partitions(registry.EVENTS.name))

    await helpers.wait_until(moved, timeout=120, interval=0.5, what=f"new leaders for node {victim}'s partitions")
    await helpers.wait_until(lambda: _enough(acknowledged, at_kill + WHILE_DOWN), timeout=300, interval=0.2,
                             what=f"{WHILE_DOWN} chunks acknowledged by the two other nodes")
    assert kafka.node(victim).pid() is None

    await asyncio.to_thread(kafka.start)  # starts the killed node only
    outcomes = await sending
    assert len(acknowledged) == CHUNKS

    # the restarted node catches up: every partition in sync on all three again
    async def in_sync() -> bool:
        described = [p for t in (registry.EVENTS, registry.SUBMISSIONS) for p in await kafka.partitions(t.name)]
        return all(sorted(p["isr"]) == [1, 2, 3] for p in described)

    await helpers.wait_until(in_sync, timeout=180, interval=1, what="every partition in sync on three nodes")

    # no process exited on the way (and the stack's supervisor started none again)
    assert {n: svc.pid() for n, svc in services.items()} == pids
    assert sum(ops_stack.read_restarts(s).values()) == 0

    # every acknowledged submission once in the ledger, versions 1..n, chains linked
    ids = penalties | listings
    assert {o["event_id"] for o in outcomes} == ids
    entities = {o["entity_id"] for o in outcomes}
    entries = await helpers.ledger_entries(s, entities)
    counted = Counter(e["event_id"] for es in entries.values() for e in es)
    assert set(counted) == ids and set(counted.values()) == {1}
    for entity, es in entries.items():
        assert [e["entity_version"] for e in es] == list(range(1, len(es) + 1)), entity
        assert chain.broken_links(es) == [], entity

    # one effect per event in every view
    await helpers.projected(s, timeout=300)
    copies = dict(helpers.pg_rows(s, "select event_id, count(*) from views.ledger_copy where event_id = any(%s) "
                                     "group by event_id", (list(ids),)))
    assert set(copies) == ids and set(copies.values()) == {1}
    published = {r[0] for r in helpers.pg_rows(s, "select event_id from views.publicity where event_id = any(%s)",
                                               (list(penalties),))}
    assert published == penalties
    listed = dict(helpers.pg_rows(s, "select event_id, count(*) from views.list_entries where event_id = any(%s) "
                                     "group by event_id", (list(listings),)))
    assert set(listed) == listings and set(listed.values()) == {1}
    versions = dict(helpers.pg_rows(s, "select entity_id, version from views.entities where entity_id = any(%s)",
                                    (list(entities),)))
    assert versions == {entity: len(es) for entity, es in entries.items()}

    # the notary: one leaf per committed ledger record, in every partition
    records = Counter(p for p, _o, _k, _v in await helpers.read_topic(s, registry.EVENTS))

    async def notarised() -> bool:
        return dict(helpers.pg_rows(s, "select partition, count(*) from notary.leaves group by partition")) == records

    await helpers.wait_until(notarised, timeout=180, interval=1, what="a notary leaf for every ledger record")

    # one list change per listing, one alert per measure
    changes = await feeds.changes(s, listings)
    assert sorted(c["event_id"] for c in changes) == sorted(listings)
    expected = feeds.expected_alerts(changes)
    await feeds.wait_for_alerts(s, listings, len(expected), timeout=180)
    await asyncio.sleep(2)  # anything late would be a duplicate
    alerts = await feeds.alerts(s, listings)
    assert feeds.duplicates([a["alert_id"] for a in alerts]) == {}
    assert {a["alert_id"] for a in alerts} == expected

    # the views equal a fresh rebuild of them from the ledger
    rebuilt = await asyncio.to_thread(_command, s, "consumers.projector.rebuild")
    assert rebuilt.returncode == 0, rebuilt.stderr[-3000:]
    assert "switched: the rebuilt views are live" in rebuilt.stderr
