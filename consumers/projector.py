"""The projector: credit.events -> PostgreSQL views, in batches, exactly once per (entity, version).

Its Kafka position is stored in projector_positions in the same PostgreSQL transaction as the rows,
so the view and the position can never disagree; rows are inserted with ON CONFLICT DO NOTHING on
their idempotence keys, so an event delivered twice changes nothing. The consumer has no group: it
seeks to the positions stored in PostgreSQL.

Run: python -m consumers.projector [--metrics-port 9102]
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import psycopg
from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client import Counter, Gauge

from ledger import config, logs, process
from ledger.kafka_util import caught_up
from projections import views
from schemas import registry

NAME = "main"
log = logs.get("projector")

PROJECTED = Counter("ledger_projected_events_total", "Ledger entries applied to the views")
LAG = Gauge("ledger_projection_lag_records", "Records of credit.events not yet projected", ["partition"])


class Projector:
    def __init__(self, settings: config.Settings, name: str = NAME, max_records: int = 5000) -> None:
        self.s = settings
        self.name = name
        self.max_records = max_records
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    def _positions(self, conn: psycopg.Connection[Any]) -> dict[int, int]:
        rows = conn.execute("select partition, next_offset from projector_positions where projector = %s "
                            "and topic = %s", (self.name, registry.EVENTS.name)).fetchall()
        return {p: o for p, o in rows}

    async def run(self, until_caught_up: bool = False) -> int:
        """Project until stopped (or, with until_caught_up, until the end of the log). Returns events applied."""
        topic = registry.EVENTS.name
        consumer = AIOKafkaConsumer(bootstrap_servers=self.s.bootstrap_servers, group_id=None,
                                    enable_auto_commit=False, isolation_level="read_committed",
                                    max_poll_records=self.max_records)
        await consumer.start()
        applied = 0
        conn = await psycopg.AsyncConnection.connect(self.s.pg_dsn)
        try:
            tps = [TopicPartition(topic, p) for p in range(registry.EVENTS.partitions)]
            consumer.assign(tps)
            async with conn.transaction():
                cur = await conn.execute("select partition, next_offset from projector_positions "
                                         "where projector = %s and topic = %s", (self.name, topic))
                stored = {p: o for p, o in await cur.fetchall()}
            for tp in tps:
                if tp.partition in stored:
                    consumer.seek(tp, stored[tp.partition])
                else:
                    await consumer.seek_to_beginning(tp)
            log.info("projector running", projector=self.name, positions=stored)
            while not self._stop.is_set():
                batch = await consumer.getmany(timeout_ms=200)
                if batch:
                    applied += await self._apply(conn, batch)
                end = await consumer.end_offsets(tps)
                for tp in tps:
                    LAG.labels(str(tp.partition)).set(end[tp] - await consumer.position(tp))
                if until_caught_up and not batch and await caught_up(consumer, end):
                    break
        finally:
            await conn.close()
            await consumer.stop()
        return applied

    async def _apply(self, conn: psycopg.AsyncConnection[Any], batch: Any) -> int:
        started = time.monotonic()
        rows = views.Rows()
        for tp, msgs in batch.items():
            for m in msgs:
                _, entry = registry.decode(m.value, "LedgerEntry")
                rows.add(entry, tp.partition, m.offset)
        async with conn.transaction():
            inserted = await views.write(conn, rows)
            async with conn.cursor() as cur:
                await cur.executemany(
                    "insert into projector_positions (projector, topic, partition, next_offset) "
                    "values (%s, %s, %s, %s) on conflict (projector, topic, partition) do update "
                    "set next_offset = excluded.next_offset, updated_at = now()",
                    [(self.name, tp.topic, tp.partition, msgs[-1].offset + 1) for tp, msgs in batch.items() if msgs])
        PROJECTED.inc(inserted)
        log.info("batch projected", events=rows.count, new=inserted, seconds=round(time.monotonic() - started, 4))
        return inserted


def main() -> None:
    args = process.parser("python -m consumers.projector", __doc__, 9102).parse_args()
    process.run(args, lambda _args: Projector(config.load()))


if __name__ == "__main__":
    main()
