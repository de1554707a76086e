"""Small helpers over aiokafka shared by the ledger's processes."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, TopicPartition


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
