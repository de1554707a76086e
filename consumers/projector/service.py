"""The projector: credit.events -> the PostgreSQL read models, in batches, once per (entity, version).

Per batch (aiokafka getmany): load the committed fold state of the entities it touches, fold it with
the domain's evolve (projections/rows.py), write every table set-based (projections/views.py) and the
new positions, all in ONE PostgreSQL transaction (`PgViews`, the projector's sink; the batch loop in
`Projector` sees only the sink's four operations, so the unit tests give it an in-memory one). The
batches overlap: while batch n is written (a task on the sink's writing connection, PostgreSQL's
core busy), batch n+1 is loaded on the reading connection and folded in a thread, starting from the
states batch n leaves behind (`Loaded.after`), and batch n+2 is fetched; batch n+1's write starts
once batch n is committed. A kill at any moment loses nothing and doubles nothing: every batch
commits its rows with its positions. The consumer has no group: it seeks to the positions stored
with the views. A lost database connection (PostgreSQL restarted) is retried with
a fresh connection from the stored positions; a batch the database refuses for want of room (a
full disk) pauses the projector, which says why (log, `ledger_projection_paused{reason}`) and tries
again until there is room; a record that cannot be decoded is quarantined with
its provenance and its entity held back, while the other entities flow.

Run: python -m ops.run projector [--schema views] [--partitions P,Q] [--metrics-port 9102] (wired in ops/root.py)
"""

from __future__ import annotations

import argparse
import asyncio
import time
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import psycopg
from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client import Counter, Gauge

from ledger.platform import logs, retry
from ledger.platform.clock import SYSTEM
from ledger.platform.kafka_util import KafkaClients, caught_up
from projections import schema, views
from projections.rows import Folder, Incoming, Loaded, Ops, entity_keys
from schemas import registry

log = logs.get("projector")

PROJECTED = Counter("ledger_projected_events_total", "Ledger entries applied to the views")
SKIPPED = Counter("ledger_projection_skipped_total", "Ledger entries already applied (replays)")
QUARANTINED = Counter("ledger_projection_quarantined_total", "Records quarantined by the projector", ["reason"])
LAG_RECORDS = Gauge("ledger_projection_lag_records", "Records of credit.events not yet projected", ["partition"])
LAG_SECONDS = Gauge("ledger_projection_lag_seconds", "While records wait: seconds since the last projected record "
                    "was appended to the ledger (an upper bound of the lag); 0 when caught up", ["partition"])
PROVISIONAL = Counter("ledger_provisional_deadlines_total",
                      "Deadlines computed over a year whose holiday notice is not in the calendar file yet "
                      "(marked 暂定, recomputed when the notice is added)", ["table"])
RETRIES = Counter("ledger_projection_db_retries_total", "Batches retried after a database error")
PAUSED = Gauge("ledger_projection_paused", "1 while the projector waits because the database cannot store a batch "
               "(reason: disk_full, the database's disk is full; insufficient_resources, another resource)",
               ["reason"])
PAUSES = Counter("ledger_projection_pauses_total", "Times the projector paused because the database could not store "
                 "a batch", ["reason"])
# the batch was refused for want of room (SQLSTATE class 53): nothing of it is stored, and the same batch
# succeeds once there is room again; the projector waits and asks again, it does not exit
PAUSE_FIRST, PAUSE_MOST = 2.0, 30.0


class Sink(Protocol):
    """Where the projector writes: the views with their stored positions. A connection error
    (psycopg.OperationalError or InterfaceError) means: nothing of the batch was stored. `load` reads
    what is committed, with the views' generation; `write` stores one batch's rows with its positions,
    in one transaction, if the views are still of the generation the batch was loaded in (else it
    raises ViewsSwitched and stores nothing)."""

    async def positions(self, topic: str) -> dict[int, int]: ...

    async def load(self, keys: set[str]) -> Loaded: ...

    async def write(self, ops: Ops, topic: str, generation: int) -> None: ...

    async def close(self) -> None: ...


class ViewsSwitched(Exception):
    """A rebuild's switch-over came between a batch's load and its write: the batch is read again."""


