"""Where the department supervision's counts land: PostgreSQL, schema `supervision`
(projections/migrations/020_supervision.sql).

Writes are idempotent: a window value is the exact count of a prefix of its source partition's
records (consumers/supervision/core.py `add`), so a row only ever moves up to the value written
(`greatest`); the same value written twice, or an older one written after a newer (a flush after a
restart from a changelog a little behind), changes nothing. That is why faust's at-least-once
delivery is enough here: a record delivered again is skipped by its window's offset, a value
written again is harmless, and nothing is lost because faust commits a source offset only after the
table writes of the records before it are on the changelog (docs/stack-notes.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

import psycopg

__all__ = ["KEEP_HOURS", "Sink"]

KEEP_HOURS = 48  # the samples and the 5-minute counts kept (the charts show the last hours)

UPSERT = """
insert into supervision.counts (period, period_start, department, measure, source_topic, source_partition, count)
values (%s, %s, %s, %s, %s, %s, %s)
on conflict (period, period_start, department, measure, source_topic, source_partition)
do update set count = excluded.count, updated_at = now()
where supervision.counts.count < excluded.count
"""


class Sink:
    """One connection, opened on first use and opened again after a failure."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self._conn: psycopg.AsyncConnection | None = None

    async def _connection(self) -> psycopg.AsyncConnection:
        if self._conn is None or self._conn.closed:
            self._conn = await psycopg.AsyncConnection.connect(self.dsn, connect_timeout=10)
        return self._conn

    async def _run(self, statements: Sequence[tuple[str, Sequence[Sequence[object]]]]) -> None:
        try:
            conn = await self._connection()
            async with conn.transaction(), conn.cursor() as cur:
                for sql, params in statements:
                    if params:
                        await cur.executemany(sql, params)
        except psycopg.Error:
            await self.close()
            raise

    async def write(self, rows: Sequence[tuple[str, float, str, str, str, int, int]]) -> None:
        """Window rows (period, start in epoch seconds, department, measure, topic, partition, count),
        in one transaction."""
        if rows:
            await self._run([(UPSERT, [(p, _moment(start), *rest) for p, start, *rest in rows])])

    async def sample(self, at: datetime, values: Mapping[str, float]) -> None:
        """One sample of each series at `at`; and what is older than KEEP_HOURS deleted (samples and
        5-minute counts)."""
        cutoff = [(at - timedelta(hours=KEEP_HOURS),)]
        await self._run([
            ("insert into supervision.samples (series, at, value) values (%s, %s, %s) on conflict do nothing",
             [(series, at, float(v)) for series, v in values.items()]),
            ("delete from supervision.samples where at < %s", cutoff),
            ("delete from supervision.counts where period = '5min' and period_start < %s", cutoff),
        ])

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.closed:
            await conn.close()


def _moment(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)
