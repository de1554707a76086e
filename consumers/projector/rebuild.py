"""Rebuild every view from offset 0 into a fresh schema, without downtime, and switch over atomically.

    python -m consumers.projector.rebuild [--keep-old] [--force] [--workers 2]

1. Creates an empty schema `views_rebuild_<time>` with every view table, without its secondary
   indexes (only the primary keys): they are built once at the end of step 2, which costs less
   than keeping them up to date row by row.
2. Projects credit.events into it from offset 0 up to the end of the log as it was at the start,
   printing progress (events, rate, time left); the live views keep serving and keep projecting.
   With --workers N (default 2, at most one per partition) N projector processes share the
   partitions (0,2 and 1,3 for two): an entity lives in one partition and each row of the views
   belongs to one entity, so they write disjoint rows of the one schema, each with its own
   positions. If any worker fails or is killed, nothing is switched. Then the secondary indexes
   are built.
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
import logging
import multiprocessing
import signal
import sys
import time
from typing import Any

import psycopg
import uvloop

from consumers.projector.service import Projector
from ledger.domain.rulebook import RuleBook
from ledger.platform import config, logs
from ledger.platform.clock import SYSTEM
from ledger.platform.kafka_access import PROJECTOR, access
from ledger.platform.kafka_util import KafkaClients, topic_ends
from ledger.rules import loader
from projections import schema
from projections.rows import Folder
from schemas import registry


def projector(s: config.Settings, rules: RuleBook, **options: Any) -> Projector:
    """A projector into a rebuilt schema (options: schema_name, max_records, topic, partitions), which
    never takes the switch-over lock: the switch-over itself holds it."""
    return Projector(KafkaClients(access(s, PROJECTOR)), Folder(rules), s.pg_dsn,
                     takes_switch_lock=False, **options)


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


async def end_offsets(s: config.Settings) -> dict[int, int]:
    return await topic_ends(KafkaClients(access(s, PROJECTOR)), registry.EVENTS.name, registry.EVENTS.partitions)


def _read_so_far(s: config.Settings, name: str) -> int:
    """Records projected into the schema so far (committed positions of every worker)."""
    with psycopg.connect(s.pg_dsn) as conn:
        row = conn.execute(f'select coalesce(sum(next_offset), 0) from "{name}".positions where topic = %s',
                           (registry.EVENTS.name,)).fetchone()
    return int(row[0]) if row else 0


async def _progress(s: config.Settings, name: str, total: int, started: float, done: asyncio.Event) -> None:
    while not done.is_set():
        await asyncio.sleep(1.0)
        read = await asyncio.to_thread(_read_so_far, s, name)
        rate = read / max(time.monotonic() - started, 1e-9)
        left = f"about {(total - read) / rate:,.0f} s left" if rate > 0 else "starting"
        bar = "#" * int(30 * read / total) if total else ""
        _say(f"  [{bar:<30}] {read:>10,} / {total:,} records  {rate:>8,.0f}/s  {left}")


def split(partitions: int, workers: int) -> list[list[int]]:
    """Partitions dealt out to `workers` projectors: split(4, 2) == [[0, 2], [1, 3]]."""
    n = max(1, min(workers, partitions))
    return [list(range(i, partitions, n)) for i in range(n)]


def _worker(s: config.Settings, name: str, partitions: list[int], until: dict[int, int], log_level: str,
            topic: registry.Topic, max_records: int, applied: Any) -> None:
    """One worker process: project its partitions into the schema up to `until`; the events applied go
    to `applied` (a shared integer); any failure is a non-zero exit status. A fresh interpreter: it
    loads the rules itself."""
    logs.configure(log_level)
    applied.value = uvloop.run(projector(s, loader.load(), schema_name=name, max_records=max_records, topic=topic,
                                          partitions=partitions).run(until=until))


async def project_into(s: config.Settings, name: str, end: dict[int, int], workers: int,
                       topic: registry.Topic = registry.EVENTS, max_records: int = 5000, *,
                       rules: RuleBook) -> int:
    """Project `topic` into the schema `name` up to `end`, with `workers` processes (1: in this one,
    with `rules`; more: each loads its own); returns the events applied. Raises if any worker fails
    or dies."""
    if workers <= 1:
        return await projector(s, rules, schema_name=name, max_records=max_records, topic=topic).run(until=end)
    level = logging.getLevelName(logging.getLogger().getEffectiveLevel())
    # spawn: a fresh interpreter per worker (no copy of this process's event loop or connections). Plain
    # processes watched by their exit status, not a process pool: a pool whose worker is killed while it
    # holds the pool's queue lock can hang on shutdown.
    ctx = multiprocessing.get_context("spawn")
    procs = []
    for p in split(topic.partitions, workers):
        applied = ctx.Value("q", 0)
        proc = ctx.Process(target=_worker, args=(s, name, p, end, level, topic, max_records, applied),
                           name=f"rebuild-worker-{','.join(map(str, p))}", daemon=True)
        proc.start()
        procs.append((proc, p, applied))
    try:
        while True:
            failed = [(proc, p) for proc, p, _ in procs if proc.exitcode not in (None, 0)]
            if failed:
                proc, p = failed[0]
                raise RuntimeError(f"the worker of partitions {','.join(map(str, p))} (pid {proc.pid}) exited "
                                   f"with status {proc.exitcode}")
            if all(proc.exitcode == 0 for proc, _, _ in procs):
                return sum(applied.value for _, _, applied in procs)
            await asyncio.sleep(0.1)
    finally:  # on failure (or cancellation) the other workers are stopped too
        for proc, _, _ in procs:
            if proc.exitcode is None:
                proc.kill()
            proc.join()


async def rebuild(s: config.Settings, keep_old: bool = False, force: bool = False, workers: int = 2) -> int:
    rules = loader.load()  # a bad rules file stops the rebuild before it creates anything
    name = "views_rebuild_" + SYSTEM.now().strftime("%Y%m%d%H%M%S")
    with psycopg.connect(s.pg_dsn) as conn, conn.transaction():
        schema.create(conn, name)
        deferred = schema.drop_secondary_indexes(conn, name)
    end = await end_offsets(s)
    total = sum(end.values())
    parts = split(registry.EVENTS.partitions, workers)
    _say(f"rebuilding every view into schema {name} from offset 0 ({total:,} records to read; "
         f"{len(parts)} projector process{'es' if len(parts) > 1 else ''}, partitions "
         f"{' / '.join(','.join(map(str, p)) for p in parts)})")
    started = time.monotonic()
    done = asyncio.Event()
    reporter = asyncio.create_task(_progress(s, name, total, started, done))
    try:
        applied = await project_into(s, name, end, workers, rules=rules)
    except BaseException as exc:
        _say(f"the rebuild failed ({type(exc).__name__}: {exc}); nothing was switched, the schema {name} "
             f"is kept for inspection")
        raise
    finally:
        done.set()
        await reporter
    _say(f"projected {applied:,} events in {time.monotonic() - started:.1f} s; building {len(deferred)} indexes")
    t0 = time.monotonic()
    with psycopg.connect(s.pg_dsn) as conn, conn.transaction():
        conn.execute("set local maintenance_work_mem = '256MB'")
        schema.create_indexes(conn, deferred)
    _say(f"built the indexes in {time.monotonic() - t0:.1f} s; switching over")

    with psycopg.connect(s.pg_dsn) as conn:
        with conn.transaction():
            conn.execute("select pg_advisory_xact_lock(%s)", (schema.SWITCH_LOCK,))
            live_positions = dict(conn.execute(
                "select partition, next_offset from views.positions where topic = %s",
                (registry.EVENTS.name,)).fetchall())
            # catch up to exactly where the live projector is (it waits on the lock meanwhile)
            await projector(s, rules, schema_name=name).run(until=live_positions)
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
    p = argparse.ArgumentParser(prog="python -m consumers.projector.rebuild", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--keep-old", action="store_true", help="keep the retired schema instead of dropping it")
    p.add_argument("--force", action="store_true", help="switch over even when the digests differ")
    p.add_argument("--workers", type=int, default=2, metavar="N",
                   help="projector processes for the bulk of the rebuild, each with its share of the "
                        "partitions (default 2: this machine has two cores; 1 = in this process)")
    p.add_argument("--log-level", default="WARNING")
    args = p.parse_args()
    logs.configure(args.log_level)
    if args.workers < 1:
        p.error(f"--workers: at least 1, got {args.workers}")
    sys.exit(uvloop.run(stoppable(rebuild(config.load(), args.keep_old, args.force, args.workers))))


async def stoppable(work: Any) -> int:
    """Run the rebuild so that SIGTERM or SIGINT cancels it: the worker processes are stopped with it
    (the default SIGTERM would end this process alone and leave them projecting) and nothing is
    switched; exit status 143."""
    task = asyncio.ensure_future(work)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    try:
        return await task
    except asyncio.CancelledError:
        _say("stopped by a signal: the workers were stopped, nothing was switched")
        return 143


if __name__ == "__main__":
    main()