class PgViews:
    """The views of one PostgreSQL schema on two connections: one reads the committed states of a
    batch's entities while the other writes the batch before it; a batch's rows and its positions are
    written in ONE transaction."""

    def __init__(self, conn: psycopg.AsyncConnection[Any], reader: psycopg.AsyncConnection[Any],
                 takes_switch_lock: bool = True) -> None:
        self.conn = conn
        self.reader = reader
        self.takes_switch_lock = takes_switch_lock

    @classmethod
    async def connect(cls, dsn: str, schema_name: str, takes_switch_lock: bool = True) -> PgViews:
        conns = []
        try:
            for _ in range(2):
                conns.append(await psycopg.AsyncConnection.connect(dsn, options=f"-c search_path={schema_name}",
                                                                   prepare_threshold=None))
            await views.prepare(conns[0])
        except BaseException:
            for c in conns:
                await c.close()
            raise
        return cls(conns[0], conns[1], takes_switch_lock)

    async def positions(self, topic: str) -> dict[int, int]:
        cur = await self.conn.execute("select partition, next_offset from positions where topic = %s", (topic,))
        rows = await cur.fetchall()
        await self.conn.commit()
        return {p: o for p, o in rows}

    async def load(self, keys: set[str]) -> Loaded:
        async with self.reader.transaction():
            if not self.takes_switch_lock:  # a rebuild's schema is never switched under its projector
                return await views.load(self.reader, keys)
            await self.reader.execute("select pg_advisory_xact_lock_shared(%s)", (schema.SWITCH_LOCK,))
            return await views.load(self.reader, keys, await views.generation(self.reader))

    async def write(self, ops: Ops, topic: str, generation: int) -> None:
        async with self.conn.transaction():
            if self.takes_switch_lock:  # a rebuild's switch-over takes it exclusively: no batch straddles a swap
                await self.conn.execute("select pg_advisory_xact_lock_shared(%s)", (schema.SWITCH_LOCK,))
                if await views.generation(self.conn) != generation:
                    raise ViewsSwitched(f"the views were switched over after generation {generation}")
            await views.write(self.conn, ops, topic)

    async def close(self) -> None:
        await self.conn.close()
        await self.reader.close()


@dataclass
class Folding:
    """A batch being folded (in a thread) while the one before is written and the next one fetched."""

    future: asyncio.Future[tuple[Ops, float]]  # its row operations and the fold's seconds
    generation: int  # of the views it was loaded in
    records: int
    started: float
    load_s: float
    tail: dict[int, tuple[int, datetime]]  # the positions after the batch read (`Ops.positions` of all of it)


def _timed_fold(folder: Folder, incoming: list[Incoming], loaded: Loaded) -> tuple[Ops, float]:
    started = time.monotonic()
    return folder.fold(incoming, loaded), time.monotonic() - started


@dataclass
class Written:
    """A batch being written while the next one is folded."""

    task: asyncio.Task[float]  # its seconds of writing
    ops: Ops
    generation: int  # of the views it was loaded in
    records: int
    started: float
    timings: dict[str, float]


