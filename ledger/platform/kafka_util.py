"""Small helpers over aiokafka shared by the ledger's processes, and `KafkaClients`, the factory
through which every long-running service gets its Kafka clients (built once per process by the
composition root, ops/root.py; the unit tests hand the services an in-memory fake instead)."""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition


class KafkaClients:
    """Makes the Kafka clients of one process, all on the same bootstrap servers. A service asks for
    a client with the options it needs (isolation level, group, transactional id, ...) and owns it:
    it starts and stops it."""

    def __init__(self, bootstrap_servers: str) -> None:
        self.bootstrap_servers = bootstrap_servers

    def consumer(self, **options: Any) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(bootstrap_servers=self.bootstrap_servers, **options)

    def producer(self, **options: Any) -> AIOKafkaProducer:
        return AIOKafkaProducer(bootstrap_servers=self.bootstrap_servers, **options)


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
