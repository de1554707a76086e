"""Rebuild every view from offset 0 into a fresh schema, without downtime, and switch over atomically.

    python -m projections.rebuild [--keep-old]

1. Creates an empty schema `views_rebuild_<time>` with every view table.
2. Projects credit.events into it from offset 0 up to the end of the log as it was at the start,
   printing progress (events, rate, time left); the live views keep serving and keep projecting.
3. Takes the switch-over lock (the live projector waits between two batches; reads go on), lets
   the new schema catch up to exactly the live projector's positions, and compares the two sets of
   views table by table with deterministic digests.
4. If they agree, renames the live schema away and the new one to "views" in the same transaction;
   if not, changes nothing, names the tables that differ and exits with status 1 (the new schema
   is kept for inspection). With --force the rebuilt views replace drifted live views anyway:
   they are derived from the ledger, the only source of truth.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import UTC, datetime

import psycopg
from aiokafka import AIOKafkaConsumer, TopicPartition

from consumers.projector import Projector
from ledger import config, logs
from projections import schema
from schemas import registry


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


async def end_offsets(s: config.Settings) -> dict[int, int]:
    c = AIOKafkaConsumer(bootstrap_servers=s.bootstrap_servers, group_id=None, isolation_level="read_committed")
    await c.start()
    try:
        tps = [TopicPartition(registry.EVENTS.name, p) for p in range(registry.EVENTS.partitions)]
        return {tp.partition: o for tp, o in (await c.end_offsets(tps)).items()}
    finally:
        await c.stop()


async def _progress(projector: Projector, total: int, started: float, done: asyncio.Event) -> None:
    while not done.is_set():
        await asyncio.sleep(1.0)
        read = projector.records_read
        rate = read / max(time.monotonic() - started, 1e-9)
        left = f"about {(total - read) / rate:,.0f} s left" if rate > 0 else "starting"
        bar = "#" * int(30 * read / total) if total else ""
        _say(f"  [{bar:<30}] {read:>10,} / {total:,} records  {rate:>8,.0f}/s  {left}")


async def rebuild(s: config.Settings, keep_old: bool = False, force: bool = False) -> int:
    name = "views_rebuild_" + datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    with psycopg.connect(s.pg_dsn) as conn, conn.transaction():
        schema.create(conn, name)
    end = await end_offsets(s)
    total = sum(end.values())
    _say(f"rebuilding every view into schema {name} from offset 0 ({total:,} records to read)")
    started = time.monotonic()
    projector = Projector(s, schema_name=name, takes_switch_lock=False)
    done = asyncio.Event()
    reporter = asyncio.create_task(_progress(projector, total, started, done))
    try:
        applied = await projector.run(until=end)
    finally:
        done.set()
        await reporter
    _say(f"projected {applied:,} events in {time.monotonic() - started:.1f} s; switching over")

    with psycopg.connect(s.pg_dsn) as conn:
        with conn.transaction():
            conn.execute("select pg_advisory_xact_lock(%s)", (schema.SWITCH_LOCK,))
            live_positions = dict(conn.execute(
                "select partition, next_offset from views.positions where topic = %s",
                (registry.EVENTS.name,)).fetchall())
            # catch up to exactly where the live projector is (it waits on the lock meanwhile)
            await Projector(s, schema_name=name, takes_switch_lock=False).run(until=live_positions)
            live, new = schema.digest(conn, schema.LIVE), schema.digest(conn, name)
            differ = sorted(t for t in live if live[t] != new[t])
            if differ:
                _say("the rebuilt views differ from the live views in: " + ", ".join(
                    f"{t} (live {live[t]}, rebuilt {new[t]})" for t in differ))
                if not force:
                    _say(f"nothing was switched; the rebuilt schema {name} is kept for inspection "
                         f"(--force replaces the live views with it: they are derived from the ledger)")
                    return 1
                _say("--force: the rebuilt views replace the live ones anyway")
            retired = name.replace("views_rebuild_", "views_retired_")
            schema.swap(conn, name, retired)
            events = int(new["ledger_copy"].split(":")[0])
            conn.execute("insert into view_generations (schema_name, digest, events) values (%s, %s, %s)",
                         (name, schema.combined(new), events))
        _say(f"switched: the rebuilt views are live ({events:,} events, digest {schema.combined(new)[:16]}); "
             f"the old ones are in {retired}")
        if not keep_old:
            with conn.transaction():
                schema.drop(conn, retired)
            _say(f"dropped {retired}")
    return 0


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m projections.rebuild", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--keep-old", action="store_true", help="keep the retired schema instead of dropping it")
    p.add_argument("--force", action="store_true", help="switch over even when the digests differ")
    p.add_argument("--log-level", default="WARNING")
    args = p.parse_args()
    logs.configure(args.log_level)
    sys.exit(asyncio.run(rebuild(config.load(), args.keep_old, args.force)))


if __name__ == "__main__":
    main()
