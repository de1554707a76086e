"""Small helpers over aiokafka shared by the ledger's processes."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, TopicPartition


async def caught_up(consumer: AIOKafkaConsumer, end: dict[TopicPartition, int]) -> bool:
    """True when the consumer's position has reached `end` (from end_offsets) on every partition."""
    for tp, offset in end.items():
        if await consumer.position(tp) < offset:
            return False
    return True
