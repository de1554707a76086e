"""Rebuild every view from offset 0 into a fresh schema, without downtime, and switch over atomically.

    python -m consumers.projector.rebuild [--keep-old] [--force] [--workers 2]

1. Creates an empty schema `views_rebuild_<time>` with every view table, without its secondary
   indexes and without the primary keys of its four large tables (entity_state, entities,
   ledger_copy, publicity): they are built once at the end of step 2, which costs less than keeping
   them up to date row by row.
2. Loads credit.events into it from offset 0 up to the end of the log as it was at the start,
   printing progress (events, rate, time left); the live views keep serving and keep projecting.
   With --workers N (default: one per core) N processes share the partitions (0,2 and 1,3 for
   two): an entity lives in one partition and each row of the views belongs to one entity, so they
   write disjoint rows of the one schema, each with its own positions. Past one worker per
   partition, the workers of one partition each fold a shard of its entities (crc32 of the key). Each worker
   is a bulk load (consumers/projector/bulk.py): the entities' states stay in a store on its own
   disk instead of being read and written in PostgreSQL per batch, the rows that need no state are
   COPYed straight in, the status updates are kept and applied once at the end, and each entity's
   rows are written once, after its last event; its memory is bounded at any ledger size. If any
   worker fails or is killed, nothing is switched. Then the status updates are applied and the
   primary keys and the secondary indexes built.
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
import os
import signal
import sys
import time
from typing import Any

import psycopg
import uvloop
from psycopg import sql

from consumers.projector import bulk
from consumers.projector.service import Projector
from ledger.domain.rulebook import RuleBook
from ledger.platform import config, logs
from ledger.platform.clock import SYSTEM
from ledger.platform.kafka_access import PROJECTOR, access
from ledger.platform.kafka_util import KafkaClients, topic_ends
from ledger.rules import loader
from projections import schema, views
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


async def _progress(s: config.Settings, name: str, total: int, started: float, done: asyncio.Event,
                    entities: Any) -> None:
    while not done.is_set():
        await asyncio.sleep(1.0)
        read = await asyncio.to_thread(_read_so_far, s, name)
        if read >= total and entities.value:
            _say(f"  every record read; each entity's rows written once: {entities.value:>10,} so far")
            continue
        rate = read / max(time.monotonic() - started, 1e-9)
        left = f"about {(total - read) / rate:,.0f} s left" if rate > 0 else "starting"
        bar = "#" * int(30 * read / total) if total else ""
        _say(f"  [{bar:<30}] {read:>10,} / {total:,} records  {rate:>8,.0f}/s  {left}")


def split(partitions: int, workers: int) -> list[list[int]]:
    """Partitions dealt out to `workers` projectors: split(4, 2) == [[0, 2], [1, 3]]."""
    n = max(1, min(workers, partitions))
    return [list(range(i, partitions, n)) for i in range(n)]


def assign(partitions: int, workers: int) -> list[tuple[list[int], tuple[int, int]]]:
    """What each of `workers` rebuild workers reads and folds: (its partitions, its shard). Up to one
    worker per partition the partitions are dealt out (`split`) and each folds all it reads; past
    that, worker i reads partition i mod `partitions` and folds the entities of one shard of it
    (`Projector.shard`): assign(4, 6) gives partitions 0 and 1 two workers each, shards 0 and 1 of 2."""
    if workers <= partitions:
        return [(p, (0, 1)) for p in split(partitions, workers)]
    return [([i % partitions], (i // partitions, len(range(i % partitions, workers, partitions))))
            for i in range(workers)]


def describe(work: list[tuple[list[int], tuple[int, int]]]) -> str:
    """'0,2 / 1,3' or '0 (entity shard 1 of 2) / ...'."""
    return " / ".join(",".join(map(str, p)) + (f" (entity shard {i + 1} of {n})" if n > 1 else "")
                      for p, (i, n) in work)


async def bulk_load(s: config.Settings, rules: RuleBook, name: str, until: dict[int, int], topic: registry.Topic,
                    max_records: int, partitions: list[int] | None = None, entities: Any = None,
                    shard: tuple[int, int] = (0, 1)) -> int:
    """Load `partitions` of `topic` (default: all; of their entities, those of `shard`) into the schema
    `name` up to `until` as a bulk load (consumers/projector/bulk.py); returns the events applied.
    `entities`, a shared integer, counts the entity rows written at the end."""
    states = bulk.temporary_store()
    # from the start of each partition read (a position of 0, not a seek to the beginning: aiokafka can
    # race that with its own initial offset reset, bench/projection.py `_fresh_schema`)
    states.positions = dict.fromkeys(range(topic.partitions) if partitions is None else partitions, 0)
    folder = Folder(rules, entity_rows=False)
    try:
        applied = await Projector(KafkaClients(access(s, PROJECTOR)), folder, s.pg_dsn, schema_name=name,
                                  max_records=max_records, takes_switch_lock=False, topic=topic,
                                  partitions=partitions, shard=shard,
                                  connect=lambda: bulk.BulkViews.open(s.pg_dsn, name, states)).run(until=until)
        def count(n: int) -> None:
            if entities is not None:
                with entities.get_lock():
                    entities.value += n

        await bulk.write_entities(s.pg_dsn, name, states, folder, count)
        return applied
    finally:
        bulk.remove(states)


def _worker(s: config.Settings, name: str, partitions: list[int], until: dict[int, int], log_level: str,
            topic: registry.Topic, max_records: int, applied: Any, load: bool, entities: Any,
            shard: tuple[int, int]) -> None:
    """One worker process: project its partitions into the schema up to `until` (`load`: as a bulk load);
    the events applied go to `applied` (a shared integer); any failure is a non-zero exit status. A fresh
    interpreter: it loads the rules itself."""
    logs.configure(log_level)
    rules = loader.load()
    if load:
        applied.value = uvloop.run(bulk_load(s, rules, name, until, topic, max_records, partitions, entities, shard))
    else:
        applied.value = uvloop.run(projector(s, rules, schema_name=name, max_records=max_records, topic=topic,
                                              partitions=partitions).run(until=until))


async def project_into(s: config.Settings, name: str, end: dict[int, int], workers: int,
                       topic: registry.Topic = registry.EVENTS, max_records: int = 5000, *,
                       rules: RuleBook, load: bool = False, entities: Any = None) -> int:
    """Project `topic` into the schema `name` up to `end`, with `workers` processes (1: in this one,
    with `rules`; more: each loads its own); returns the events applied. Raises if any worker fails
    or dies. `load`: as a bulk load, into a schema prepared by `prepare_load` (`entities`, a shared
    integer of `context()`, counts the entity rows written), with workers past the number of
    partitions too (`assign`; without `load`, at most one per partition)."""
    if workers <= 1:
        if load:
            return await bulk_load(s, rules, name, end, topic, max_records, None, entities)
        return await projector(s, rules, schema_name=name, max_records=max_records, topic=topic).run(until=end)
    level = logging.getLevelName(logging.getLogger().getEffectiveLevel())
    ctx = context()
    procs = []
    work = assign(topic.partitions, workers) if load else [(p, (0, 1)) for p in split(topic.partitions, workers)]
    for p, shard in work:
        applied = ctx.Value("q", 0)
        proc = ctx.Process(target=_worker, args=(s, name, p, end, level, topic, max_records, applied, load, entities,
                                                 shard),
                           name=f"rebuild-worker-{','.join(map(str, p))}-{shard[0]}", daemon=True)
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


def context() -> Any:
    """The workers' multiprocessing context. spawn: a fresh interpreter per worker (no copy of this
    process's event loop or connections). Plain processes watched by their exit status, not a process
    pool: a pool whose worker is killed while it holds the pool's queue lock can hang on shutdown."""
    return multiprocessing.get_context("spawn")


