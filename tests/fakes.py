"""In-memory stand-ins for the ports of the services: a broker with topics, committed group offsets and
transactions (`FakeKafka`, the same interface as ledger.platform.kafka_util.KafkaClients), so the
services' own logic runs in unit tests without Kafka.

The fake is small on purpose: one member per group, every partition of a subscribed topic assigned
at start, a transaction's records and offsets visible only once it commits (as for read_committed
readers), nothing of an aborted one. `FakeProducer.fail_commits` makes the next commits fail, to
check what a processor does with an aborted batch.
"""

from __future__ import annotations

import asyncio
import tempfile
import zlib
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka import TopicPartition

from ledger.sequencer import store
from ledger.sequencer.core import Sequencing
from schemas import registry

PARTITIONS = {t.name: t.partitions for t in vars(registry).values() if isinstance(t, registry.Topic)}


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()
    timestamp: int = 1_790_000_000_000
    timestamp_type: int = 1  # LogAppendTime: the fake broker stamps every record with its own clock


@dataclass(frozen=True)
class Metadata:
    topic: str
    partition: int
    offset: int
    timestamp: int = 1_790_000_000_000
    timestamp_type: int = 1


class FakeBroker:
    def __init__(self) -> None:
        self.logs: dict[TopicPartition, list[Record]] = defaultdict(list)
        self.group_offsets: dict[str, dict[TopicPartition, int]] = defaultdict(dict)
        self.now_ms = 1_790_000_000_000  # the broker's clock, stamped on every record appended

    def append(self, topic: str, partition: int, key: bytes | None, value: bytes | None,
               headers: Any = ()) -> Record:
        tp = TopicPartition(topic, partition)
        r = Record(topic, partition, len(self.logs[tp]), key, value, tuple(headers or ()), self.now_ms)
        self.logs[tp].append(r)
        return r

    def records(self, topic: str) -> list[Record]:
        return [r for tp, rs in sorted(self.logs.items()) if tp.topic == topic for r in rs]

    def end(self, tp: TopicPartition) -> int:
        return len(self.logs[tp])


class FakeConsumer:
    def __init__(self, broker: FakeBroker, **options: Any) -> None:
        self.broker = broker
        self.options = options
        self.group: str | None = options.get("group_id")
        self.max_records = options.get("max_poll_records") or 500
        self._topics: list[str] = []
        self._listener: Any = None
        self._assigned: list[TopicPartition] = []
        self._paused: set[TopicPartition] = set()
        self._positions: dict[TopicPartition, int] = {}

    def subscribe(self, topics: list[str], listener: Any = None) -> None:
        self._topics, self._listener = list(topics), listener

    async def start(self) -> None:
        if self._topics:  # the whole topic, from the group's committed offsets
            tps = [TopicPartition(t, p) for t in self._topics for p in range(PARTITIONS[t])]
            self.assign(tps)
            committed = self.broker.group_offsets[self.group or ""]
            for tp in tps:
                self._positions[tp] = committed.get(tp, 0)
            if self._listener is not None:
                await self._listener.on_partitions_assigned(set(tps))

    async def stop(self) -> None:
        pass

    def assign(self, tps: list[TopicPartition]) -> None:
        self._assigned = list(tps)
        for tp in tps:
            self._positions.setdefault(tp, 0 if self.options.get("auto_offset_reset") == "earliest"
                                       else self.broker.end(tp))

    def assignment(self) -> set[TopicPartition]:
        return set(self._assigned)

    def pause(self, *tps: TopicPartition) -> None:
        self._paused.update(tps)

    def resume(self, *tps: TopicPartition) -> None:
        self._paused.difference_update(tps)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self._positions[tp] = offset

    async def seek_to_beginning(self, *tps: TopicPartition) -> None:
        for tp in tps or self._assigned:
            self._positions[tp] = 0

    async def seek_to_end(self, *tps: TopicPartition) -> None:
        for tp in tps or self._assigned:
            self._positions[tp] = self.broker.end(tp)

    async def position(self, tp: TopicPartition) -> int:
        return self._positions[tp]

    async def beginning_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: 0 for tp in tps}

    async def end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: self.broker.end(tp) for tp in tps}

    async def getmany(self, *tps: TopicPartition, timeout_ms: int = 0,
                      max_records: int | None = None) -> dict[TopicPartition, list[Record]]:
        left = max_records or self.max_records
        out: dict[TopicPartition, list[Record]] = {}
        for tp in tps or self._assigned:
            if tp in self._paused or left <= 0:
                continue
            pos = self._positions[tp]
            got = self.broker.logs[tp][pos:pos + left]
            if got:
                out[tp] = got
                self._positions[tp] = pos + len(got)
                left -= len(got)
        if not out:
            await asyncio.sleep(min(timeout_ms / 1000, 0.005))
        return out


class FakeBatch:
    """aiokafka's BatchBuilder in memory: records appended until closed (never full)."""

    def __init__(self) -> None:
        self.records: list[tuple[bytes | None, bytes | None, Any]] = []
        self.closed = False

    def append(self, *, key: bytes | None, value: bytes | None, timestamp: Any, headers: Any = ()) -> object | None:
        if self.closed:
            return None
        self.records.append((key, value, headers))
        return object()

    def close(self) -> None:
        self.closed = True


