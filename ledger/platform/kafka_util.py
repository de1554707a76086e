"""Small helpers over aiokafka shared by the ledger's processes, and `KafkaClients`, the factory
through which every long-running service gets its Kafka clients (built once per process by the
composition root, ops/root.py; the unit tests hand the services an in-memory fake instead)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.partitioner import murmur2

from ledger.platform.kafka_access import KafkaAccess

# (topic, partition, key, value, headers): a record ready for `send_grouped`
Record = tuple[str, int, bytes | None, bytes, list[tuple[str, bytes]]]


def partition_of(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner (murmur2) gives a key, so that any client agrees."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


async def send_grouped(producer: AIOKafkaProducer, records: Iterable[Record]) -> list[asyncio.Future[Any]]:
    """Send records as whole Kafka record batches, one (or more when full) per topic and partition,
    in order within each (aiokafka's `create_batch` / `send_batch`: no per-record `send`, no linger;
    inside a transaction the partitions join it as with `send`). Returns the batches' futures."""
    grouped: dict[tuple[str, int], list[Record]] = {}
    for r in records:
        grouped.setdefault((r[0], r[1]), []).append(r)
    acks = []
    for (topic, partition), rs in grouped.items():
        builder = producer.create_batch()
        for _, _, key, value, headers in rs:
            if builder.append(key=key, value=value, timestamp=None, headers=headers) is None:
                builder.close()  # full: the next Kafka batch
                acks.append(await producer.send_batch(builder, topic, partition=partition))
                builder = producer.create_batch()
                builder.append(key=key, value=value, timestamp=None, headers=headers)
        builder.close()  # complete: sent without lingering
        acks.append(await producer.send_batch(builder, topic, partition=partition))
    return acks


class KafkaClients:
    """Makes the Kafka clients of one process, all on the same cluster as the same principal
    (ledger/platform/kafka_access.py). A service asks for a client with the options it needs
    (isolation level, group, transactional id, ...) and owns it: it starts and stops it."""

    def __init__(self, access: KafkaAccess) -> None:
        self.access = access
        self.bootstrap_servers = access.bootstrap_servers

    def consumer(self, *topics: str, **options: Any) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(*topics, **self.access.options(), **options)

    def producer(self, **options: Any) -> AIOKafkaProducer:
        return AIOKafkaProducer(**self.access.options(), **options)

    def admin(self, **options: Any) -> AIOKafkaAdminClient:
        return AIOKafkaAdminClient(**self.access.options(), **options)


async def ensure_topics(access: KafkaAccess, topics: Iterable[Any], replication_factor: int = 1,
                        min_insync_replicas: int = 1, timeout: float = 30.0) -> tuple[list[str], dict[str, int]]:
    """Create the topics (registry Topic values: name, partitions, configs) that do not exist yet, as
    `access`'s principal, with the cluster's copies (`replication_factor`, and the copies an acknowledged
    write must reach set on each topic so that `kafka-topics --describe` shows them), and wait until
    every one of them shows its partitions (a topic created a moment ago can be described with none for
    a while). Returns (the names created, the partition count of each topic)."""
    from aiokafka.admin import NewTopic

    topics = list(topics)
    admin = AIOKafkaAdminClient(**access.options())
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [t for t in topics if t.name not in existing]
        if wanted:
            isr = {"min.insync.replicas": str(min_insync_replicas)}
            await admin.create_topics([NewTopic(t.name, t.partitions, replication_factor,
                                                topic_configs={**t.configs, **isr}) for t in wanted])
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            described = await admin.describe_topics([t.name for t in topics])
            counts = {d["topic"]: len(d["partitions"]) for d in described}
            if all(counts.get(t.name) for t in topics) or asyncio.get_running_loop().time() > deadline:
                return [t.name for t in wanted], counts
            await asyncio.sleep(0.2)
    finally:
        await admin.close()


async def caught_up(consumer: AIOKafkaConsumer, end: dict[TopicPartition, int]) -> bool:
    """True when the consumer's position has reached `end` (from end_offsets) on every partition."""
    for tp, offset in end.items():
        if await consumer.position(tp) < offset:
            return False
    return True


async def assign_at_end(consumer: AIOKafkaConsumer, topic: str, partitions: int) -> list[TopicPartition]:
    """Assign every partition of a topic at its end, resolved at once: nothing written after this
    call is missed, nothing before it is read."""
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    consumer.assign(tps)
    await consumer.seek_to_end(*tps)
    for tp in tps:
        await consumer.position(tp)
    return tps


async def topic_ends(kafka: KafkaClients, topic: str, partitions: int) -> dict[int, int]:
    """The read_committed end offset of each partition of a topic (where a reader that starts now stops)."""
    c = kafka.consumer(group_id=None, isolation_level="read_committed")
    await c.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        return {tp.partition: o for tp, o in (await c.end_offsets(tps)).items()}
    finally:
        await c.stop()