def prepare_load(conn: psycopg.Connection[Any], name: str) -> tuple[list[str], list[tuple[str, str, str]]]:
    """In the caller's transaction: the schema `name` created for a bulk load, without its secondary
    indexes and its large tables' primary keys (returned, for `finish_load`), with its table of deferred
    status updates."""
    schema.create(conn, name)  # its search_path stays set for the transaction
    indexes = schema.drop_secondary_indexes(conn, name, keep=frozenset())
    keys = schema.drop_primary_keys(conn, name)
    views.create_deferred_updates(conn)
    return indexes, keys


def finish_load(conn: psycopg.Connection[Any], name: str, indexes: list[str],
                keys: list[tuple[str, str, str]]) -> tuple[int, int]:
    """In the caller's transaction, after a bulk load: the deferred status updates applied, the primary
    keys and the indexes built, the tables analysed. Returns (rows updated, rows of a repeated key
    removed)."""
    updated = views.apply_deferred_updates(conn, name)
    removed = schema.add_primary_keys(conn, name, keys)
    schema.create_indexes(conn, indexes)
    for table in schema.LOADED_WITHOUT_KEYS:
        conn.execute(sql.SQL("analyze {}.{}").format(sql.Identifier(name), sql.Identifier(table)))
    return updated, removed