class FakeProducer:
    def __init__(self, broker: FakeBroker, **options: Any) -> None:
        self.broker = broker
        self.options = options
        self.fail_commits = 0  # the next n commits fail (the transaction is aborted)
        self.fail_with: type[Exception] = RuntimeError  # with this error (e.g. a KafkaTimeoutError)
        self.commits = 0
        self.aborts = 0
        self.checks = 0  # empty transactions begun and aborted (the fencing check at an assignment)
        self._pending: list[tuple[str, int, bytes | None, bytes | None, Any]] | None = None
        self._offsets: dict[str, dict[TopicPartition, int]] = {}

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        self._pending, self._offsets = [], {}
        try:
            yield
            if self.fail_commits:
                self.fail_commits -= 1
                raise self.fail_with("the commit failed (fake)")
        except BaseException:
            self.aborts += 1
            self._pending = None
            raise
        for topic, partition, key, value, headers in self._pending:
            self.broker.append(topic, partition, key, value, headers)
        for group, offsets in self._offsets.items():
            self.broker.group_offsets[group].update(offsets)
        self._pending = None
        self.commits += 1

    async def send(self, topic: str, value: bytes | None = None, key: bytes | None = None,
                   partition: int | None = None, headers: Any = None,
                   timestamp_ms: int | None = None) -> asyncio.Future[Metadata]:
        if partition is None:
            partition = zlib.crc32(key or b"") % PARTITIONS[topic]
        fut: asyncio.Future[Metadata] = asyncio.get_running_loop().create_future()
        if self._pending is None:  # not transactional: written at once
            fut.set_result(Metadata(topic, partition, self.broker.append(topic, partition, key, value, headers).offset,
                                    self.broker.now_ms))
            return fut
        before = sum(1 for t, p, *_ in self._pending if (t, p) == (topic, partition))
        self._pending.append((topic, partition, key, value, headers))
        fut.set_result(Metadata(topic, partition, self.broker.end(TopicPartition(topic, partition)) + before,
                                self.broker.now_ms))
        return fut

    def create_batch(self) -> FakeBatch:
        return FakeBatch()

    async def send_batch(self, batch: FakeBatch, topic: str, *, partition: int) -> asyncio.Future[Metadata]:
        last = None
        for key, value, headers in batch.records:
            last = await self.send(topic, value=value, key=key, partition=partition, headers=headers)
        assert last is not None, "an empty batch"
        return last

    async def send_and_wait(self, topic: str, value: bytes | None = None, key: bytes | None = None,
                            partition: int | None = None) -> Metadata:
        return await (await self.send(topic, value=value, key=key, partition=partition))

    async def send_offsets_to_transaction(self, offsets: dict[TopicPartition, int], group: str) -> None:
        self._offsets.setdefault(group, {}).update(offsets)

    async def begin_transaction(self) -> None:
        """(Only the processors' fencing check opens a transaction this way, and aborts it.)"""
        self._pending, self._offsets = [], {}

    async def abort_transaction(self) -> None:
        self._pending, self._offsets = None, {}
        self.checks += 1


class FakeKafka:
    """The services' Kafka client factory, over one FakeBroker; keeps the clients it made."""

    bootstrap_servers = "fake:9092"

    def __init__(self, broker: FakeBroker | None = None) -> None:
        self.broker = broker or FakeBroker()
        self.producers: list[FakeProducer] = []
        self.fail_commits = 0  # handed to the next transactional producer
        self.fail_with: type[Exception] = RuntimeError  # and the error its commits fail with

    def consumer(self, **options: Any) -> FakeConsumer:
        return FakeConsumer(self.broker, **options)

    def producer(self, **options: Any) -> FakeProducer:
        p = FakeProducer(self.broker, **options)
        if options.get("transactional_id"):
            p.fail_commits, self.fail_commits = self.fail_commits, 0
            p.fail_with = self.fail_with
        self.producers.append(p)
        return p


async def run_until(service: Any, done: Any, timeout: float = 10.0) -> None:
    """Run a service until `done()` is true, then stop it cleanly; fails after `timeout` seconds."""
    task = asyncio.create_task(service.run())
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while not done():
            if task.done():
                task.result()
                raise AssertionError("the service stopped by itself")
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError("timed out")
            await asyncio.sleep(0.005)
    finally:
        service.stop()
        await asyncio.wait_for(task, 10)


_STORES = tempfile.TemporaryDirectory(prefix="sequencer-stores-")  # removed when the test run ends
_RESOURCES = store.Resources(cache_mib=8)


def with_stores(core: Sequencing, directory: Path | None = None, partitions: int = 4) -> Sequencing:
    """Give a Sequencing an empty local state store (ledger/sequencer/store.py: RocksDB on local disk)
    for each partition, under `directory` (default: a fresh temporary directory)."""
    where = directory if directory is not None else Path(tempfile.mkdtemp(dir=_STORES.name))
    for p in range(partitions):
        core.attach(p, store.PartitionStore(where, p, _RESOURCES))
    return core
