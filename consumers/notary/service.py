"""The notary: an RFC 9162 Merkle tree per partition of credit.events, signed tree heads on
credit.checkpoints.

It reads credit.events (read_committed, no consumer group: it seeks to its own stored positions),
appends each record's leaf hash SHA-256(0x00 || the exact LedgerEntry bytes) in offset order, and
per batch writes the new leaves, the new stored subtree roots, the heads it signed and its
position (with the tree's frontier) in ONE PostgreSQL transaction (schema `notary`), so a kill -9
leaves neither a gap nor a double: a restart seeks to the stored position and the same records
become the same leaves. A head is signed (Ed25519, key in LEDGER_KEYS_DIR/notary/) at every
multiple of --every leaves and, when the tree grew, every --interval seconds; after the commit it
is published on credit.checkpoints (key: the partition) and marked published. A crash between the
commit and the publication publishes it at the next start (a head can appear twice on the topic,
byte for byte the same; readers keep one per (partition, tree size)). A lost database connection
(PostgreSQL restarted) is retried with back-off from the trees and positions stored in it.

Run: python -m ops.run notary [--every 1000] [--interval 10] [--metrics-port 9108] (wired in ops/root.py)
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import psycopg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from prometheus_client import Counter, Gauge

from ledger.audit.merkle import Frontier
from ledger.audit.notary import Appended, Head, PartitionTree, Signer, notary_keys_dir
from ledger.platform import config, logs, retry, signing
from ledger.platform.kafka_util import KafkaClients
from schemas import registry

log = logs.get("notary")

LEAVES = Counter("ledger_notary_leaves_total", "Ledger records added as Merkle leaves")
HEADS = Counter("ledger_notary_heads_total", "Signed tree heads published on credit.checkpoints")
TREE_SIZE = Gauge("ledger_notary_tree_size", "Leaves in the partition's tree", ["partition"])
LAG = Gauge("ledger_notary_lag_records", "Records of credit.events not yet in the tree", ["partition"])
RETRIES = Counter("ledger_notary_db_retries_total", "Times the notary went on from its stored trees after a database error")


def signer(settings: config.Settings) -> Signer:
    """The notary's key pair (a development key is created by ops/stack up, like the departments')."""
    d = notary_keys_dir(settings.keys_dir)
    return Signer(signing.private_key(d, "notary"), (d / "notary.pub").read_text().strip())


class Notary:
    def __init__(self, kafka: KafkaClients, dsn: str, signer: Signer, every: int = 1000, interval_s: float = 10.0,
                 max_records: int = 5000) -> None:
        self.kafka = kafka
        self.dsn = dsn
        self.every = every
        self.interval_s = interval_s
        self.max_records = max_records
        self.signer = signer
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    async def _load(self, conn: psycopg.AsyncConnection[Any]) -> dict[int, PartitionTree]:
        trees = {}
        for p in range(registry.EVENTS.partitions):
            row = await (await conn.execute(
                "select t.next_offset, t.tree_size, t.frontier, coalesce(h.tree_size, 0), coalesce(h.timestamp_ms, 0) "
                "from (select %s::int as partition) x left join notary.trees t using (partition) "
                "left join lateral (select tree_size, timestamp_ms from notary.heads where partition = x.partition "
                "order by tree_size desc limit 1) h on true", (p,))).fetchone()
            assert row is not None
            next_offset, size, frontier, head_size, head_ms = row
            f = Frontier.from_bytes(size, bytes(frontier)) if size is not None else Frontier()
            trees[p] = PartitionTree(p, f, next_offset or 0, head_size, head_ms)
        await conn.commit()
        return trees

    async def run(self) -> None:
        topic = registry.EVENTS.name
        conn = await psycopg.AsyncConnection.connect(self.dsn, prepare_threshold=None)
        consumer = self.kafka.consumer(group_id=None, enable_auto_commit=False, isolation_level="read_committed",
                                       auto_offset_reset="earliest", max_poll_records=self.max_records)
        producer = self.kafka.producer(enable_idempotence=True)
        await retry.until_done(log, "notary", "consumer start", consumer.start, stopping=self._stop.is_set)
        await retry.until_done(log, "notary", "producer start", producer.start, stopping=self._stop.is_set)
        try:
            trees = await self._load(conn)
            tps = [TopicPartition(topic, p) for p in trees]
            consumer.assign(tps)
            for tp in tps:
                consumer.seek(tp, trees[tp.partition].next_offset)
            await retry.until_done(log, "notary", "publish", lambda: self._publish(conn, producer),
                                   stopping=self._stop.is_set)
            log.info("notary running", key_id=self.signer.key_id, every=self.every, interval_s=self.interval_s,
                     positions={p: t.next_offset for p, t in trees.items()},
                     sizes={p: t.frontier.size for p, t in trees.items()})
            unpublished = False  # a publication failed on a retriable error: try it again first
            while not self._stop.is_set():
                try:
                    if unpublished:
                        await self._publish(conn, producer)
                        unpublished = False
                    batch = await consumer.getmany(timeout_ms=500)
                    work = {p: t.append(((m.offset, m.value) for m in batch.get(TopicPartition(topic, p), [])),
                                        self.signer, self.every, self.interval_s) for p, t in trees.items()}
                    if any(w.leaves or w.heads for w in work.values()):
                        await self._store(conn, trees, work)
                        await self._publish(conn, producer)
                except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                    conn, trees = await self._recover(conn, consumer, producer, tps, exc)
                    continue
                except Exception as exc:
                    if not retry.retriable(exc):
                        raise
                    # the broker is away (a fetch or a head's publication timed out): what is stored
                    # is stored; the heads not yet published are published at the next batch or later
                    retry.note(log, "notary", "batch", exc, 1.0)
                    unpublished = True
                    await asyncio.sleep(1)
                    continue
                # a lag probe that fails on a retriable error is skipped (logged, counted): it never
                # stops the notary
                end = await retry.probe(log, "notary", "lag probe", lambda: consumer.end_offsets(tps))
                if end is None:
                    continue
                for tp in tps:
                    # from the consumer's position, which also passes the transaction markers that the
                    # end offset counts (the tree's next offset stops before the last one: a lag of 1
                    # for ever)
                    LAG.labels(str(tp.partition)).set(max(0, end[tp] - await consumer.position(tp)))
                    TREE_SIZE.labels(str(tp.partition)).set(trees[tp.partition].frontier.size)
        finally:
            await consumer.stop()
            await producer.stop()
            await conn.close()

    async def _recover(self, conn: psycopg.AsyncConnection[Any], consumer: AIOKafkaConsumer,
                       producer: AIOKafkaProducer, tps: list[TopicPartition],
                       exc: Exception) -> tuple[psycopg.AsyncConnection[Any], dict[int, PartitionTree]]:
        """The database went away: the batch in flight may or may not be committed, and the trees in
        memory may be ahead of it. Reconnect (with back-off), take the trees and positions stored in
        the database, and read on from there."""
        RETRIES.inc()
        log.warning("database unavailable; going on from the stored trees", error=str(exc).strip()[:200])
        try:
            await conn.close()
        except Exception:  # the connection is already broken
            pass
        delay = 0.5
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(self.dsn, prepare_threshold=None)
                trees = await self._load(conn)
                for tp in tps:
                    consumer.seek(tp, trees[tp.partition].next_offset)
                await self._publish(conn, producer)
                log.info("database reachable again", positions={p: t.next_offset for p, t in trees.items()})
                return conn, trees
            except (psycopg.OperationalError, psycopg.InterfaceError):
                if self._stop.is_set():
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _store(self, conn: psycopg.AsyncConnection[Any], trees: dict[int, PartitionTree],
                     work: dict[int, Appended]) -> None:
        started = time.monotonic()
        async with conn.transaction():
            cur = conn.cursor()
            async with cur.copy("copy notary.leaves (partition, leaf_index, kafka_offset, leaf_hash) from stdin") as cp:
                for p, w in work.items():
                    for row in w.leaves:
                        await cp.write_row((p, *row))
            async with cur.copy("copy notary.nodes (partition, level, node_index, hash) from stdin") as cp:
                for p, w in work.items():
                    for row in w.nodes:
                        await cp.write_row((p, *row))
            heads = [h for w in work.values() for h in w.heads]
            if heads:
                await cur.executemany(
                    "insert into notary.heads (partition, tree_size, root, timestamp_ms, last_offset, key_id, signature) "
                    "values (%s, %s, %s, %s, %s, %s, %s)",
                    [(h.partition, h.tree_size, h.root, h.timestamp_ms, h.last_offset, h.key_id, h.signature)
                     for h in heads])
            await cur.executemany(
                "insert into notary.trees (partition, next_offset, tree_size, frontier) values (%s, %s, %s, %s) "
                "on conflict (partition) do update set next_offset = excluded.next_offset, "
                "tree_size = excluded.tree_size, frontier = excluded.frontier, updated_at = now()",
                [(p, trees[p].next_offset, trees[p].frontier.size, trees[p].frontier.to_bytes())
                 for p, w in work.items() if w.leaves])
        added = sum(len(w.leaves) for w in work.values())
        LEAVES.inc(added)
        log.info("batch notarised", leaves=added, heads=[f"{h.partition}:{h.tree_size}" for h in heads],
                 sizes={p: trees[p].frontier.size for p, w in work.items() if w.leaves},
                 seconds=round(time.monotonic() - started, 4))

    async def _publish(self, conn: psycopg.AsyncConnection[Any], producer: AIOKafkaProducer) -> None:
        """Publish the stored heads not yet acknowledged on credit.checkpoints, oldest first."""
        rows = await (await conn.execute(
            "select partition, tree_size, root, timestamp_ms, last_offset, key_id, signature from notary.heads "
            "where not published order by timestamp_ms, partition, tree_size")).fetchall()
        await conn.commit()
        for r in rows:
            head = Head(r[0], r[1], bytes(r[2]), r[3], r[4], r[5], bytes(r[6]))
            await producer.send_and_wait(registry.CHECKPOINTS.name, registry.encode("TreeHead", head.to_record()),
                                         key=str(head.partition).encode())
            await conn.execute("update notary.heads set published = true where partition = %s and tree_size = %s",
                               (head.partition, head.tree_size))
            await conn.commit()
            HEADS.inc()
            log.info("tree head published", partition=head.partition, tree_size=head.tree_size,
                     root=head.root.hex(), key_id=head.key_id)
