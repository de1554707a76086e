"""Exactly-once stream processing over aiokafka: read, transform, write and commit the input offsets
in ONE Kafka transaction per batch: the loop of the sequencer, the list keeper and the webhook
deliverer.

A subclass names its input topic, group and transactional id and implements `transform` (a thin
step that calls plain functions), or `write` when a batch's outputs depend on each other (the
sequencer needs the offsets of the ledger entries it has just sent). Hooks give it state restored
on assignment (`restore`, `forget`), slow work before the transaction (`prepare`), the outcome of
the transaction (`committed`, `aborted`), work between batches (`between_batches`) and at a clean
stop (`finish`). The Kafka clients come from a `KafkaClients` factory handed in by the caller.
Per batch (getmany): begin a transaction, send every output record, `send_offsets_to_transaction`
with the batch's next offsets, commit. A crash (kill -9) at
any point leaves either the whole batch (outputs and offsets) or nothing of it: readers with
isolation_level=read_committed never see an aborted output, and the restarted process reads the
batch again. A failed batch is aborted and read again after a pause (on a Kafka error, by a new
producer with the same transactional id); a broker away never stops the loop (retriable errors:
ledger/platform/retry.py). The consumer group uses
static membership, so a restarted process takes its partitions back at once; a new producer with
the same transactional id fences the old one.

Zombies and moving partitions (docs/architecture.md, "Fault tests"): a process whose producer is
fenced (a newer instance with its transactional id took over while it was paused) stops at once
and writes nothing more (`Fenced`), instead of making a new producer, which would fence its
successor in turn; it also finds out at every assignment, by an empty aborted transaction, before it
reads anything. A revocation waits for the batch in flight to commit or abort, so the next owner of
a partition never reads from offsets that an older transaction is about to move. A clean stop leaves
the group, so its partitions move to the other members at once rather than after the session timeout.

Records never handed out: with read_committed the consumer steps over the records of aborted
transactions and over transaction markers without returning them, so a batch's offsets (last record
+ 1) can stay behind the position for good when a partition ends with such records (a rebalance
storm leaves aborted transactions at the end of credit.events). When a poll brings nothing, the
positions of the partitions that moved past what this process committed are committed in a
transaction of offsets only (`_commit_skipped`): the group's committed offsets reach the end, and
its lag, as Kafka's own tools show it, reads 0 once everything is read.

Why not faust's exactly_once: docs/design-notes.md §2 and faust-streaming's open issues report duplicates on
rebalance and after a kill; this path is small enough to own (docs/architecture.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import IllegalStateError, KafkaError
from aiokafka.protocol.group import LeaveGroupRequest
from prometheus_client import Counter, Gauge, Histogram

from ledger.platform import logs, retry
from ledger.platform.kafka_util import KafkaClients, Record, caught_up, partition_of, send_grouped
from schemas import registry

LAG = Gauge("ledger_stream_lag_records", "Input records not yet processed", ["processor", "partition"])
PRODUCED = Counter("ledger_stream_records_produced_total", "Records written", ["processor", "topic"])
BATCH_SECONDS = Histogram("ledger_stream_batch_seconds", "Time to transform and commit one batch", ["processor"],
                          buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5))
ABORTED = Counter("ledger_stream_batches_aborted_total", "Batches aborted and read again", ["processor"])
UNDECODABLE = Counter("ledger_stream_undecodable_total", "Input records no schema can read (reported, skipped)",
                      ["processor"])
FENCED = Counter("ledger_stream_fenced_total", "Processes that stopped because a newer instance with their "
                 "transactional id took over (counted just before they exit)", ["processor"])
RESTORES_INTERRUPTED = Counter("ledger_stream_restores_interrupted_total",
                               "Partitions revoked during their state restore (restored again when assigned again)",
                               ["processor"])
FENCED_TEXT = "fenced by a newer instance with the same transactional id; this process writes nothing more and stops"


class Fenced(Exception):
    """A newer process took this one's place (its transactional id, or its static group membership):
    this one must write nothing more and stop."""


@dataclass(frozen=True)
class Out:
    topic: registry.Topic
    key: bytes
    value: bytes
    partition: int | None = None  # None: Kafka's default partitioner (murmur2) on the key
    headers: tuple[tuple[str, bytes], ...] = ()


class _Rebalance(ConsumerRebalanceListener):
    """Forget revoked partitions; pause newly assigned ones until the main loop has restored their
    state. The restore is not done here: aiokafka calls this inside the group join, before it starts
    the heartbeat again, so a restore longer than the session timeout would get the member expelled
    and the restore started over, for ever."""

    def __init__(self, svc: TransactionalProcessor) -> None:
        self.svc = svc

    async def on_partitions_revoked(self, revoked: Any) -> None:
        # the batch in flight commits (or aborts) first: the next owner of these partitions reads the
        # committed offsets, and must not read them while an older transaction is about to move them
        async with self.svc.in_flight:
            pass
        for tp in revoked:
            self.svc.ready.discard(tp.partition)
            self.svc.committed_offsets.pop(tp.partition, None)
            self.svc.to_restore.pop(tp.partition, None)
            self.svc.forget(tp.partition)

    async def on_partitions_assigned(self, assigned: Any) -> None:
        fresh = [tp for tp in assigned if tp.partition not in self.svc.ready]
        if fresh and self.svc.consumer is not None:
            self.svc.consumer.pause(*fresh)
            for tp in fresh:
                self.svc.assignments += 1
                self.svc.to_restore[tp.partition] = self.svc.assignments


class TransactionalProcessor:
    name = "processor"  # the service name (logs, metrics, "<name> running")
    source: registry.Topic
    group: str
    poll_ms = 100  # getmany's wait when nothing is there
    measure_lag = True  # ledger_stream_lag_records, once a second

    def __init__(self, kafka: KafkaClients, instance: str = "0", max_records: int = 2000) -> None:
        self.kafka = kafka
        self.instance = instance
        self.max_records = max_records
        self.log = logs.get(self.name)
        self._stop = asyncio.Event()
        self.fatal: BaseException | None = None
        self.ready: set[int] = set()  # partitions whose state is restored
        self.consumer: AIOKafkaConsumer | None = None
        # assigned and paused, state not yet restored: partition -> the assignment it came with
        self.to_restore: dict[int, int] = {}
        self.assignments = 0
        self._restore_backoff = retry.Backoff(1.0, 30.0)
        self.in_flight = asyncio.Lock()  # held while a batch is processed (a revocation waits for it)
        self.committed_offsets: dict[int, int] = {}  # partition -> the offset this process last committed
        self.skip_check_s = 1.0  # how often an idle loop looks for positions past the committed offsets

    def stop(self) -> None:
        self._stop.set()

    # ---------------------------------------------------------------- the subclass's part
    async def restore(self, partitions: list[int]) -> None:
        """Called when partitions are assigned, before any of their records is processed."""

    def forget(self, partition: int) -> None:
        """Called when a partition is revoked."""

    async def prepare(self, batch: dict[TopicPartition, list[Any]]) -> None:
        """Slow I/O for a batch (e.g. HTTP delivery), before its transaction opens."""

    def transform(self, partition: int, msg: Any) -> list[Out]:
        raise NotImplementedError

    async def write(self, producer: AIOKafkaProducer, batch: dict[TopicPartition, list[Any]]) -> dict[str, int]:
        """Inside the batch's transaction: send its output records (by default those of `transform`,
        record by record) and wait until they are acknowledged. Returns the count per topic."""
        produced: dict[str, int] = {}
        records: list[Record] = []
        for tp, msgs in batch.items():
            for m in msgs:
                for out in self._transform(tp.partition, m):
                    partition = out.partition if out.partition is not None else partition_of(out.key, out.topic.partitions)
                    records.append((out.topic.name, partition, out.key, out.value, list(out.headers)))
                    produced[out.topic.name] = produced.get(out.topic.name, 0) + 1
        if records:  # whole record batches per partition: a per-record send cost more than the transform
            await asyncio.gather(*await send_grouped(producer, records))
        return produced

    def committed(self) -> None:
        """The batch's transaction committed."""

    def aborted(self) -> None:
        """The batch's transaction was aborted: forget what it staged."""

    def between_batches(self) -> None:
        """Called after every poll, when everything in memory is committed."""

    async def finish(self) -> None:
        """A clean stop (not after a failed restore), before the clients are closed."""

    def consumer_options(self) -> dict[str, Any]:
        """The input consumer's options besides the group, isolation and offsets."""
        return {
            "fetch_max_wait_ms": 100,
            # Kafka's own default since 3.0: the partitions of a member killed with SIGKILL move to the
            # others after this (a clean stop leaves the group at once); restores run in the main loop
            # with the heartbeat going, and a restarted instance takes its partitions back at once
            # (static membership). It was 120 s, from when restores ran inside the group join; the
            # rebalance storm (bench/storm.py) found a killed member's partitions idle that long.
            "session_timeout_ms": 45_000, "rebalance_timeout_ms": 180_000,
        }

    def producer_options(self) -> dict[str, Any]:
        """The transactional producer's options besides its transactional id (docs/architecture.md, "Every
        wait on the write path" and "on the alert path")."""
        return {"linger_ms": 0, "max_batch_size": 262144, "request_timeout_ms": 30000,
                # retriable answers inside a transaction (CONCURRENT_TRANSACTIONS while the previous
                # transaction's markers are written, NOT_ENOUGH_REPLICAS on a busy single broker) are
                # retried after this; aiokafka's default of 100 ms stalled whole batches
                "retry_backoff_ms": 2}

    def running_fields(self) -> dict[str, Any]:
        """What the "<name> running" log line says besides the marker."""
        return {"instance": self.instance, "source": self.source.name}

    # ---------------------------------------------------------------- the loop
    async def run(self) -> None:
        consumer = self.kafka.consumer(
            group_id=self.group, enable_auto_commit=False, isolation_level="read_committed",
            auto_offset_reset="earliest", max_poll_records=self.max_records,
            # static membership: a restarted process with the same instance id takes its partitions
            # back at once instead of waiting for the old member's session to time out
            group_instance_id=f"{self.group}-{self.instance}", **self.consumer_options())
        producer = await self._new_producer()
        self.consumer = consumer
        consumer.subscribe([self.source.name], listener=_Rebalance(self))
        await retry.until_done(self.log, self.name, "consumer start", consumer.start, stopping=self._stop.is_set)
        self.log.info(f"{self.name} running", **self.running_fields())
        last_lag = last_skip = 0.0
        try:
            while not self._stop.is_set():
                if self.to_restore:
                    await self._restore_pending(consumer, producer)
                    continue
                batch = await retry.probe(self.log, self.name, "getmany",
                                          lambda: consumer.getmany(timeout_ms=self.poll_ms))
                if batch is None:  # the broker is away: wait a moment, then read on from the same positions
                    await asyncio.sleep(1)
                    continue
                if batch and not await self._process(consumer, producer, batch):
                    # the transaction failed on a Kafka error: its producer may be left in the middle
                    # of it (a commit that timed out), so a new one with the same transactional id
                    # takes over (it fences the old one and aborts whatever it left open)
                    await self._close_quietly(producer)
                    producer = await self._new_producer()
                if not batch and time.monotonic() - last_skip > self.skip_check_s:
                    last_skip = time.monotonic()
                    if not await self._commit_skipped(consumer, producer):
                        await self._close_quietly(producer)
                        producer = await self._new_producer()
                self.between_batches()
                if self.measure_lag and time.monotonic() - last_lag > 1.0:
                    last_lag = time.monotonic()
                    await self._measure_lag(consumer)
            if self.fatal is None:
                await self.finish()
                await self._leave_group(consumer)
        except Exception as exc:
            if not retry.fenced(exc):
                raise
            FENCED.labels(self.name).inc()
            self.log.error(FENCED_TEXT, transactional_id=self.transactional_id,
                           error=f"{type(exc).__name__}: {exc}"[:300])
            self.fatal = Fenced(f"the {self.name} ({self.transactional_id}) was {FENCED_TEXT}")
        finally:
            await consumer.stop()
            await self._close_quietly(producer)
            self.log.info(f"{self.name} stopped")
        if isinstance(self.fatal, Fenced):
            raise self.fatal
        if self.fatal is not None:
            raise RuntimeError(f"the {self.name} stopped because it could not restore its state") from self.fatal

    @property
    def transactional_id(self) -> str:
        return f"{self.group}-{self.instance}"

    async def _leave_group(self, consumer: AIOKafkaConsumer) -> None:
        """A clean stop leaves the group, so that the other members take its partitions at once. aiokafka
        0.14 sends no LeaveGroup for a static member (one with a group.instance.id), whose partitions
        would then wait for the session timeout; the broker removes a static member named by its member
        id as any other (and a restart with the same instance id joins again, with one rebalance)."""
        coordinator = getattr(consumer, "_coordinator", None)
        if coordinator is None or getattr(coordinator, "generation", -1) <= 0:
            return
        try:
            await asyncio.wait_for(coordinator._send_req(LeaveGroupRequest(self.group, coordinator.member_id)), 10)
        except Exception as exc:  # the session timeout will do it
            self.log.warning("leaving the group failed", error=f"{type(exc).__name__}: {exc}"[:200])

    async def _new_producer(self) -> AIOKafkaProducer:
        producer = self.kafka.producer(transactional_id=self.transactional_id, **self.producer_options())
        # a broker away: wait for it (retry.py)
        await retry.until_done(self.log, self.name, "producer start", producer.start, stopping=self._stop.is_set)
        return producer

    async def _close_quietly(self, producer: AIOKafkaProducer) -> None:
        try:
            await asyncio.wait_for(producer.stop(), 30)
        except Exception as exc:  # a broker away: the next producer fences this one anyway
            self.log.warning("producer stop failed", error=f"{type(exc).__name__}: {exc}"[:200])

    async def _restore_pending(self, consumer: AIOKafkaConsumer, producer: AIOKafkaProducer) -> None:
        """Restore the paused, newly assigned partitions, then resume them; a partition revoked during
        its restore (and maybe assigned again) is forgotten and restored again."""
        started_with = dict(self.to_restore)
        try:
            await self._still_ours(consumer, producer, started_with)
            await self.restore(sorted(started_with))
        except Exception as exc:  # without its state the processor must not write anything: stop
            if retry.fenced(exc):
                raise
            if retry.retriable(exc):  # unless the broker is only away: the partitions stay paused
                retry.note(self.log, self.name, "state restore", exc, self._restore_backoff.next)
                await asyncio.sleep(self._restore_backoff.take())
                return
            self.log.exception("state restore failed; stopping")
            self.fatal = exc
            self.stop()
            return
        self._restore_backoff.reset()
        for p, assignment in started_with.items():
            if self.to_restore.get(p) == assignment:
                del self.to_restore[p]
                self.ready.add(p)
            else:
                RESTORES_INTERRUPTED.labels(self.name).inc()
                self.log.info("partition revoked during its state restore; it is restored again if assigned again",
                              partition=p)
                self.forget(p)
        consumer.resume(*[tp for tp in consumer.assignment() if tp.partition in self.ready])

    async def _still_ours(self, consumer: AIOKafkaConsumer, producer: AIOKafkaProducer,
                          partitions: dict[int, int]) -> None:
        """Before newly assigned partitions are restored: is this process's producer still the newest
        with its transactional id? An empty transaction that the group's offsets join (the broker checks
        the producer's epoch) and that is aborted: nothing is written. A zombie (a process paused while a
        successor with its instance id took over) learns here that it is fenced (ProducerFenced), before
        it reads anything; without this, an idle zombie and its successor would take the group's
        partitions from each other for as long as it has nothing to write."""
        tps = [tp for tp in consumer.assignment() if tp.partition in partitions][:1]
        if not tps:
            return
        offsets = {tps[0]: await consumer.position(tps[0])}
        await producer.begin_transaction()
        try:
            await producer.send_offsets_to_transaction(offsets, self.group)
        except BaseException:
            with contextlib.suppress(Exception):  # (a fenced producer cannot abort: the broker has)
                await asyncio.wait_for(producer.abort_transaction(), 10)
            raise
        await producer.abort_transaction()

    async def _process(self, consumer: AIOKafkaConsumer, producer: AIOKafkaProducer, batch: Any) -> bool:
        """One batch in one transaction, holding `in_flight` (a revocation waits for it). False when it
        was aborted on a Kafka error: the producer must then be replaced. (An aborted batch is read
        again either way.) A fenced producer is not replaced: the error goes up and the process stops."""
        async with self.in_flight:
            return await self._process_batch(consumer, producer, batch)

    async def _process_batch(self, consumer: AIOKafkaConsumer, producer: AIOKafkaProducer, batch: Any) -> bool:
        unready = [tp for tp in batch if tp.partition not in self.ready]
        for tp in unready:  # fetched while the partition's state was being restored: read them later
            consumer.seek(tp, batch[tp][0].offset)
        batch = {tp: msgs for tp, msgs in batch.items() if tp not in unready}
        if not batch:
            await asyncio.sleep(0.05)
            return True
        started = time.monotonic()
        produced: dict[str, int] = {}
        try:
            await self.prepare(batch)
            async with producer.transaction():
                # the input offsets join the transaction while its records are written (the producer
                # adds the group to the transaction and commits its offsets between the produce
                # requests, instead of two round trips after the last one); all commit together
                offsets = asyncio.ensure_future(producer.send_offsets_to_transaction(
                    {tp: msgs[-1].offset + 1 for tp, msgs in batch.items() if msgs}, self.group))
                try:
                    produced = await self.write(producer, batch)
                finally:
                    await offsets
        except Exception as exc:
            self.aborted()
            ABORTED.labels(self.name).inc()
            for tp, msgs in batch.items():
                consumer.seek(tp, msgs[0].offset)
            if retry.fenced(exc):  # a successor has its transactional id: write nothing more
                raise
            records = sum(len(m) for m in batch.values())
            if retry.retriable(exc):  # a broker away or slow: no stack trace, the batch waits for it
                retry.note(self.log, self.name, "transaction", exc, 1.0)
                self.log.warning("batch aborted; it will be read again", records=records)
            else:
                self.log.exception("batch aborted; it will be read again", records=records)
            await asyncio.sleep(1)
            return not (retry.retriable(exc) or isinstance(exc, KafkaError))
        self.committed()
        self.committed_offsets.update({tp.partition: msgs[-1].offset + 1 for tp, msgs in batch.items() if msgs})
        for topic, n in produced.items():
            PRODUCED.labels(self.name, topic).inc(n)
        BATCH_SECONDS.labels(self.name).observe(time.monotonic() - started)
        self.log.debug("batch committed", records=sum(len(m) for m in batch.values()), produced=produced)
        return True

    async def _commit_skipped(self, consumer: AIOKafkaConsumer, producer: AIOKafkaProducer) -> bool:
        """After a poll that brought nothing: commit the position of every restored partition that moved
        past what this process committed (over aborted records and transaction markers, which are never
        handed out), in a transaction of offsets only. Under `in_flight`, so that a revocation waits for
        it and a partition is never committed for after it left. False when the transaction failed on a
        Kafka error (the producer must then be replaced); a fenced producer raises."""
        async with self.in_flight:
            moved: dict[TopicPartition, int] = {}
            try:
                for tp in consumer.assignment():
                    if tp.partition not in self.ready or tp.partition in self.to_restore:
                        continue
                    position = await consumer.position(tp)
                    known = self.committed_offsets.get(tp.partition)
                    if known is None:  # not committed by this process since it got the partition
                        known = self.committed_offsets[tp.partition] = await consumer.committed(tp) or 0
                    if position > known:
                        moved[tp] = position
                if not moved:
                    return True
                async with producer.transaction():
                    await producer.send_offsets_to_transaction(moved, self.group)
            except IllegalStateError:  # revoked meanwhile: its next owner commits it
                return True
            except Exception as exc:
                if retry.fenced(exc):
                    raise
                retry.note(self.log, self.name, "offsets past skipped records", exc, 1.0)
                return not (retry.retriable(exc) or isinstance(exc, KafkaError))
            self.committed_offsets.update({tp.partition: offset for tp, offset in moved.items()})
            self.log.debug("offsets moved past records never handed out",
                           offsets={tp.partition: offset for tp, offset in moved.items()})
            return True

    def _transform(self, partition: int, msg: Any) -> list[Out]:
        """`transform`, except that a record no schema can read (which the single writer never writes,
        so: corruption or a foreign producer) is reported and skipped instead of stopping the stream."""
        try:
            return self.transform(partition, msg)
        except registry.SchemaError as exc:
            UNDECODABLE.labels(self.name).inc()
            self.log.error("undecodable record skipped", topic=self.source.name, partition=partition,
                           offset=msg.offset, key=msg.key.decode(errors="replace") if msg.key else None,
                           reason=str(exc))
            return []

    async def _measure_lag(self, consumer: AIOKafkaConsumer) -> None:
        """ledger_stream_lag_records; a probe that fails on a retriable error (a broker away) is skipped,
        logged and counted: it never stops the processor."""
        tps = list(consumer.assignment())
        if not tps:
            return
        end = await retry.probe(self.log, self.name, "lag probe", lambda: consumer.end_offsets(tps))
        if end is None:
            return
        for tp in tps:
            # a rebalance may have taken the partition while this probe waited (the rebalance storm
            # found the keeper exiting on it): it is measured by its next owner
            if tp not in consumer.assignment():
                continue
            try:
                position = await consumer.position(tp)
            except IllegalStateError:  # revoked while its position was asked for
                continue
            LAG.labels(self.name, str(tp.partition)).set(max(0, end[tp] - position))


async def read_partitions(kafka: KafkaClients, topic: registry.Topic,
                          partitions: list[int]) -> dict[int, list[Any]]:
    """Every committed record of some partitions of a topic, per partition, oldest first."""
    c = kafka.consumer(group_id=None, enable_auto_commit=False, isolation_level="read_committed",
                       auto_offset_reset="earliest")
    await c.start()
    try:
        tps = [TopicPartition(topic.name, p) for p in partitions]
        c.assign(tps)
        await c.seek_to_beginning(*tps)
        end = await c.end_offsets(tps)
        out: dict[int, list[Any]] = {p: [] for p in partitions}
        while not await caught_up(c, end):
            for tp, msgs in (await c.getmany(*tps, timeout_ms=500)).items():
                out[tp.partition].extend(msgs)
        return out
    finally:
        await c.stop()