class Projector:
    def __init__(self, kafka: KafkaClients, folder: Folder, dsn: str, schema_name: str = schema.LIVE,
                 max_records: int = 5000, takes_switch_lock: bool = True, topic: registry.Topic = registry.EVENTS,
                 partitions: list[int] | None = None, connect: Callable[[], Awaitable[Sink]] | None = None,
                 shard: tuple[int, int] = (0, 1)) -> None:
        self.kafka = kafka
        self.dsn = dsn
        self.topic = topic  # the ledger topic to read (benchmarks read a copy: registry.BENCH_EVENTS)
        # the partitions this projector owns (default: all). An entity lives in one partition and every
        # row of the views belongs to one entity (positions: to one partition), so projectors of
        # disjoint partition sets can fill one schema side by side (consumers.projector.rebuild --workers).
        self.partitions = sorted(set(partitions)) if partitions is not None else list(range(topic.partitions))
        bad = [p for p in self.partitions if not 0 <= p < topic.partitions]
        if bad or not self.partitions:
            raise ValueError(f"partitions: {topic.name} has partitions 0-{topic.partitions - 1}, got {partitions}")
        # (i, n): of the records it reads, fold only those of the entities whose key falls to shard i of
        # n (crc32 modulo n; records without a key to shard 0). A rebuild with more workers than
        # partitions gives n workers the same partitions, each a shard: an entity and all its rows
        # still belong to one worker. (0, 1), the default: every record.
        index, count = shard
        if not 0 <= index < count:
            raise ValueError(f"shard: an index from 0 to count - 1, got {shard}")
        self.shard = shard
        self.schema = schema_name
        self.takes_switch_lock = takes_switch_lock
        self.records_read = 0  # progress, for rebuilds
        self.max_records = max_records
        self.folder = folder
        # the sink of each (re)connection: by default the views of `schema_name` in PostgreSQL
        self.connect = connect or (lambda: PgViews.connect(self.dsn, self.schema, self.takes_switch_lock))
        self._stop = asyncio.Event()
        self._replay = False
        self._pause: str | None = None  # why the projector waits for the database (None: it does not)
        self._pause_backoff = retry.Backoff(PAUSE_FIRST, PAUSE_MOST)
        self._folding: Folding | None = None  # the batch being folded while the one before is written
        self._writing: Written | None = None  # the batch being written while the next one is folded
        self._applied = 0

    def stop(self) -> None:
        self._stop.set()

    def replay_from_start(self) -> None:
        """Read the whole ledger again (every record is then delivered a second time)."""
        self._replay = True

    async def _seek(self, consumer: AIOKafkaConsumer, tps: list[TopicPartition], stored: dict[int, int]) -> None:
        for tp in tps:
            if tp.partition in stored:
                consumer.seek(tp, stored[tp.partition])
            else:
                await consumer.seek_to_beginning(tp)

    async def run(self, until: dict[int, int] | None = None) -> int:
        """Project until stopped, or (with `until`: partition -> offset) until those offsets are reached.
        Returns the number of events applied."""
        topic = self.topic.name
        consumer = self.kafka.consumer(group_id=None, enable_auto_commit=False, isolation_level="read_committed", auto_offset_reset="earliest",
                                    max_poll_records=self.max_records, fetch_max_bytes=64 * 1024 * 1024,
                                    # 1 MiB (the default) is about 1,300 entries: full batches need more
                                    max_partition_fetch_bytes=8 * 1024 * 1024)
        await retry.until_done(log, "projector", "consumer start", consumer.start, stopping=self._stop.is_set)
        tps = [TopicPartition(topic, p) for p in self.partitions]
        consumer.assign(tps)
        if until is not None:  # only the partitions of this projector
            until = {p: o for p, o in until.items() if p in self.partitions}
        self._applied = 0  # events of the batches committed by this run
        conn = await self.connect()
        try:
            stored = await conn.positions(topic)
            await self._seek(consumer, tps, stored)
            log.info("projector running", schema=self.schema, partitions=self.partitions,
                     positions={p: o for p, o in stored.items() if p in self.partitions})
            while not self._stop.is_set():
                if self._replay:
                    self._replay = False
                    await consumer.seek_to_beginning(*tps)
                    log.info("replaying the whole ledger")
                batch: Any = {}
                try:
                    if until is not None and await caught_up(consumer, {TopicPartition(topic, p): o
                                                                        for p, o in until.items()}):
                        await self._flush(conn)  # the last batch is committed before returning
                        break
                    batch = await retry.probe(log, "projector", "getmany", lambda: consumer.getmany(timeout_ms=200))
                    if batch is None:  # the broker is away: read on from the same positions in a moment
                        await asyncio.sleep(1)
                        continue
                    if batch:
                        if until is not None:  # never past the requested offsets
                            batch = {tp: [m for m in msgs if m.offset < until.get(tp.partition, 0)]
                                     for tp, msgs in batch.items()}
                        await self._apply(conn, batch)
                    elif self._folding is not None or self._writing is not None:
                        await self._flush(conn)  # nothing new: what was read is committed now
                except (psycopg.OperationalError, psycopg.InterfaceError, ViewsSwitched) as exc:
                    # nothing of the failed batch is stored, nor of those read after it: they are read
                    # again from the positions stored in the database
                    await self._drain()
                    if no_room(exc):  # a full disk: wait for room, on the same connection
                        await self._paused(consumer, tps, conn, exc)
                    else:
                        conn = await self._recover(consumer, tps, conn, exc)
                    continue
                await self._measure_lag(consumer, tps, batch)
            await self._drain()  # stopped: the batch being written is committed (or not) first
        finally:
            if self._writing is not None:  # the projector itself fails: its last write is abandoned
                self._writing.task.cancel()
                self._writing = None
            self._folding = None  # and what is being folded (the thread ends by itself)
            await conn.close()
            await consumer.stop()
        return self._applied

    async def _paused(self, consumer: AIOKafkaConsumer, tps: list[TopicPartition], conn: Sink,
                      exc: Exception) -> None:
        """The database refused the batch for want of room (its disk is full: SQLSTATE 53100; or
        another resource, class 53): nothing of the batch was stored. Say so once (log, gauge, counter),
        wait (2 s, doubling to 30 s) and read the batch again from the stored positions; the projector
        resumes by itself once the database has room."""
        reason = "disk_full" if getattr(exc, "sqlstate", None) == "53100" else "insufficient_resources"
        if self._pause is None:
            self._pause = reason
            PAUSED.labels(reason).set(1)
            PAUSES.labels(reason).inc()
            log.error("the database cannot store the projection; paused until it can (it resumes by itself)",
                      reason=reason, sqlstate=getattr(exc, "sqlstate", None), error=str(exc).strip()[:300],
                      positions=await self._positions_or_none(conn))
        delay = self._pause_backoff.take()
        log.warning("projection paused; trying the batch again", reason=reason, next_attempt_in_s=delay)
        await asyncio.sleep(delay)
        try:
            await self._seek(consumer, tps, await conn.positions(self.topic.name))
        except (psycopg.OperationalError, psycopg.InterfaceError):
            pass  # the next batch finds out and recovers the connection

    def _resumed(self) -> None:
        if self._pause is not None:
            log.info("projection resumed: the database stores the batches again", reason=self._pause)
            PAUSED.labels(self._pause).set(0)
            self._pause = None
        self._pause_backoff.reset()

    async def _positions_or_none(self, conn: Sink) -> dict[int, int] | None:
        try:
            return await conn.positions(self.topic.name)
        except (psycopg.OperationalError, psycopg.InterfaceError):
            return None

    async def _recover(self, consumer: AIOKafkaConsumer, tps: list[TopicPartition],
                       conn: Sink, exc: Exception) -> Sink:
        """The database went away mid-batch: nothing of the batch was committed. Reconnect (with
        back-off) and go on from the positions stored in the database."""
        RETRIES.inc()
        log.warning("database unavailable; retrying from the stored positions", error=str(exc).strip()[:200])
        try:
            await conn.close()
        except Exception:  # the connection is already broken
            pass
        delay = 0.5
        while not self._stop.is_set():
            try:
                conn = await self.connect()
                await self._seek(consumer, tps, await conn.positions(self.topic.name))
                log.info("database reachable again")
                return conn
            except (psycopg.OperationalError, psycopg.InterfaceError):
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        return conn

    async def _apply(self, conn: Sink, batch: Any) -> None:
        """Start folding a batch. First the batch folded before it goes to be written, once the one
        before that is committed (`_advance`); then this batch's entities are read and it is folded in
        a thread, from the committed states with those the batch being written leaves behind (each
        batch sees every batch before it), while that batch is written and the next one is fetched."""
        index, count = self.shard
        incoming = [Incoming(tp.partition, m.offset, m.key, m.value, m.timestamp)
                    for tp, msgs in batch.items() for m in msgs
                    if count == 1 or in_shard(m.key, index, count)]
        # the positions reached are those of every record read, folded here or by another shard's worker
        tail = {tp.partition: (msgs[-1].offset + 1, datetime.fromtimestamp(msgs[-1].timestamp / 1000, UTC))
                for tp, msgs in batch.items() if msgs}
        if not tail:
            return
        await self._advance(conn)
        started = time.monotonic()
        keys = entity_keys(incoming)
        before = self._writing
        # the entities the batch being written touched are not read: their states are those it leaves behind
        loaded = await conn.load(keys - before.ops.final_states.keys() if before is not None else keys)
        if before is not None:
            if before.generation != loaded.generation:
                raise ViewsSwitched("the views were switched over while the batch before was being written")
            loaded = loaded.after(before.ops, keys)
        self._folding = Folding(asyncio.ensure_future(asyncio.to_thread(_timed_fold, self.folder, incoming, loaded)),
                                loaded.generation, len(incoming), started, time.monotonic() - started, tail)

    async def _advance(self, conn: Sink) -> None:
        """The batch being folded, once folded, goes to be written when the one being written is committed."""
        f, self._folding = self._folding, None
        if f is None:
            return
        ops, fold_s = await f.future
        ops.positions.update(f.tail)
        t_wait = time.monotonic()
        await self._settle()
        timings = {"load_s": f.load_s, "fold_s": fold_s, "wait_s": time.monotonic() - t_wait}
        self._writing = Written(asyncio.create_task(self._write(conn, ops, f.generation)), ops, f.generation,
                                f.records, f.started, timings)

    async def _flush(self, conn: Sink) -> None:
        """Every batch read so far folded, written and committed."""
        await self._advance(conn)
        await self._settle()

    async def _write(self, conn: Sink, ops: Ops, generation: int) -> float:
        started = time.monotonic()
        await conn.write(ops, self.topic.name, generation)
        return time.monotonic() - started

    async def _settle(self) -> None:
        """Wait for the batch being written to be committed (its error, if any, is raised: nothing of
        it is stored); count and log it."""
        w, self._writing = self._writing, None
        if w is None:
            return
        write_s = await w.task
        ops = w.ops
        self.records_read += w.records
        PROJECTED.inc(ops.applied)
        SKIPPED.inc(ops.skipped)
        PROVISIONAL.labels("publicity").inc(sum(1 for r in ops.publicity_inserts if r[-1]))
        PROVISIONAL.labels("short_deadlines").inc(sum(1 for r in ops.deadlines if r[11]))
        for q in ops.quarantine:
            QUARANTINED.labels(q[3]).inc()
            log.warning("record quarantined", partition=q[0], offset=q[1], entity=q[2], reason=q[3], detail=q[4])
        log.info("batch projected", records=w.records, applied=ops.applied, skipped=ops.skipped,
                 quarantined=len(ops.quarantine), seconds=round(time.monotonic() - w.started, 4),
                 write_s=round(write_s, 4), **{k: round(v, 4) for k, v in w.timings.items()})
        self._resumed()
        self._applied += ops.applied

    async def _drain(self) -> None:
        """After an error, or when stopping: the batch being folded is dropped (read again from the stored
        positions), the batch being written may finish (counted if committed); an error of its own
        changes nothing (the positions stored say what is done)."""
        f, self._folding = self._folding, None
        if f is not None:  # a thread cannot be cancelled: let it end, and forget what it made
            await asyncio.gather(f.future, return_exceptions=True)
        try:
            await self._settle()
        except (psycopg.OperationalError, psycopg.InterfaceError, ViewsSwitched):
            pass

    async def _measure_lag(self, consumer: AIOKafkaConsumer, tps: list[TopicPartition], batch: Any) -> None:
        # a probe that fails on a retriable error (a broker away) is skipped, logged and counted: it
        # never stops the projector
        end = await retry.probe(log, "projector", "lag probe", lambda: consumer.end_offsets(tps))
        if end is None:
            return
        now = SYSTEM.timestamp()
        for tp in tps:
            behind = end[tp] - await consumer.position(tp)
            LAG_RECORDS.labels(str(tp.partition)).set(behind)
            msgs = batch.get(tp) if batch else None
            LAG_SECONDS.labels(str(tp.partition)).set(
                max(0.0, now - msgs[-1].timestamp / 1000) if behind > 0 and msgs else 0.0)


def in_shard(key: bytes | None, index: int, count: int) -> bool:
    """Whether a record with this key is folded by shard `index` of `count` (`Projector.shard`)."""
    return (zlib.crc32(key) % count if key is not None else 0) == index


def no_room(exc: Exception) -> bool:
    """True when PostgreSQL refused the work for want of a resource (SQLSTATE class 53: a full disk,
    53100, above all): the batch is not stored, and the same batch succeeds once there is room."""
    return str(getattr(exc, "sqlstate", None) or "").startswith("53")


def partition_list(text: str) -> list[int]:
    """'0,2' -> [0, 2] (argparse type)."""
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"partitions: a comma-separated list of numbers, got {text!r}") from None

