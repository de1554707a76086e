"""The demo's look at the log itself: where each partition of the ledger lives, and on a cluster of
three nodes (`ops/demo --brokers 3`) the node leading most of the ledger's partitions killed with
SIGKILL in the middle of submissions: the two others take over, every submission is acknowledged, and
the node, started again, catches up."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

from aiokafka.errors import KafkaError

from ledger.client import submit_as_departments
from ledger.platform import config
from ops import workload
from ops.infra import Kafka
from schemas import registry

SUBMISSIONS = 200


async def _layout(kafka: Kafka, line: Callable[[str], None]) -> dict[int, int]:
    """Print where each partition of the ledger lives; returns the leader of each."""
    leaders = {}
    for p in await kafka.partitions(registry.EVENTS.name):
        leaders[p["partition"]] = p["leader"]
        line(f"   {registry.EVENTS.name} partition {p['partition']}: leader node {p['leader']}, copies on nodes "
             f"{sorted(p['replicas'])}, in sync {sorted(p['isr'])}")
    return leaders


async def _submit(s: config.Settings, pairs: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Submitted and answered; sent again with the same event ids while leaders move (a DUPLICATE then
    says the first one was recorded)."""
    for attempt in range(1, 11):
        try:
            return await submit_as_departments(s, pairs, timeout=60)
        except (KafkaError, TimeoutError):
            if attempt == 10:
                raise
            await asyncio.sleep(1)
    raise AssertionError("unreachable")


async def show(s: config.Settings, rng: random.Random, line: Callable[[str], None]) -> None:
    kafka = Kafka(s)
    line(f"\n== The log: {s.kafka_brokers} Kafka node(s), every partition on {s.replication_factor}, an acknowledged "
         f"write on at least {s.min_insync_replicas} (min.insync.replicas), unclean leader election off")
    leaders = await _layout(kafka, line)
    if s.kafka_brokers < 3:
        line("   (`ops/stack purge && ops/demo --brokers 3` runs the demo on a cluster of three, which loses a node "
             "here)")
        return
    victim = Counter(leaders.values()).most_common(1)[0][0]
    with quiet_clients():  # the clients' refused connections to the killed node are expected
        await _lose_and_restart(s, kafka, rng, line, leaders, victim)


@contextlib.contextmanager
def quiet_clients() -> Iterator[None]:
    """The Kafka clients' own log lines held back while the demo provokes what they complain about."""
    logger = logging.getLogger("aiokafka")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


async def _lose_and_restart(s: config.Settings, kafka: Kafka, rng: random.Random, line: Callable[[str], None],
                            leaders: dict[int, int], victim: int) -> None:
    kafka.node(victim).kill()
    line(f"   node {victim} killed with SIGKILL: it led partitions "
         f"{sorted(p for p, n in leaders.items() if n == victim)} of the ledger")
    who = workload.subjects(rng, 40)
    pairs = [("xc-samr", workload.penalty(rng, who[i % len(who)], "xc-samr", rng.randrange(10**9)))
             for i in range(SUBMISSIONS)]
    outcomes = await _submit(s, pairs)
    line(f"   {SUBMISSIONS} penalties submitted with node {victim} down: "
         f"{dict(Counter(o['status'] for o in outcomes))}")
    await _layout(kafka, line)
    await asyncio.to_thread(kafka.start)
    for _ in range(120):
        if all(sorted(p["isr"]) == list(range(1, s.kafka_brokers + 1))
               for p in await kafka.partitions(registry.EVENTS.name)):
            break
        await asyncio.sleep(1)
    line(f"   node {victim} started again and caught up:")
    await _layout(kafka, line)
