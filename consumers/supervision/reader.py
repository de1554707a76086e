"""Reads a stretch of a source partition's committed records (aiokafka, read_committed, no group), for
the supervision to check and complete what faust's consumer delivered: where the records of a batch
leave an offset out, the stretch is read from the topic and counted as the topic has it
(consumers/supervision/service.py `in_order`)."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from ledger.platform.kafka_access import KafkaAccess

READ_TIMEOUT = 30.0  # seconds for a stretch the broker holds (it was delivered up to its end)


class Reader:
    def __init__(self, kafka: KafkaAccess, partitions: list[tuple[str, int]]) -> None:
        self.kafka, self.tps = kafka, [TopicPartition(t, p) for t, p in partitions]
        self.consumer: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        self.consumer = AIOKafkaConsumer(**self.kafka.options(), group_id=None, enable_auto_commit=False,
                                         isolation_level="read_committed", auto_offset_reset="earliest")
        await self.consumer.start()
        self.consumer.assign(self.tps)
        self.consumer.pause(*self.tps)  # fetched only while a stretch is read

    async def stop(self) -> None:
        if self.consumer is not None:
            await self.consumer.stop()

    async def read(self, topic: str, partition: int, start: int, end: int) -> list[Any]:
        """The committed records at offsets start <= offset < end, in order, as faust's messages carry
        them (timestamp in seconds)."""
        consumer = self.consumer
        assert consumer is not None, "Reader.start() first"
        tp = TopicPartition(topic, partition)
        consumer.seek(tp, start)
        consumer.resume(tp)
        out: list[Any] = []
        deadline = time.monotonic() + READ_TIMEOUT
        try:
            while await consumer.position(tp) < end:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"reading {topic}/{partition} offsets {start}-{end - 1} took over "
                                       f"{READ_TIMEOUT:.0f} s")
                got = await consumer.getmany(tp, timeout_ms=1000)
                out += [SimpleNamespace(topic=topic, partition=partition, offset=m.offset,
                                        timestamp=m.timestamp / 1000.0, key=m.key, value=m.value,
                                        headers=list(m.headers or ()))
                        for m in got.get(tp, ()) if m.offset < end]
        finally:
            consumer.pause(tp)
        return out
