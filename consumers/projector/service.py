"""The projector: credit.events -> the PostgreSQL read models, in batches, once per (entity, version).

Per batch (aiokafka getmany): load the fold state of the entities it touches, fold it with the
domain's evolve (projections/rows.py), write every table set-based (projections/views.py) and the
new positions, all in ONE PostgreSQL transaction (`PgViews`, the projector's sink; the batch loop
in `Projector` sees only the sink's three operations, so the unit tests give it an in-memory one). The consumer has no group: it seeks to the
positions stored with the views. A lost database connection (PostgreSQL restarted) is retried with
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
from collections.abc import Awaitable, Callable
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
    (psycopg.OperationalError or InterfaceError) means: nothing of the batch was stored."""

    async def positions(self, topic: str) -> dict[int, int]: ...

    async def apply(self, incoming: list[Incoming], fold: Callable[[list[Incoming], Loaded], Ops],
                    topic: str) -> Ops: ...

    async def close(self) -> None: ...


class PgViews:
    """The views of one PostgreSQL schema on one connection: a batch is loaded, folded and written
    in ONE transaction, with its positions."""

    def __init__(self, conn: psycopg.AsyncConnection[Any], takes_switch_lock: bool = True) -> None:
        self.conn = conn
        self.takes_switch_lock = takes_switch_lock
        self.timings: dict[str, float] = {}  # of the last batch: load_s, fold_s, write_s

    @classmethod
    async def connect(cls, dsn: str, schema_name: str, takes_switch_lock: bool = True) -> PgViews:
        conn = await psycopg.AsyncConnection.connect(dsn, options=f"-c search_path={schema_name}",
                                                     prepare_threshold=None)
        await views.prepare(conn)
        return cls(conn, takes_switch_lock)

    async def positions(self, topic: str) -> dict[int, int]:
        cur = await self.conn.execute("select partition, next_offset from positions where topic = %s", (topic,))
        rows = await cur.fetchall()
        await self.conn.commit()
        return {p: o for p, o in rows}

    async def apply(self, incoming: list[Incoming], fold: Callable[[list[Incoming], Loaded], Ops],
                    topic: str) -> Ops:
        started = time.monotonic()
        async with self.conn.transaction():
            if self.takes_switch_lock:  # a rebuild's switch-over takes it exclusively: no batch straddles a swap
                await self.conn.execute("select pg_advisory_xact_lock_shared(%s)", (schema.SWITCH_LOCK,))
            loaded = await views.load(self.conn, entity_keys(incoming))
            t_fold = time.monotonic()
            ops = fold(incoming, loaded)
            t_write = time.monotonic()
            await views.write(self.conn, ops, topic)
        self.timings = {"load_s": round(t_fold - started, 4), "fold_s": round(t_write - t_fold, 4),
                        "write_s": round(time.monotonic() - t_write, 4)}
        return ops

    async def close(self) -> None:
        await self.conn.close()


class Projector:
    def __init__(self, kafka: KafkaClients, folder: Folder, dsn: str, schema_name: str = schema.LIVE,
                 max_records: int = 5000, takes_switch_lock: bool = True, topic: registry.Topic = registry.EVENTS,
                 partitions: list[int] | None = None, connect: Callable[[], Awaitable[Sink]] | None = None) -> None:
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
        applied = 0
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
                if until is not None and await caught_up(consumer, {TopicPartition(topic, p): o
                                                                    for p, o in until.items()}):
                    break
                batch = await retry.probe(log, "projector", "getmany", lambda: consumer.getmany(timeout_ms=200))
                if batch is None:  # the broker is away: read on from the same positions in a moment
                    await asyncio.sleep(1)
                    continue
                if batch:
                    if until is not None:  # never past the requested offsets
                        batch = {tp: [m for m in msgs if m.offset < until.get(tp.partition, 0)]
                                 for tp, msgs in batch.items()}
                    try:
                        applied += await self._apply(conn, batch)
                    except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                        if no_room(exc):  # a full disk: wait for room, on the same connection
                            await self._paused(consumer, tps, conn, exc)
                        else:
                            conn = await self._recover(consumer, tps, conn, exc)
                        continue
                    self._resumed()
                await self._measure_lag(consumer, tps, batch)
        finally:
            await conn.close()
            await consumer.stop()
        return applied

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

    async def _apply(self, conn: Sink, batch: Any) -> int:
        started = time.monotonic()
        incoming = [Incoming(tp.partition, m.offset, m.key, m.value, m.timestamp)
                    for tp, msgs in batch.items() for m in msgs]
        if not incoming:
            return 0
        ops = await conn.apply(incoming, self.folder.fold, self.topic.name)
        self.records_read += len(incoming)
        PROJECTED.inc(ops.applied)
        SKIPPED.inc(ops.skipped)
        PROVISIONAL.labels("publicity").inc(sum(1 for r in ops.publicity_inserts if r[-1]))
        PROVISIONAL.labels("short_deadlines").inc(sum(1 for r in ops.deadlines if r[11]))
        for q in ops.quarantine:
            QUARANTINED.labels(q[3]).inc()
            log.warning("record quarantined", partition=q[0], offset=q[1], entity=q[2], reason=q[3], detail=q[4])
        log.info("batch projected", records=len(incoming), applied=ops.applied, skipped=ops.skipped,
                 quarantined=len(ops.quarantine), seconds=round(time.monotonic() - started, 4),
                 **getattr(conn, "timings", {}))
        return ops.applied

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