async def rebuild(s: config.Settings, keep_old: bool = False, force: bool = False, workers: int = 2) -> int:
    """The whole rebuild (this module's docstring); returns the exit status: 0 switched, 1 the digests
    differ and nothing was switched."""
    rules = loader.load()  # a bad rules file stops the rebuild before it creates anything
    name = "views_rebuild_" + SYSTEM.now().strftime("%Y%m%d%H%M%S")
    with psycopg.connect(s.pg_dsn) as conn, conn.transaction():
        indexes, keys = prepare_load(conn, name)
    end = await end_offsets(s)
    total = sum(end.values())
    work = assign(registry.EVENTS.partitions, workers)
    _say(f"rebuilding every view into schema {name} from offset 0 ({total:,} records to read; "
         f"{len(work)} worker process{'es' if len(work) > 1 else ''}, partitions {describe(work)})")
    started = time.monotonic()
    done = asyncio.Event()
    entities = context().Value("q", 0)
    reporter = asyncio.create_task(_progress(s, name, total, started, done, entities))
    try:
        applied = await project_into(s, name, end, workers, rules=rules, load=True, entities=entities)
    except BaseException as exc:
        _say(f"the rebuild failed ({type(exc).__name__}: {exc}); nothing was switched, the schema {name} "
             f"is kept for inspection")
        raise
    finally:
        done.set()
        await reporter
    _say(f"loaded {applied:,} events and {entities.value:,} entities in {time.monotonic() - started:.1f} s; "
         f"applying the status updates, building {len(keys)} primary keys and {len(indexes)} indexes")
    t0 = time.monotonic()
    with psycopg.connect(s.pg_dsn) as conn, conn.transaction():
        updated, removed = finish_load(conn, name, indexes, keys)
    repeated = f"; {removed:,} rows of a repeated key left out" if removed else ""
    _say(f"applied {updated:,} status updates and built the keys and indexes in {time.monotonic() - t0:.1f} s"
         f"{repeated}; switching over")

    with psycopg.connect(s.pg_dsn) as conn:
        with conn.transaction():
            conn.execute("select pg_advisory_xact_lock(%s)", (schema.SWITCH_LOCK,))
            live_positions = dict(conn.execute(
                "select partition, next_offset from views.positions where topic = %s",
                (registry.EVENTS.name,)).fetchall())
            # catch up to exactly where the live projector is (it waits on the lock meanwhile)
            await projector(s, rules, schema_name=name).run(until=live_positions)
            new = schema.digest(conn, name)
            older = schema.missing_tables(conn, schema.LIVE)
            live = {} if older else schema.digest(conn, schema.LIVE)
            differ = sorted(t for t in live if live[t] != new[t])
            if older:  # made before views.sql gave them these: what an upgrade rebuilds them for
                _say("the live views were made by older code (without " + ", ".join(older) + "): the rebuilt "
                     "views replace them, with no digest to compare")
            elif differ:
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
    p.add_argument("--workers", type=int, default=os.cpu_count() or 2, metavar="N",
                   help="worker processes for the bulk load (default: one per core, here "
                        f"{os.cpu_count() or 2}; 1 = in this process): up to the number of partitions each "
                        "takes a share of them, past it several share a partition, each folding a shard of "
                        "its entities")
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
