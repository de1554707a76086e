"""The department supervision's counts checked against a recount of the topics.

    python -m consumers.supervision.recount [--wait SECONDS]

Reads credit.outcomes, credit.events and credit.alerts from their first offsets (committed records
only, as the supervision does), counts them afresh with the supervision's own pure part
(consumers/supervision/core.py `tally`) and compares, for every period (China-local day and month,
5-minute bucket), department and measure, with what the supervision wrote to PostgreSQL (summed over
the source partitions). Prints what differs; exit status 0 when everything agrees, 1 otherwise.
`--wait` compares again until they agree or the seconds pass (a supervision still catching up).

Two limits: credit.outcomes keeps 30 days (registry.OUTCOMES), so answers older than that can no
longer be recounted; and the supervision deletes 5-minute counts older than 48 hours, which the
comparison leaves out.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import psycopg
from aiokafka import AIOKafkaConsumer, TopicPartition

from consumers.supervision import core
from consumers.supervision.sink import KEEP_HOURS
from ledger.platform.kafka_access import SUPERVISION, KafkaAccess, access
from schemas import registry

__all__ = ["Totals", "compare", "main", "read_records", "stored", "wait_equal"]

SOURCES = (registry.OUTCOMES, registry.EVENTS, registry.ALERTS)
Totals = dict[tuple[str, float, str, str], int]  # (period, start, department, measure) -> count


async def read_records(kafka: KafkaAccess, progress: Callable[[int], None] | None = None) -> list[core.Record]:
    """Every committed record of the supervised topics up to their ends at the call, as the supervision
    sees it (timestamp in epoch seconds, headers as a mapping)."""
    consumer = AIOKafkaConsumer(**kafka.options(), group_id=None, enable_auto_commit=False,
                                isolation_level="read_committed")
    await consumer.start()
    try:
        tps = [TopicPartition(t.name, p) for t in SOURCES for p in range(t.partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end = await consumer.end_offsets(tps)
        out: list[core.Record] = []
        while [tp for tp in tps if await consumer.position(tp) < end[tp]]:
            for tp, msgs in (await consumer.getmany(timeout_ms=1000)).items():
                out += [core.Record(tp.topic, tp.partition, m.offset, m.timestamp / 1000.0, m.key, m.value,
                                    dict(m.headers or ())) for m in msgs if m.offset < end[tp]]
            if progress:
                progress(len(out))
        return out
    finally:
        await consumer.stop()


def stored(dsn: str) -> Totals:
    """The supervision's counts in PostgreSQL, summed over the source partitions."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute("select period, period_start, department, measure, sum(count) from supervision.counts "
                            "group by 1, 2, 3, 4").fetchall()
    return {(period, start.timestamp(), department, measure): int(n) for period, start, department, measure, n in rows}


def compare(expected: Totals, found: Totals, now: datetime) -> dict[tuple[str, float, str, str], tuple[int, int]]:
    """(found, expected) of every count that differs; 5-minute counts older than the supervision keeps
    are left out."""
    horizon = (now - timedelta(hours=KEEP_HOURS)).timestamp() + core.BUCKET_SECONDS
    return {k: (found.get(k, 0), expected.get(k, 0)) for k in set(expected) | set(found)
            if found.get(k, 0) != expected.get(k, 0) and not (k[0] == "5min" and k[1] < horizon)}


async def wait_equal(counter: core.Counter, kafka: KafkaAccess, dsn: str, now: Callable[[], datetime],
                     wait: float = 0.0) -> tuple[int, dict[tuple[str, float, str, str], tuple[int, int]]]:
    """Recount the topics, then compare with the stored counts until they agree or `wait` seconds pass.
    Returns (the records recounted, what differs)."""
    records = await read_records(kafka)
    expected = core.tally(counter, records)
    deadline = time.monotonic() + wait
    while True:
        diff = compare(expected, stored(dsn), now())
        if not diff or time.monotonic() >= deadline:
            return len(records), diff
        await asyncio.sleep(1.0)


def main(argv: list[str] | None = None) -> int:
    from ledger.platform import config
    from ledger.platform.clock import SYSTEM
    from ledger.rules import loader

    p = argparse.ArgumentParser(prog="python -m consumers.supervision.recount", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--wait", type=float, default=0.0, help="seconds to wait for the counts to agree (default 0)")
    args = p.parse_args(argv)
    s = config.load()
    rules = loader.load()  # the calendar and the departments the supervision counts with
    n, diff = asyncio.run(wait_equal(core.Counter.of(rules), access(s, SUPERVISION), s.pg_dsn, SYSTEM.now, args.wait))
    if not diff:
        print(f"the supervision's counts equal a recount of {n:,} records of "
              f"{', '.join(t.name for t in SOURCES)}")
        return 0
    print(f"{len(diff)} counts differ from a recount of {n:,} records (period, start, department, measure: "
          "stored, recounted):")
    for (period, start, department, measure), (got, want) in sorted(diff.items())[:50]:
        print(f"  {period} {datetime.fromtimestamp(start, UTC).isoformat()} {department or '-'} {measure}: {got}, {want}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
