"""Department supervision (faust-streaming): counts per department and China-local day and month of
what the ledger's topics show of each department's credit work, for its monthly assessment (目标考核).

    credit.outcomes + credit.events + credit.alerts --> one faust agent --> windowed tables
        day    (China-local days, 00:00-24:00 UTC+8)     ) key <topic>|<partition>|<department>
        month  (China-local calendar months)              ) value {"o": last offset, "c": {measure: n}}
        recent (5-minute buckets, for the charts)         key <topic>|<partition>
    --> PostgreSQL, schema supervision (counts, every second; samples of the services' lag, every 30 s)

What is counted is consumers/supervision/core.py (pure); how a month is scored is
ledger/domain/assessment.py with ledger/rules/department_assessment.v<N>.json; the dashboard shows
the assessment table, its CSV and the charts (projections/supervision.py, projections/web/).

The agent takes the records in batches (up to 2,000, or what came within 0.2 s): each record is counted
into the tables' stores, and each window the batch changed is written once to its changelog, in the
partition of the records it counts (one changelog record per window and batch instead of one per record
and table, which faust's producer sends one at a time: about 3,000 records/s on a busy 2-core machine).

At least once, and exact: faust's consumer can skip a record (docs/stack-notes.md), so the records of
each batch are checked first (`in_order`): per source partition, those at or below the last offset handled
are left out, and where the batch leaves an offset out, that stretch is read from the topic (reader.py)
and counted as the topic has it. A batch's records are acknowledged only once the broker has their table
writes; then the last offset of each of its source partitions goes to the table `progress`. The
consumer's position is that table's, not faust's (whose committed offset can run ahead of the tables, and
whose seeks race with its fetcher: `_ReadCommittedConsumer`): it commits the record after the last one
counted, and after every recovery reads each source partition again from there. A window value holds the
offset of the last record it counted, so a record delivered again is skipped; the rows in PostgreSQL only
ever move up to a value written (consumers/supervision/sink.py). A window whose end
lies well behind its partition's newest record is deleted from the table once written (a tombstone on
its changelog), so memory holds the recent periods only.

Run: python -m ops.run supervision [--metrics-port N]
Metrics: ledger_supervision_records_total{topic}, ledger_supervision_redelivered_total{topic},
ledger_supervision_unreadable_total{topic}, ledger_supervision_flushes_total{result},
ledger_supervision_rows_written_total, ledger_supervision_pending_windows,
ledger_supervision_lag_records{topic,partition}, ledger_supervision_samples_total{result},
ledger_supervision_gaps_checked_total{topic}, ledger_supervision_undelivered_total{topic}.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import faust
from faust.transport.drivers import aiokafka as faust_kafka
from faust.windows import Window
from mode import Seconds, want_seconds
from prometheus_client import Counter, Gauge

from consumers.supervision import core
from consumers.supervision.reader import Reader
from consumers.supervision.sink import Sink
from ledger.platform import kafka_util, logs
from ledger.platform.kafka_access import KafkaAccess
from schemas import registry

log = logs.get("supervision")

RECORDS = Counter("ledger_supervision_records_total", "Records of the source topics counted", ["topic"])
REDELIVERED = Counter("ledger_supervision_redelivered_total",
                     "Window updates skipped: the record was already in the window (delivered again)", ["topic"])
UNREADABLE = Counter("ledger_supervision_unreadable_total", "Records that could not be read (reported, skipped)",
                    ["topic"])
FLUSHES = Counter("ledger_supervision_flushes_total", "Writes of changed windows to PostgreSQL", ["result"])
ROWS = Counter("ledger_supervision_rows_written_total", "Count rows sent to PostgreSQL")
PENDING = Gauge("ledger_supervision_pending_windows", "Windows changed since their last write to PostgreSQL")
LAG = Gauge("ledger_supervision_lag_records", "Records of a source partition not yet counted", ["topic", "partition"])
GAPS = Counter("ledger_supervision_gaps_checked_total",
               "Batches of a source partition whose offsets left one out, checked against the topic", ["topic"])
MISSED = Counter("ledger_supervision_undelivered_total",
                 "Records faust's consumer did not deliver, read from the topic and counted", ["topic"])
SAMPLES = Counter("ledger_supervision_samples_total", "Lag samples of the services recorded", ["result"])

SOURCES = (registry.OUTCOMES, registry.EVENTS, registry.ALERTS)
TABLE_NAMES = {"day": "day", "month": "month", "5min": "recent"}
PRUNE_EVERY = 2_000  # records of a partition between two looks for windows to delete
BATCH, BATCH_WAIT = 2_000, 0.2  # records counted together, and how long a batch waits for more (seconds)
CHANGELOG_BUFFER = 2_000


class ChinaPeriods(Window):
    """A tumbling window of China-local calendar periods (days or months: months are not of one
    size, which faust's TumblingWindow needs) or of fixed buckets: one range per moment,
    core.PERIODS. Windows never expire by faust's wall-clock timer (`expires` None): the service
    deletes them itself once written."""

    def __init__(self, period: str) -> None:
        self.period = period
        self.expires = None

    def ranges(self, timestamp: float) -> list[tuple[float, float]]:
        return [core.period_of(self.period, timestamp)]

    def stale(self, timestamp: float, latest_timestamp: float) -> bool:
        return False

    def current(self, timestamp: float) -> tuple[float, float]:
        return core.period_of(self.period, timestamp)

    def delta(self, timestamp: float, d: Seconds) -> tuple[float, float]:
        return self.current(timestamp - want_seconds(d))

    def earliest(self, timestamp: float) -> tuple[float, float]:
        return self.current(timestamp)


class _ReadCommittedThread(faust_kafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # faust 0.15.3 reads read_committed only under exactly_once (transport/drivers/aiokafka.py
        # `_create_worker_consumer`); the aiokafka consumer takes its isolation level at start()
        consumer._isolation_level = "read_committed"
        return consumer


class _ReadCommittedConsumer(faust_kafka.Consumer):
    """faust's consumer, its position in each source partition kept by the progress table (`counted_to`):
    what it commits to the group is the record after the last one counted, whatever faust's own
    bookkeeping of acknowledged offsets says, and after every recovery it reads each source partition
    again from there. faust's own offsets can run ahead of the tables: its consumer counts the offsets
    between two records it reads as acknowledged (a transaction marker between them, and with it the
    next record), so after a SIGKILL records were lost that no process had counted."""

    def _new_consumer_thread(self) -> Any:
        return _ReadCommittedThread(self, loop=self.loop, beacon=self.beacon)

    def _counted(self, tps: Any) -> dict[Any, int]:
        """Per source partition among `tps`, the offset to read next (the last counted + 1), where known."""
        counted_to = getattr(self.app, "counted_to", None)
        out = {}
        for tp in tps:
            last = counted_to(tp) if counted_to is not None else None
            if last is not None:
                out[tp] = last + 1
        return out

    async def _commit(self, offsets: Mapping[Any, int]) -> bool:
        return await super()._commit(self._counted(offsets))

    async def commit_counted(self, since: dict[Any, int]) -> int:
        """Commit, per assigned source partition, the record after the last one counted, where it moved
        since the commit before (`since`, updated). Returns the partitions committed."""
        moved = {tp: o for tp, o in self._counted(self.assignment()).items() if since.get(tp) != o}
        if moved and await super()._commit(moved):
            since.update(moved)
        return len(moved)

    async def _seek(self, partition: Any, offset: int) -> None:
        # faust's thread-delegating consumer seeks the aiokafka consumer from this thread, while that
        # consumer's fetcher runs in its own: a position it sets after handing out records can undo the
        # seek (records were read twice and others skipped). The seek runs in the consumer's thread.
        await self._thread.call_thread(self._thread._ensure_consumer().seek, partition, offset)

    async def seek_to_committed(self) -> Mapping[Any, int]:
        """After every recovery faust puts each partition at its committed offset; a source partition
        whose counts the tables hold up to another offset (the process stopped before it committed
        them) is put at the record after that one."""
        committed = dict(await super().seek_to_committed())
        for tp, offset in self._counted(self.assignment()).items():
            if committed.get(tp) != offset:
                log.info("source partition read from the record after its last counted", topic=tp.topic,
                         partition=tp.partition, committed=committed.get(tp), counted_to=offset - 1)
                await self.seek(tp, offset)
                committed[tp] = offset
        return committed


class ReadCommitted(faust_kafka.Transport):
    """faust's aiokafka transport, its consumer reading committed records only. At least once, faust
    reads uncommitted ones too (it turns read_committed on only for exactly_once): an entry of a batch
    the sequencer aborted, which is in no ledger, would be counted (docs/stack-notes.md)."""

    Consumer = _ReadCommittedConsumer


class Supervision:
    """The faust app, its agent and tables, the writer of changed windows and the lag sampler."""

    def __init__(self, kafka: KafkaAccess, counter: core.Counter, sink: Sink,
                 sample: Callable[[], Awaitable[Mapping[str, float]]], now: Callable[[], datetime],
                 datadir: Path, flush_interval: float = 1.0, sample_interval: float = 30.0,
                 instance: str = "0", replication_factor: int = 1, min_insync_replicas: int = 1) -> None:
        self.kafka, self.counter, self.sink, self.sample, self.now = kafka, counter, sink, sample, now
        # the copies of its own topics: the cluster's (1 of 1 on one node, 2 of 3 on three)
        self.replication_factor, self.min_insync_replicas = replication_factor, min_insync_replicas
        self.flush_interval, self.sample_interval = flush_interval, sample_interval
        self._stop = asyncio.Event()
        self.dirty: set[tuple[str, str, tuple[float, float]]] = set()  # (period, key, window) not yet written
        self.writing: set[tuple[str, str, tuple[float, float]]] = set()  # taken by the write in progress
        # per (period, topic, partition): the windows in memory; per (topic, partition): the newest record
        self.windows: dict[tuple[str, str, int], set[tuple[str, tuple[float, float]]]] = defaultdict(set)
        self.newest: dict[tuple[str, int], float] = {}
        self.since_prune: dict[tuple[str, int], int] = defaultdict(int)
        self.app = faust.App(
            registry.SUPERVISION_APP, broker=f"kafka://{kafka.bootstrap_servers}", store="memory://",
            # its own principal (ledger-supervision: ops/access.py), SASL/SCRAM as every client of the ledger
            broker_credentials=faust.SASLCredentials(username=kafka.username, password=kafka.password,
                                                     mechanism=kafka.mechanism, ssl_context=kafka.ssl_context()),
            web_enabled=False, processing_guarantee="at_least_once", consumer_auto_offset_reset="earliest",
            topic_partitions=registry.EVENTS.partitions, topic_replication_factor=replication_factor,
            table_standby_replicas=0,
            datadir=str(datadir),
            # static membership: a process started again after a crash takes its partitions back at once,
            # instead of waiting for the dead member's session to time out (60 s)
            consumer_group_instance_id=f"{registry.SUPERVISION_APP}-{instance}")
        self.app.transport = ReadCommitted(self.app.conf.broker_consumer, self.app)
        # the table writes wait for the changelog when more than this many are unsent (faust's default of
        # 100 stalls a catch-up, three writes per record, with a warning each time)
        self.app.producer.buffer.max_messages = CHANGELOG_BUFFER
        self.tables: dict[str, Any] = {}
        for period, name in TABLE_NAMES.items():
            changelog = registry.SUPERVISION_CHANGELOGS[period]
            table = self.app.Table(name, default=dict, partitions=changelog.partitions,
                                   extra_topic_configs=dict(changelog.configs), help=changelog.doc)
            table.using_window(ChinaPeriods(period))  # a windowed table: its keys are (key, (start, end))
            self.tables[period] = table
            table.on_recover(self._recovered(period))
            # the registry names the topic; faust derives it from the app id and the table name
            assert table.changelog_topic_name == changelog.name, (table.changelog_topic_name, changelog.name)
        # per source partition the last offset whose counts the broker holds, written after them (`mark`)
        self.progress = self.app.Table("progress", default=int, partitions=registry.SUPERVISION_PROGRESS.partitions,
                                       extra_topic_configs=dict(registry.SUPERVISION_PROGRESS.configs),
                                       help=registry.SUPERVISION_PROGRESS.doc)
        assert self.progress.changelog_topic_name == registry.SUPERVISION_PROGRESS.name
        self.progress.on_recover(self._progress_recovered)
        self.app.counted_to = self.counted_to  # read by the consumer: what it commits, where it starts
        # per source partition, the last offset handled in this process (in_order), and the topics' reader
        self.last: dict[tuple[str, int], int] = {}
        self.reader = Reader(kafka, [(t.name, p) for t in SOURCES for p in range(t.partitions)])
        self.committed: dict[Any, int] = {}  # per source partition, the offset committed last
        channel = self.app.topic(*(t.name for t in SOURCES), key_type=bytes, value_type=bytes,
                                 key_serializer="raw", value_serializer="raw")
        self.app.agent(channel, name="supervision-count")(self._agent)

    # ----------------------------------------------------------------------- the agent
    async def _agent(self, stream: Any) -> None:
        # faust acknowledges a batch's records once this body has returned, and may commit their offsets
        # at once. Its commit flushes its producer first, but that flush gives up after 0.1 s without a
        # message sent (faust/transport/producer.py `flush_atmost`), so on a busy machine an offset could
        # be committed before the changelog writes of the records below it were sent, and a stop or a
        # crash then would lose those counts for ever (the database keeps the higher value it was given,
        # the changelog the lower one, and counting goes on from the lower). So the body returns only once
        # the broker has every changelog write of its batch.
        async for events in stream.take_events(BATCH, within=BATCH_WAIT):
            try:
                messages = await self.in_order([event.message for event in events])
                await self.written(self.count(messages))
                await self.written(self.mark(messages))  # only once the counts are there
            except Exception as exc:  # noqa: BLE001
                # faust would acknowledge the records of a body that raised: they would never be counted. A
                # record the counter cannot read is a `problem`, never an exception, so this is the tables
                # or the broker failing: the process stops at once, before faust can commit the records'
                # offsets, and reads them again when it is started again (the stack's supervisor, systemd).
                log.critical("counting records failed; stopping so that they are read again at the restart",
                             records=len(events), error=f"{type(exc).__name__}: {exc}")
                sys.stderr.flush()
                os._exit(70)

    async def in_order(self, messages: list[Any]) -> list[Any]:
        """The records of a batch to count, per source partition in offset order after the last one
        handled: a record delivered again is left out, and where the batch leaves an offset out, that
        stretch of the partition is read from the topic and counted as the topic has it. faust's consumer
        can skip a record (a seek racing its fetcher, a batch cut short by a rebalance while its position
        has moved on: docs/stack-notes.md); an offset left out is most often a transaction's marker."""
        by_source: dict[tuple[str, int], list[Any]] = defaultdict(list)
        for m in messages:
            by_source[(m.topic, m.partition)].append(m)
        out: list[Any] = []
        for (topic, partition), delivered in by_source.items():
            last = self.last.get((topic, partition))
            if last is None:  # since the start or a recovery: the progress table's
                counted = self._progress(topic, partition)
                last = -1 if counted is None else counted
            keep, gap = core.in_order(last, [m.offset for m in delivered])
            fresh = [delivered[i] for i in keep]
            if gap:
                GAPS.labels(topic).inc()
                read = await self.reader.read(topic, partition, last + 1, fresh[-1].offset + 1)
                missed = sorted({m.offset for m in read} - {m.offset for m in fresh})
                if missed:
                    MISSED.labels(topic).inc(len(missed))
                    log.warning("records the consumer did not deliver were read from the topic and counted",
                                topic=topic, partition=partition, offsets=missed[:20], records=len(missed))
                    fresh = read
            if fresh:
                self.last[(topic, partition)] = fresh[-1].offset
            out += fresh
        return out

    def count(self, messages: list[Any]) -> list[Awaitable[Any]]:
        """Count a batch of records into every table, then write each window it changed once to its
        changelog, in the partition of the records it counts (the tables' keys carry it). Returns the
        changelog writes (and any tombstones of windows pruned), each done once the broker has it."""
        changed: dict[tuple[str, str, tuple[float, float]], int] = {}
        for message in messages:
            self._count_one(message, changed)
        sent = []
        for (period, key, window), partition in changed.items():
            table = self.tables[period]
            sent.append(table.send_changelog(partition, (key, window), table.data[(key, window)]))
        for topic, partition in {(m.topic, m.partition) for m in messages}:
            if self.since_prune[(topic, partition)] >= PRUNE_EVERY:
                self.since_prune[(topic, partition)] = 0
                sent += self.prune(topic, partition)
        return sent

    def mark(self, messages: list[Any]) -> list[Awaitable[Any]]:
        """Record, per source partition of a batch, its last offset in the progress table (to be sent
        once the broker has the batch's counts). Returns the changelog writes."""
        last: dict[tuple[str, int], int] = {}
        for m in messages:
            last[(m.topic, m.partition)] = max(last.get((m.topic, m.partition), -1), m.offset)
        sent = []
        for (topic, partition), offset in last.items():
            key = core.key_of(topic, partition)
            offset = max(offset, self.progress.data.get(key, -1))  # records delivered again: never back
            self.progress.data[key] = offset
            sent.append(self.progress.send_changelog(partition, key, offset))
        return sent

    def counted_to(self, tp: Any) -> int | None:
        """The last offset of a source partition whose counts the tables hold (None: not known)."""
        return self._progress(tp.topic, tp.partition)

    def _progress(self, topic: str, partition: int) -> int | None:
        value = self.progress.data.get(core.key_of(topic, partition))
        return None if value is None else int(value)

    async def commit(self) -> None:
        """Commit to the group, per source partition, the record after the last one counted (a process
        started again begins there; faust's own commits are the same offsets, `_ReadCommittedConsumer`)."""
        try:
            await self.app.consumer.commit_counted(self.committed)
        except Exception as exc:  # noqa: BLE001 - the next commit tries again; a restart reads a little more
            log.warning("committing the counted offsets failed; trying again", error=f"{type(exc).__name__}: {exc}")

    @staticmethod
    async def written(sent: list[Awaitable[Any]]) -> None:
        """Wait until the broker has every changelog write of a batch; a write that failed raises."""
        if sent:
            await asyncio.gather(*sent)

    def _count_one(self, message: Any, changed: dict[tuple[str, str, tuple[float, float]], int]) -> None:
        topic, partition = message.topic, message.partition
        record = core.Record(topic, partition, message.offset, message.timestamp, message.key, message.value,
                             dict(message.headers or ()))
        counted = self.counter.count(record)
        RECORDS.labels(topic).inc()
        if counted.problem:
            UNREADABLE.labels(topic).inc()
            log.warning("record not readable; counted as such and passed over", topic=topic, partition=partition,
                        offset=message.offset, problem=counted.problem)
        source = (topic, partition)
        self.newest[source] = max(self.newest.get(source, 0.0), record.timestamp)
        self.since_prune[source] += 1
        for period, table in self.tables.items():
            measures = counted.recent if period == "5min" else counted.measures
            if not measures:
                continue
            key = core.key_of(topic, partition, None if period == "5min" else counted.department)
            window = core.period_of(period, record.timestamp)
            value = core.add(table.data.get((key, window)), message.offset, measures)
            if value is None:
                REDELIVERED.labels(topic).inc()
                continue
            table.data[(key, window)] = value  # the store; its changelog record is sent once per batch
            changed[(period, key, window)] = partition
            self.dirty.add((period, key, window))
            self.windows[(period, topic, partition)].add((key, window))

    def prune(self, topic: str, partition: int) -> list[Awaitable[Any]]:
        """Delete this source partition's windows that are written and far behind its newest record,
        with a tombstone on their changelog partition. Returns the tombstones' writes."""
        newest, sent = self.newest.get((topic, partition), 0.0), []
        for period, table in self.tables.items():
            held = self.windows[(period, topic, partition)]
            for key, window in core.done_windows(period, held, newest, self.dirty | self.writing):
                table.data.pop((key, window), None)
                sent.append(table.send_changelog(partition, (key, window), None, value_serializer="raw"))
                held.discard((key, window))
        return sent

    async def _progress_recovered(self) -> None:
        """After a recovery the partitions may have moved: what was handled is the progress table's again."""
        self.last.clear()

    def _recovered(self, period: str) -> Callable[[], Awaitable[None]]:
        async def recovered() -> None:
            """After a rebalance's recovery from the changelog: every window held is written again
            (one written before a crash may not have reached PostgreSQL), and indexed."""
            table = self.tables[period]
            held = 0
            for period_key in [k for k in self.windows if k[0] == period]:
                self.windows[period_key].clear()
            for item in list(table.data.keys()):
                key, window = item[0], tuple(item[1])
                topic, partition, _ = core.source_of(key)
                self.windows[(period, topic, partition)].add((key, window))
                self.dirty.add((period, key, window))
                held += 1
            log.info("table recovered from its changelog", table=TABLE_NAMES[period], windows=held)
        return recovered

    # ----------------------------------------------------------------------- PostgreSQL
    async def flush(self) -> int:
        """Write every changed window's value (all of one write in one transaction); on failure the
        windows stay changed and the next flush writes them."""
        if not self.dirty:
            PENDING.set(0)
            return 0
        self.writing, self.dirty = self.dirty, set()
        try:
            rows: list[tuple[str, float, str, str, str, int, int]] = []
            for period, key, window in self.writing:
                value = self.tables[period].data.get((key, window))
                if value:
                    rows += core.rows(period, window[0], key, value)
            await self.sink.write(rows)
        except Exception as exc:  # noqa: BLE001 - the database away: keep the windows for the next flush
            FLUSHES.labels("failed").inc()
            self.dirty |= self.writing
            log.warning("writing the counts to PostgreSQL failed; trying again", error=f"{type(exc).__name__}: {exc}",
                        windows=len(self.writing))
            return 0
        finally:
            self.writing = set()
            PENDING.set(len(self.dirty))
        FLUSHES.labels("ok").inc()
        ROWS.inc(len(rows))
        return len(rows)

    async def record_sample(self) -> None:
        try:
            values = dict(await self.sample())
            values.update(await self.lag_series())
            await self.sink.sample(self.now(), values)
            SAMPLES.labels("ok").inc()
        except Exception as exc:  # noqa: BLE001 - a sample missed is a gap in a chart, nothing more
            SAMPLES.labels("failed").inc()
            log.warning("recording the lag sample failed", error=f"{type(exc).__name__}: {exc}")

    async def lag_series(self) -> dict[str, float]:
        """This process's own lag: offsets of its assigned partitions not yet read (the gauges, and the
        sum as the sample `supervision_lag_records`)."""
        total = 0.0
        consumer = self.app.consumer
        for tp in consumer.assignment():
            if tp.topic not in {t.name for t in SOURCES}:
                continue
            with contextlib.suppress(Exception):
                highwater, position = consumer.highwater(tp), await consumer.position(tp)
                if highwater is None or position is None or highwater < 0:
                    continue
                lag = max(0, highwater - position)
                LAG.labels(tp.topic, str(tp.partition)).set(lag)
                total += lag
        return {"supervision_lag_records": total}

    # ----------------------------------------------------------------------- running
    async def declare(self) -> None:
        """The supervision's topics, created as the registry names them before faust starts (faust
        would create them itself, and may then check a changelog's partitions before they show:
        PartitionsMismatch with 0 partitions), each with as many partitions as the topics it counts."""
        topics = [*registry.SUPERVISION_CHANGELOGS.values(), registry.SUPERVISION_PROGRESS, registry.SUPERVISION_LEADER]
        created, counts = await kafka_util.ensure_topics(self.kafka, topics, self.replication_factor,
                                                         self.min_insync_replicas)
        wrong = [f"{t.name} has {counts.get(t.name)} partitions, not {t.partitions}"
                 for t in topics if counts.get(t.name) != t.partitions]
        if wrong:
            raise RuntimeError("the supervision's topics do not have the registry's partitions: " + "; ".join(wrong)
                               + ". Delete them (they are rebuilt from the ledger's topics) or restore the count.")
        if created:
            log.info("created the supervision's topics", topics=created)

    def stop(self) -> None:
        self._stop.set()

    async def _every(self, seconds: float, work: Callable[[], Awaitable[Any]], at_once: bool = False) -> None:
        if at_once:
            await work()
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), seconds)
            if not self._stop.is_set():
                await work()

    async def run(self) -> None:
        for name in ("faust", "mode"):  # their INFO lines are tables drawn for a terminal
            logging.getLogger(name).setLevel(logging.WARNING)
        started = time.monotonic()
        await self.declare()
        await self.reader.start()
        await self.app.start()
        log.info("supervision running", app=registry.SUPERVISION_APP, topics=[t.name for t in SOURCES],
                 tables={TABLE_NAMES[p]: c.name for p, c in registry.SUPERVISION_CHANGELOGS.items()},
                 seconds=round(time.monotonic() - started, 2))
        loops = [asyncio.create_task(self._every(self.flush_interval, self.flush)),
                 asyncio.create_task(self._every(self.flush_interval, self.commit)),
                 asyncio.create_task(self._every(self.sample_interval, self.record_sample, at_once=True))]
        try:
            await self._stop.wait()
        finally:
            log.info("supervision stopping")
            for task in loops:
                task.cancel()
            for task in loops:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await self.commit()
            await self.app.stop()
            await self.reader.stop()
            await self.flush()
            await self.sink.close()
